-- Friendlier SQL (0.2.0): what src/sql/96_friendly.sql adds, and the
-- changes to 50_rfm.sql and 70_bi.sql, from the schema of the pieces before.

-- score_rfm's parameter "window" (a reserved word: named notation needed
-- quotes) is lookback; a parameter's name cannot be changed in place.
-- The pass table's column follows.
DROP FUNCTION @extschema@.score_rfm(text, timestamptz, interval);
ALTER TABLE @extschema@.rfm_pass RENAME COLUMN "window" TO lookback;
COMMENT ON TABLE @extschema@.rfm_pass IS
    'The last loyalty.score_rfm() pass per program: its as_of, lookback window, members scored and rows written';
COMMENT ON COLUMN @extschema@.rfm_pass.lookback IS 'The pass''s window: orders in (scored_at - lookback, scored_at] were scored';

-- Not STRICT: NULL arguments are errors.
CREATE FUNCTION @extschema@.score_rfm(program text, as_of timestamptz DEFAULT now(),
                                     lookback interval DEFAULT '365 days')
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
-- JIT compiling the pass's million-row queries costs more than it saves.
SET jit = off
AS 'MODULE_PATHNAME', 'loyalty_score_rfm';
COMMENT ON FUNCTION @extschema@.score_rfm(text, timestamptz, interval) IS
    'Scores every member with orders in the window before as_of into loyalty.member_rfm (quintiles, ties sharing a score); returns the members scored';
-- The install script revokes PUBLIC's EXECUTE from every function at its
-- end (99_privileges.sql); a function created here must lose it by name.
REVOKE ALL ON FUNCTION @extschema@.score_rfm(text, timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.score_rfm(text, timestamptz, interval) TO loyalty_admin;

-- The RFM scores as text and integers for BI tools without loyalty on
-- their search_path: columns added at the end of the views.
CREATE OR REPLACE VIEW @extschema@.member_rfm AS
    SELECT s.program, s.member_id,
           floor(extract(epoch FROM p.scored_at - s.last_order_at) / 86400)::integer AS recency_days,
           s.frequency, s.monetary, s.rfm, s.segment, p.scored_at,
           -- The scores as plain text and integers: a BI tool filters and
           -- groups by them without loyalty on its search_path (the rfm
           -- type's operators live in the loyalty schema).
           s.rfm::pg_catalog.text AS rfm_code,
           @extschema@.r(s.rfm) AS r, @extschema@.f(s.rfm) AS f, @extschema@.m(s.rfm) AS m
      FROM @extschema@.rfm_score s
      JOIN @extschema@.rfm_pass p ON p.program = s.program
      JOIN @extschema@.member m ON m.program = s.program AND m.member_id = s.member_id
      LEFT JOIN @extschema@.consent_policy c ON c.program = s.program
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = s.program AND x.member_id = s.member_id)
       -- Profiling consent, as loyalty.has_consent reads it (written out:
       -- a view's readers may not call that function).
       -- (An answer that is not a JSON boolean counts as none.)
       AND coalesce(CASE WHEN jsonb_typeof(m.profile -> 'consent' -> 'profiling' -> 'granted') = 'boolean'
                         THEN (m.profile -> 'consent' -> 'profiling' ->> 'granted')::boolean END,
                    NOT coalesce(c.required, false))
       -- A forgotten member is profiled no more (GDPR/PIPL: erasure).
       AND m.status OPERATOR(pg_catalog.<>) 'forgotten';
COMMENT ON VIEW @extschema@.member_rfm IS
    'RFM per member as of the last loyalty.score_rfm(): recency in whole days, distinct orders, net spend in base currency, scores and segment; excluded members and members without profiling consent left out';
COMMENT ON COLUMN @extschema@.member_rfm.program IS 'Program code';
COMMENT ON COLUMN @extschema@.member_rfm.member_id IS 'Member id';
COMMENT ON COLUMN @extschema@.member_rfm.recency_days IS 'Whole days from the member''s last order in the window to scored_at';
COMMENT ON COLUMN @extschema@.member_rfm.frequency IS 'Distinct orders in the window with something left after refunds';
COMMENT ON COLUMN @extschema@.member_rfm.monetary IS 'Net spend in the window in the program''s base currency: each order''s amount less refunds at its FX rate, rounded to 4 decimals, summed';
COMMENT ON COLUMN @extschema@.member_rfm.rfm IS 'Recency, frequency and monetary scores, 1-5 each (quintiles, ties sharing a score)';
COMMENT ON COLUMN @extschema@.member_rfm.segment IS 'Segment of the score in the program''s map (empty when no rule matches)';
COMMENT ON COLUMN @extschema@.member_rfm.scored_at IS 'The as_of of the scoring pass';
COMMENT ON COLUMN @extschema@.member_rfm.rfm_code IS 'The scores as text (''543''): WHERE rfm_code = ''555'' works without loyalty on the search_path';
COMMENT ON COLUMN @extschema@.member_rfm.r IS 'Recency score, 1-5 (5: bought most recently)';
COMMENT ON COLUMN @extschema@.member_rfm.f IS 'Frequency score, 1-5 (5: the most orders)';
COMMENT ON COLUMN @extschema@.member_rfm.m IS 'Monetary score, 1-5 (5: the most spend)';

CREATE OR REPLACE VIEW @extschema@.member_360 AS
    WITH orders AS (
        SELECT v.program, v.member_id, count(*) FILTER (WHERE v.net > 0) AS orders,
               coalesce(sum(v.net), 0) AS net_spend
          FROM @extschema@.order_value v WHERE v.member_id IS NOT NULL GROUP BY 1, 2
    ), lots AS (
        SELECT l.program, l.member_id,
               sum(l.remaining) FILTER (WHERE @extschema@.lot_spendable(l.available_at, l.expires_at, now())) AS available,
               sum(l.remaining) FILTER (WHERE @extschema@.lot_pending(l.available_at, l.expires_at, now())) AS pending
          FROM @extschema@.lot l WHERE l.remaining > 0 GROUP BY 1, 2
    )
    SELECT m.program, m.member_id, m.status::text AS status, m.enrolled_at,
           coalesce(l.available, 0) - m.debt AS available_points,
           coalesce(l.pending, 0) AS pending_points,
           m.debt AS debt_points,
           m.lifetime_earned, m.lifetime_redeemed,
           r.rfm::text AS rfm, r.segment, r.scored_at AS rfm_scored_at,
           c.stage AS lifecycle_stage, c.first_order_at, c.last_order_at,
           coalesce(o.orders, 0) AS orders, coalesce(o.net_spend, 0) AS net_spend,
           CASE WHEN p.tier_ladder IS NOT NULL
                THEN coalesce(m.tier, (SELECT f.tier FROM @extschema@.tier_levels(p.tier_ladder) f WHERE f.level = 1))
           END AS tier,
           r.r, r.f, r.m
      FROM @extschema@.member m
      JOIN @extschema@.program p ON p.code = m.program
      LEFT JOIN lots l ON l.program = m.program AND l.member_id = m.member_id
      LEFT JOIN orders o ON o.program = m.program AND o.member_id = m.member_id
      LEFT JOIN @extschema@.member_rfm r ON r.program = m.program AND r.member_id = m.member_id
      LEFT JOIN @extschema@.member_lifecycle c ON c.program = m.program AND c.member_id = m.member_id
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = m.program AND x.member_id = m.member_id);
COMMENT ON VIEW @extschema@.member_360 IS 'One row per member (excluded members left out): balances, RFM and segment (last score_rfm), lifecycle stage, orders, net spend and tier';
COMMENT ON COLUMN @extschema@.member_360.program IS 'Program code';
COMMENT ON COLUMN @extschema@.member_360.member_id IS 'Member id';
COMMENT ON COLUMN @extschema@.member_360.status IS 'active, held or forgotten';
COMMENT ON COLUMN @extschema@.member_360.enrolled_at IS 'When the member was enrolled';
COMMENT ON COLUMN @extschema@.member_360.available_points IS 'Points spendable now, less debt';
COMMENT ON COLUMN @extschema@.member_360.pending_points IS 'Points still in their pending days';
COMMENT ON COLUMN @extschema@.member_360.debt_points IS 'Points owed from refunds after spending';
COMMENT ON COLUMN @extschema@.member_360.lifetime_earned IS 'Points ever earned';
COMMENT ON COLUMN @extschema@.member_360.lifetime_redeemed IS 'Points ever redeemed, net of cancellations';
COMMENT ON COLUMN @extschema@.member_360.rfm IS 'RFM scores of the last score_rfm pass, as text (''543'')';
COMMENT ON COLUMN @extschema@.member_360.segment IS 'RFM segment of the last score_rfm pass';
COMMENT ON COLUMN @extschema@.member_360.rfm_scored_at IS 'as_of of the last score_rfm pass';
COMMENT ON COLUMN @extschema@.member_360.lifecycle_stage IS 'registered, new, active, at_risk, dormant or churned, now';
COMMENT ON COLUMN @extschema@.member_360.first_order_at IS 'First order with something left after refunds';
COMMENT ON COLUMN @extschema@.member_360.last_order_at IS 'Last order with something left after refunds';
COMMENT ON COLUMN @extschema@.member_360.orders IS 'Orders with something left after refunds';
COMMENT ON COLUMN @extschema@.member_360.net_spend IS 'Net spend in base currency, all time';
COMMENT ON COLUMN @extschema@.member_360.tier IS 'Tier held (NULL when the program has no ladder)';
COMMENT ON COLUMN @extschema@.member_360.r IS 'Recency score of the last score_rfm pass, 1-5';
COMMENT ON COLUMN @extschema@.member_360.f IS 'Frequency score of the last score_rfm pass, 1-5';
COMMENT ON COLUMN @extschema@.member_360.m IS 'Monetary score of the last score_rfm pass, 1-5';

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

-- As 99_privileges.sql: nothing new is PUBLIC's (the install script revokes
-- PUBLIC's EXECUTE from every function at its end); then the grants.
REVOKE ALL ON FUNCTION
    @extschema@.enroll(text, bigint, jsonb),
    @extschema@.balance(text, bigint, timestamptz),
    @extschema@.history(text, bigint),
    @extschema@.redeem(text, bigint, bigint, text, timestamptz),
    @extschema@.member_cart(text, bigint, jsonb, timestamptz),
    @extschema@.validate_coupon(text, text, bigint, jsonb, timestamptz),
    @extschema@.redeem_coupon(text, text, bigint, jsonb, text, timestamptz),
    @extschema@.best_offer(text, bigint, jsonb, timestamptz),
    @extschema@.claim_reward(text, bigint, text, text, timestamptz),
    @extschema@.referral_code(text, bigint),
    @extschema@.refer(text, bigint, text, timestamptz),
    @extschema@.earn(text, bigint, bigint, text, text, timestamptz),
    @extschema@.set_member_status(text, bigint, text),
    @extschema@.set_tier_floor(text, bigint, text, timestamptz),
    @extschema@.exclude_member(text, bigint, text),
    @extschema@.include_member(text, bigint),
    @extschema@.issue_codes(text, text, integer, bigint),
    @extschema@.compensate(text, bigint, text, text),
    @extschema@.member_risk(text, bigint),
    @extschema@.resolve_dead_letter(bigint, text),
    @extschema@.member_visible(text, bigint)
FROM PUBLIC;
-- Friendlier SQL: the integer-member-id twins go to whoever may call the
-- text function (they call it, with the caller's rights); admins resolve
-- dead letters by hand.
GRANT EXECUTE ON FUNCTION
    @extschema@.enroll(text, bigint, jsonb),
    @extschema@.balance(text, bigint, timestamptz),
    @extschema@.history(text, bigint),
    @extschema@.redeem(text, bigint, bigint, text, timestamptz),
    @extschema@.member_cart(text, bigint, jsonb, timestamptz),
    @extschema@.validate_coupon(text, text, bigint, jsonb, timestamptz),
    @extschema@.redeem_coupon(text, text, bigint, jsonb, text, timestamptz),
    @extschema@.best_offer(text, bigint, jsonb, timestamptz),
    @extschema@.claim_reward(text, bigint, text, text, timestamptz),
    @extschema@.referral_code(text, bigint),
    @extschema@.refer(text, bigint, text, timestamptz)
TO loyalty_app, loyalty_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.earn(text, bigint, bigint, text, text, timestamptz),
    @extschema@.set_member_status(text, bigint, text),
    @extschema@.set_tier_floor(text, bigint, text, timestamptz),
    @extschema@.exclude_member(text, bigint, text),
    @extschema@.include_member(text, bigint),
    @extschema@.issue_codes(text, text, integer, bigint),
    @extschema@.compensate(text, bigint, text, text),
    @extschema@.member_risk(text, bigint),
    @extschema@.resolve_dead_letter(bigint, text)
TO loyalty_admin;
GRANT EXECUTE ON FUNCTION @extschema@.member_visible(text, bigint) TO loyalty_reader, loyalty_admin;
REVOKE ALL ON FUNCTION
    @extschema@.update_profile(text, bigint, jsonb),
    @extschema@.set_consent(text, bigint, text, boolean),
    @extschema@.member_lots(text, bigint, timestamptz),
    @extschema@.adjust(text, bigint, bigint, text, text),
    @extschema@.merge_members(text, bigint, bigint, text),
    @extschema@.forget_member(text, bigint),
    @extschema@.export_member(text, bigint)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.update_profile(text, bigint, jsonb),
    @extschema@.set_consent(text, bigint, text, boolean),
    @extschema@.member_lots(text, bigint, timestamptz)
TO loyalty_app, loyalty_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.adjust(text, bigint, bigint, text, text),
    @extschema@.merge_members(text, bigint, bigint, text),
    @extschema@.forget_member(text, bigint),
    @extschema@.export_member(text, bigint)
TO loyalty_admin;
