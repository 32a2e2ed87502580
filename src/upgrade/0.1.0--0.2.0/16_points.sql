-- 0.1.0 -> 0.2.0, what changed in src/sql/30_points.sql since 0.1.0: new objects created, changed functions and views replaced, tables altered.

-- Points: the application's calls (C where it pays) and the read side (SQL).

-- Not STRICT: a NULL argument is an error, never a silently skipped credit.
CREATE OR REPLACE FUNCTION @extschema@.earn(
    program text, member_id text, points bigint, ref text,
    reason text DEFAULT 'adjust', as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_earn';

-- Not STRICT: a NULL argument is an error.
CREATE OR REPLACE FUNCTION @extschema@.redeem(
    program text, member_id text, points bigint, ref text,
    as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_redeem';

-- Not STRICT: a NULL argument is an error.
CREATE OR REPLACE FUNCTION @extschema@.cancel_redemption(program text, ref text)
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_cancel_redemption';

-- Not STRICT: NULL program means every program.
CREATE OR REPLACE FUNCTION @extschema@.expire_points(program text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_expire_points';

-- Not STRICT: NULL program means every program.
CREATE OR REPLACE FUNCTION @extschema@.expire_points_chunk(program text, as_of timestamptz, max_members integer,
                                               OUT members bigint, OUT points bigint)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_expire_points_chunk';

CREATE OR REPLACE FUNCTION @extschema@.balance(program text, member_id text, as_of timestamptz DEFAULT now())
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

CREATE OR REPLACE FUNCTION @extschema@.history(program text, member_id text)
RETURNS TABLE (id bigint, kind text, points bigint, balance_after bigint, ref text, order_id text,
               reason text, occurred_at timestamptz, recorded_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT l.id, l.kind, l.points,
           (sum(l.points) OVER (ORDER BY l.id))::bigint,
           l.ref, l.order_id, l.reason, l.occurred_at, l.recorded_at
      FROM loyalty.ledger l
     WHERE l.program = history.program AND l.member_id = history.member_id
     ORDER BY l.id
$$;
