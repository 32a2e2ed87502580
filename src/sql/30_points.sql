-- Points: the application's calls (C where it pays) and the read side (SQL).

-- Not STRICT: a NULL argument is an error, never a silently skipped credit.
CREATE FUNCTION @extschema@.earn(
    program text, member_id text, points bigint, ref text,
    reason text DEFAULT 'adjust', as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_earn';
COMMENT ON FUNCTION @extschema@.earn(text, text, bigint, text, text, timestamptz) IS
    'Credits points (ledger kind adjust) under the program''s pending and expiry rules; idempotent on ref; returns the ledger id';

-- Not STRICT: a NULL argument is an error.
CREATE FUNCTION @extschema@.redeem(
    program text, member_id text, points bigint, ref text,
    as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_redeem';
COMMENT ON FUNCTION @extschema@.redeem(text, text, bigint, text, timestamptz) IS
    'Spends available points, soonest-expiring lots first; LY001 when the balance is short; idempotent on ref; returns the ledger id';

-- Not STRICT: a NULL argument is an error.
CREATE FUNCTION @extschema@.cancel_redemption(program text, ref text)
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_cancel_redemption';
COMMENT ON FUNCTION @extschema@.cancel_redemption(text, text) IS
    'Gives a redemption''s points back to the lots they came from (original expiry); idempotent; returns the unredeem ledger id';

-- Not STRICT: NULL program means every program.
CREATE FUNCTION @extschema@.expire_points(program text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_expire_points';
COMMENT ON FUNCTION @extschema@.expire_points(text, timestamptz) IS
    'Expires what is left of lots whose expiry is at or before as_of (all programs when program is NULL); idempotent; returns the points expired';

-- Not STRICT: NULL program means every program.
CREATE FUNCTION @extschema@.expire_points_chunk(program text, as_of timestamptz, max_members integer,
                                               OUT members bigint, OUT points bigint)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_expire_points_chunk';
COMMENT ON FUNCTION @extschema@.expire_points_chunk(text, timestamptz, integer) IS
    'Expires the lots of at most max_members members (the first by program and member id); returns the members done and the points expired';

-- For very large programs: expiry in chunks of members, each committed.
-- A procedure that commits can be neither SECURITY DEFINER nor carry a SET
-- clause: it runs as the caller, names everything in full, and the chunk
-- function does the privileged work.
CREATE PROCEDURE @extschema@.expire_points_batched(program text DEFAULT NULL, as_of timestamptz DEFAULT now(),
                                                  chunk_members integer DEFAULT 10000)
LANGUAGE plpgsql
AS $$
DECLARE
    chunk record;
    members bigint := 0;
    points bigint := 0;
    run bigint := loyalty.job_run_begin('expire_points_batched', program);  -- loyalty.health
BEGIN
    LOOP
        SELECT * INTO chunk FROM loyalty.expire_points_chunk(program, as_of, chunk_members);
        EXIT WHEN chunk.members = 0;
        members := members + chunk.members;
        points := points + chunk.points;
        RAISE NOTICE 'loyalty: expiry %: % members, % points expired so far',
            coalesce(program, 'all programs'), members, points;
        COMMIT;
    END LOOP;
    PERFORM loyalty.job_run_end(run, points, pg_catalog.format('as_of %s: %s members, %s points expired',
                                                              as_of, members, points));
END
$$;
COMMENT ON PROCEDURE @extschema@.expire_points_batched(text, timestamptz, integer) IS
    'Runs loyalty.expire_points in chunks of chunk_members members, committing after each, with a NOTICE of progress; the run is recorded in loyalty.job_run';

CREATE FUNCTION @extschema@.balance(program text, member_id text, as_of timestamptz DEFAULT now())
RETURNS TABLE (available bigint, pending bigint, lifetime_earned bigint, lifetime_redeemed bigint,
               next_expiry timestamptz, next_expiry_points bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF member_id IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'member_id and as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_as_of(as_of);
    RETURN QUERY
    WITH m AS (
        SELECT coalesce(max(x.debt), 0) AS debt,
               coalesce(max(x.lifetime_earned), 0) AS earned,
               coalesce(max(x.lifetime_redeemed), 0) AS redeemed
          FROM loyalty.member x
         WHERE x.program = balance.program AND x.member_id = balance.member_id
    ), l AS (
        SELECT coalesce(sum(remaining) FILTER (WHERE loyalty.lot_spendable(available_at, expires_at, as_of)),
                        0)::bigint AS avail,
               coalesce(sum(remaining) FILTER (WHERE loyalty.lot_pending(available_at, expires_at, as_of)),
                        0)::bigint AS pend,
               min(expires_at) FILTER (WHERE expires_at > as_of) AS next_exp
          FROM loyalty.lot x
         WHERE x.program = balance.program AND x.member_id = balance.member_id AND x.remaining > 0
    )
    SELECT l.avail - m.debt, l.pend, m.earned, m.redeemed, l.next_exp,
           (SELECT sum(x.remaining)::bigint FROM loyalty.lot x
             WHERE x.program = balance.program AND x.member_id = balance.member_id
               AND x.expires_at = l.next_exp)
      FROM m, l;
END
$$;
COMMENT ON FUNCTION @extschema@.balance(text, text, timestamptz) IS
    'A member''s balance at as_of: available (minus debt), pending, lifetime earned and redeemed, next expiry and its points; zero for an unknown member';

-- loyalty.history, the member's statement, is in 38_member_admin.sql.
