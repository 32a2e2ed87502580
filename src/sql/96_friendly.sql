-- Friendlier SQL: member ids given as integers, and dead letters resolved
-- by hand.
--
-- Member ids are text (an application's customer id may be '1003',
-- 'C-1003' or an e-mail).  Most shops number their customers, and
-- loyalty.balance('eu', 1003) would otherwise fail with "function does not
-- exist".  Each function granted to a loyalty role that takes a member
-- id has a bigint twin that passes the id on as text: plain SQL, not SECURITY
-- DEFINER and without SET, so PostgreSQL inlines it where it can and the
-- privileges are those of the function it calls.  A quoted id ('1003') or
-- a text value still calls the text function (PostgreSQL prefers text for
-- an untyped literal); sql/friendly.sql checks that every such function
-- has its twin.

CREATE FUNCTION @extschema@.enroll(program text, member_id bigint, profile jsonb DEFAULT '{}')
RETURNS boolean
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.enroll($1, $2::pg_catalog.text, $3) $$;
COMMENT ON FUNCTION @extschema@.enroll(text, bigint, jsonb) IS
    'loyalty.enroll with an integer member id (stored as its text)';

CREATE FUNCTION @extschema@.balance(program text, member_id bigint, as_of timestamptz DEFAULT now())
RETURNS TABLE (available bigint, pending bigint, lifetime_earned bigint, lifetime_redeemed bigint,
               next_expiry timestamptz, next_expiry_points bigint)
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.balance($1, $2::pg_catalog.text, $3) $$;
COMMENT ON FUNCTION @extschema@.balance(text, bigint, timestamptz) IS
    'loyalty.balance with an integer member id';

CREATE FUNCTION @extschema@.history(program text, member_id bigint)
RETURNS TABLE (id bigint, kind text, points bigint, balance_after bigint, ref text, order_id text,
               reason text, occurred_at timestamptz, recorded_at timestamptz, label text, undoes_ref text)
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.history($1, $2::pg_catalog.text) $$;
COMMENT ON FUNCTION @extschema@.history(text, bigint) IS
    'loyalty.history with an integer member id';

CREATE FUNCTION @extschema@.redeem(program text, member_id bigint, points bigint, ref text,
                                   as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.redeem($1, $2::pg_catalog.text, $3, $4, $5) $$;
COMMENT ON FUNCTION @extschema@.redeem(text, bigint, bigint, text, timestamptz) IS
    'loyalty.redeem with an integer member id';

CREATE FUNCTION @extschema@.member_cart(program text, member_id bigint, cart jsonb, as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE sql STABLE
AS $$ SELECT @extschema@.member_cart($1, $2::pg_catalog.text, $3, $4) $$;
COMMENT ON FUNCTION @extschema@.member_cart(text, bigint, jsonb, timestamptz) IS
    'loyalty.member_cart with an integer member id';

CREATE FUNCTION @extschema@.validate_coupon(program text, code text, member_id bigint, cart jsonb,
                                            as_of timestamptz DEFAULT now(),
                                            OUT ok boolean, OUT discount numeric, OUT reason text)
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.validate_coupon($1, $2, $3::pg_catalog.text, $4, $5) $$;
COMMENT ON FUNCTION @extschema@.validate_coupon(text, text, bigint, jsonb, timestamptz) IS
    'loyalty.validate_coupon with an integer member id';

CREATE FUNCTION @extschema@.redeem_coupon(program text, code text, member_id bigint, cart jsonb, order_ref text,
                                          as_of timestamptz DEFAULT now())
RETURNS numeric
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.redeem_coupon($1, $2, $3::pg_catalog.text, $4, $5, $6) $$;
COMMENT ON FUNCTION @extschema@.redeem_coupon(text, text, bigint, jsonb, text, timestamptz) IS
    'loyalty.redeem_coupon with an integer member id';

CREATE FUNCTION @extschema@.best_offer(program text, member_id bigint, cart jsonb, as_of timestamptz DEFAULT now())
RETURNS TABLE (code text, discount numeric)
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.best_offer($1, $2::pg_catalog.text, $3, $4) $$;
COMMENT ON FUNCTION @extschema@.best_offer(text, bigint, jsonb, timestamptz) IS
    'loyalty.best_offer with an integer member id';

CREATE FUNCTION @extschema@.claim_reward(program text, member_id bigint, reward text, ref text,
                                         as_of timestamptz DEFAULT now())
RETURNS text
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.claim_reward($1, $2::pg_catalog.text, $3, $4, $5) $$;
COMMENT ON FUNCTION @extschema@.claim_reward(text, bigint, text, text, timestamptz) IS
    'loyalty.claim_reward with an integer member id';

CREATE FUNCTION @extschema@.referral_code(program text, member_id bigint)
RETURNS text
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.referral_code($1, $2::pg_catalog.text) $$;
COMMENT ON FUNCTION @extschema@.referral_code(text, bigint) IS
    'loyalty.referral_code with an integer member id';

CREATE FUNCTION @extschema@.refer(program text, referee_member_id bigint, code text, as_of timestamptz DEFAULT now())
RETURNS TABLE (accepted boolean, referrer_id text, state text, reason text)
LANGUAGE sql VOLATILE
AS $$ SELECT * FROM @extschema@.refer($1, $2::pg_catalog.text, $3, $4) $$;
COMMENT ON FUNCTION @extschema@.refer(text, bigint, text, timestamptz) IS
    'loyalty.refer with an integer referee member id';

-- The back office's functions with a member id have their twins too.
CREATE FUNCTION @extschema@.earn(program text, member_id bigint, points bigint, ref text,
                                 reason text DEFAULT 'adjust', as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.earn($1, $2::pg_catalog.text, $3, $4, $5, $6) $$;
COMMENT ON FUNCTION @extschema@.earn(text, bigint, bigint, text, text, timestamptz) IS
    'loyalty.earn with an integer member id';

CREATE FUNCTION @extschema@.set_member_status(program text, member_id bigint, status text)
RETURNS void
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.set_member_status($1, $2::pg_catalog.text, $3) $$;
COMMENT ON FUNCTION @extschema@.set_member_status(text, bigint, text) IS
    'loyalty.set_member_status with an integer member id';

CREATE FUNCTION @extschema@.set_tier_floor(program text, member_id bigint, tier text, "until" timestamptz)
RETURNS void
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.set_tier_floor($1, $2::pg_catalog.text, $3, $4) $$;
COMMENT ON FUNCTION @extschema@.set_tier_floor(text, bigint, text, timestamptz) IS
    'loyalty.set_tier_floor with an integer member id';

CREATE FUNCTION @extschema@.exclude_member(program text, member_id bigint, reason text)
RETURNS boolean
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.exclude_member($1, $2::pg_catalog.text, $3) $$;
COMMENT ON FUNCTION @extschema@.exclude_member(text, bigint, text) IS
    'loyalty.exclude_member with an integer member id';

CREATE FUNCTION @extschema@.include_member(program text, member_id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.include_member($1, $2::pg_catalog.text) $$;
COMMENT ON FUNCTION @extschema@.include_member(text, bigint) IS
    'loyalty.include_member with an integer member id';

CREATE FUNCTION @extschema@.member_visible(program text, member_id bigint)
RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT @extschema@.member_visible($1, $2::pg_catalog.text) $$;
COMMENT ON FUNCTION @extschema@.member_visible(text, bigint) IS
    'loyalty.member_visible with an integer member id';

-- No default for the member id here: issue_codes(program, campaign, n)
-- without one must keep calling the text function alone.
CREATE FUNCTION @extschema@.issue_codes(program text, campaign text, n integer, member_id bigint)
RETURNS SETOF text
LANGUAGE sql VOLATILE
AS $$ SELECT * FROM @extschema@.issue_codes($1, $2, $3, $4::pg_catalog.text) $$;
COMMENT ON FUNCTION @extschema@.issue_codes(text, text, integer, bigint) IS
    'loyalty.issue_codes for an integer member id';

CREATE FUNCTION @extschema@.compensate(program text, member_id bigint, campaign text, ref text)
RETURNS text
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.compensate($1, $2::pg_catalog.text, $3, $4) $$;
COMMENT ON FUNCTION @extschema@.compensate(text, bigint, text, text) IS
    'loyalty.compensate with an integer member id';

CREATE FUNCTION @extschema@.member_risk(program text, member_id bigint)
RETURNS numeric
LANGUAGE sql STABLE
AS $$ SELECT @extschema@.member_risk($1, $2::pg_catalog.text) $$;
COMMENT ON FUNCTION @extschema@.member_risk(text, bigint) IS
    'loyalty.member_risk with an integer member id';

-- Member administration and GDPR (38_member_admin.sql, 39_gdpr.sql).
CREATE FUNCTION @extschema@.update_profile(program text, member_id bigint, profile jsonb)
RETURNS jsonb
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.update_profile($1, $2::pg_catalog.text, $3) $$;
COMMENT ON FUNCTION @extschema@.update_profile(text, bigint, jsonb) IS
    'loyalty.update_profile with an integer member id';

CREATE FUNCTION @extschema@.set_consent(program text, member_id bigint, purpose text, granted boolean)
RETURNS jsonb
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.set_consent($1, $2::pg_catalog.text, $3, $4) $$;
COMMENT ON FUNCTION @extschema@.set_consent(text, bigint, text, boolean) IS
    'loyalty.set_consent with an integer member id';

CREATE FUNCTION @extschema@.member_lots(program text, member_id bigint, as_of timestamptz DEFAULT now())
RETURNS TABLE (lot_id bigint, order_id text, earned bigint, remaining bigint,
               available_at timestamptz, expires_at timestamptz, state text)
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.member_lots($1, $2::pg_catalog.text, $3) $$;
COMMENT ON FUNCTION @extschema@.member_lots(text, bigint, timestamptz) IS
    'loyalty.member_lots with an integer member id';

CREATE FUNCTION @extschema@.adjust(program text, member_id bigint, points bigint, ref text, reason text)
RETURNS bigint
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.adjust($1, $2::pg_catalog.text, $3, $4, $5) $$;
COMMENT ON FUNCTION @extschema@.adjust(text, bigint, bigint, text, text) IS
    'loyalty.adjust with an integer member id';

CREATE FUNCTION @extschema@.merge_members(program text, from_member_id bigint, into_member_id bigint, ref text)
RETURNS bigint
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.merge_members($1, $2::pg_catalog.text, $3::pg_catalog.text, $4) $$;
COMMENT ON FUNCTION @extschema@.merge_members(text, bigint, bigint, text) IS
    'loyalty.merge_members with integer member ids';

CREATE FUNCTION @extschema@.forget_member(program text, member_id bigint)
RETURNS text
LANGUAGE sql VOLATILE
AS $$ SELECT @extschema@.forget_member($1, $2::pg_catalog.text) $$;
COMMENT ON FUNCTION @extschema@.forget_member(text, bigint) IS
    'loyalty.forget_member with an integer member id';

CREATE FUNCTION @extschema@.export_member(program text, member_id bigint)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$ SELECT @extschema@.export_member($1, $2::pg_catalog.text) $$;
COMMENT ON FUNCTION @extschema@.export_member(text, bigint) IS
    'loyalty.export_member with an integer member id';

-- Dead letters resolved by hand: a letter that will never replay (an order
-- without an id, an event the shop decides not to count) is closed by an
-- admin with a note; the order's later letters then replay.  Who and why
-- are kept on the letter.
ALTER TABLE @extschema@.dead_letter
    ADD COLUMN resolved_by text,
    ADD COLUMN resolution text;
COMMENT ON COLUMN @extschema@.dead_letter.resolved_by IS
    'The role that resolved the letter by hand (loyalty.resolve_dead_letter); NULL when a replay resolved it';
COMMENT ON COLUMN @extschema@.dead_letter.resolution IS
    'The note given when the letter was resolved by hand: why its event was not applied';
-- A back-fill skips an order whose letter was resolved by hand (the shop
-- decided not to count it): probed per row, so indexed.
CREATE INDEX dead_letter_by_hand_idx ON @extschema@.dead_letter (program, order_id)
    WHERE resolution IS NOT NULL;

-- Not STRICT: NULL arguments are errors.
CREATE FUNCTION @extschema@.resolve_dead_letter(id bigint, note text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    letter loyalty.dead_letter;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'dead letter id must not be null' USING ERRCODE = '22004';
    END IF;
    IF note IS NULL OR btrim(note) = '' THEN
        RAISE EXCEPTION 'a note must say why dead letter % is resolved without replaying it', id
            USING ERRCODE = CASE WHEN note IS NULL THEN '22004' ELSE '22023' END,
                  HINT = 'The note is kept on the letter (column resolution), e.g. ''test order, not a sale''.';
    END IF;
    -- Locked like retry_dead_letters locks the open letters: one of the two
    -- resolves it, the other sees it resolved.
    SELECT d.* INTO letter FROM loyalty.dead_letter d WHERE d.id = resolve_dead_letter.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dead letter % does not exist', id
            USING ERRCODE = '42704', HINT = 'The open letters: SELECT * FROM loyalty.dead_letter WHERE resolved_at IS NULL.';
    END IF;
    IF letter.resolved_at IS NOT NULL THEN
        IF letter.resolution IS NOT DISTINCT FROM btrim(note) AND letter.resolved_by IS NOT NULL THEN
            RETURN;  -- the same resolution again: done already
        END IF;
        RAISE EXCEPTION 'dead letter % is already resolved', id
            USING ERRCODE = 'LY046',
                  DETAIL = CASE WHEN letter.resolved_by IS NULL
                                THEN format('Its event was applied by a replay at %s.', letter.resolved_at)
                                ELSE format('Resolved by %s at %s: %s', letter.resolved_by, letter.resolved_at,
                                            letter.resolution) END;
    END IF;
    UPDATE loyalty.dead_letter d
       SET resolved_at = now(), resolved_by = loyalty.calling_role()::text, resolution = btrim(note)
     WHERE d.id = resolve_dead_letter.id;
END
$$;
COMMENT ON FUNCTION @extschema@.resolve_dead_letter(bigint, text) IS
    'Closes an open dead letter without applying its event, keeping who resolved it and the note; the order''s later letters then replay; LY046 when it was resolved already (the same note again is a no-op)';
