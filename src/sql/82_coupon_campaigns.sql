-- Coupon campaigns: codes, validation, redemption with limits and budgets
-- that hold under any concurrency, release, the discount cap, best offer.
--
-- Locking: every redemption and release of an order_ref takes a
-- transaction advisory lock on (program, order_ref) first (stacking and the
-- cap are per order), then the campaign row FOR UPDATE, then checks and
-- writes.  Checks run after the locks, each statement with a fresh
-- snapshot (READ COMMITTED), so the counters and the per-member and per-code
-- counts are exact; a replay of the same (program, code, order_ref) returns
-- the first discount.

-- The discount cap: at most this percent of an order's subtotal in coupons.
ALTER TABLE @extschema@.program
    ADD COLUMN discount_cap_percent numeric
        CONSTRAINT program_discount_cap CHECK (discount_cap_percent > 0 AND discount_cap_percent <= 100);
COMMENT ON COLUMN @extschema@.program.discount_cap_percent IS
    'The most all coupons of one order_ref may take off, in percent of its subtotal; NULL: no cap';

CREATE TABLE @extschema@.coupon_campaign (
    program             text NOT NULL REFERENCES @extschema@.program (code),
    campaign            text NOT NULL CHECK (@extschema@.program_code_valid(campaign)),
    rule                @extschema@.coupon_rule NOT NULL,
    total_limit         integer CHECK (total_limit >= 1),
    per_member_limit    integer CHECK (per_member_limit >= 1),
    budget              numeric CHECK (budget > 0 AND budget < 'Infinity'),
    audience            text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    redeemed_count      integer NOT NULL DEFAULT 0,
    spent_base          numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (program, campaign),
    CONSTRAINT coupon_campaign_count CHECK (redeemed_count >= 0 AND redeemed_count <= coalesce(total_limit, redeemed_count)),
    CONSTRAINT coupon_campaign_spent CHECK (spent_base >= 0 AND spent_base <= coalesce(budget, spent_base))
);
COMMENT ON TABLE @extschema@.coupon_campaign IS
    'Coupon campaigns: the rule, limits (total, per member), budget in base currency, audience, and the counters kept under the row''s lock';
COMMENT ON COLUMN @extschema@.coupon_campaign.total_limit IS 'Most active redemptions over all members; NULL: no limit';
COMMENT ON COLUMN @extschema@.coupon_campaign.per_member_limit IS 'Most active redemptions of one member over all the campaign''s codes; NULL: no limit';
COMMENT ON COLUMN @extschema@.coupon_campaign.budget IS 'Most discount in the program''s base currency (at the FX rate of each redemption''s time); NULL: no budget';
COMMENT ON COLUMN @extschema@.coupon_campaign.audience IS 'Only members in it may redeem: a lifecycle stage, a tier or an RFM segment (ignoring case); NULL: anyone';
COMMENT ON COLUMN @extschema@.coupon_campaign.redeemed_count IS 'Active (not released) redemptions';
COMMENT ON COLUMN @extschema@.coupon_campaign.spent_base IS 'Sum of the active redemptions'' discounts in base currency';

-- Codes are stored upper case without spaces or dashes (coupon_code_normal).
CREATE TABLE @extschema@.coupon_code (
    program     text NOT NULL,
    code        text NOT NULL CHECK (code ~ '^[A-Z0-9_]{3,32}$'),
    campaign    text NOT NULL,
    member_id   text,
    shared      boolean NOT NULL DEFAULT false,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    issued_ref  text,
    PRIMARY KEY (program, code),
    FOREIGN KEY (program, campaign) REFERENCES @extschema@.coupon_campaign (program, campaign),
    CONSTRAINT coupon_code_shared_unowned CHECK (NOT (shared AND member_id IS NOT NULL))
);
CREATE INDEX coupon_code_member_idx ON @extschema@.coupon_code (program, member_id) WHERE member_id IS NOT NULL;
CREATE INDEX coupon_code_shared_idx ON @extschema@.coupon_code (program, campaign) WHERE shared;
CREATE UNIQUE INDEX coupon_code_issued_ref_key ON @extschema@.coupon_code (program, issued_ref) WHERE issued_ref IS NOT NULL;
COMMENT ON TABLE @extschema@.coupon_code IS
    'Coupon codes: issued (random, check character, one redemption each, to a member or to anyone) or shared (add_code, e.g. BLACKFRIDAY: many members, per the campaign''s limits)';
COMMENT ON COLUMN @extschema@.coupon_code.code IS 'Upper case, without spaces or dashes; issued codes are shown in groups of four';
COMMENT ON COLUMN @extschema@.coupon_code.member_id IS 'The only member who may use the code; NULL: anyone';
COMMENT ON COLUMN @extschema@.coupon_code.shared IS 'true: a shared code (add_code), redeemable by many; false: an issued code, redeemable once';
COMMENT ON COLUMN @extschema@.coupon_code.issued_ref IS 'Reference the code was issued for (reward claim, compensation, automatic coupon): one code per program and ref';

CREATE TABLE @extschema@.coupon_redemption (
    program         text NOT NULL,
    member_id       text NOT NULL,
    code            text NOT NULL,
    campaign        text NOT NULL,
    order_ref       text NOT NULL,
    currency        text NOT NULL,
    subtotal        numeric NOT NULL,
    discount        numeric NOT NULL CHECK (discount >= 0),
    discount_base   numeric NOT NULL CHECK (discount_base >= 0),
    redeemed_at     timestamptz NOT NULL,
    released_at     timestamptz,
    PRIMARY KEY (program, member_id, code, order_ref),
    FOREIGN KEY (program, code) REFERENCES @extschema@.coupon_code (program, code)
);
-- One redemption per (program, code, order_ref), whichever member: the
-- replay rule (a second member on the same code and order_ref is LY003).
-- redeem_coupon checks it under the campaign's row lock, which every
-- redemption of the code takes: a unique index without the member could
-- not be kept on a table distributed by member (loyalty.distribute()).
-- This index finds the redemption of a code on an order_ref.
CREATE INDEX coupon_redemption_code_idx ON @extschema@.coupon_redemption (program, code, order_ref);
CREATE INDEX coupon_redemption_order_idx ON @extschema@.coupon_redemption (order_ref, program) WHERE released_at IS NULL;
CREATE INDEX coupon_redemption_member_idx ON @extschema@.coupon_redemption (member_id, campaign, program);
CREATE INDEX coupon_redemption_campaign_idx ON @extschema@.coupon_redemption (program, campaign, redeemed_at);
COMMENT ON TABLE @extschema@.coupon_redemption IS
    'Coupon redemptions, one per (program, code, order_ref): discount in the cart''s currency and in base currency; released_at set when the order is cancelled or the coupon released';
COMMENT ON COLUMN @extschema@.coupon_redemption.discount IS 'Discount in the cart''s currency (money and shipping), after the program''s cap';
COMMENT ON COLUMN @extschema@.coupon_redemption.discount_base IS 'The discount in the program''s base currency at the FX rate of redeemed_at, 4 decimals (counts toward the budget)';
COMMENT ON COLUMN @extschema@.coupon_redemption.released_at IS 'When the redemption was given back (release_coupon, or the order cancelled, deleted or fully refunded); NULL: active';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon_campaign', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon_code', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon_redemption', '');

-- Codes (coupon_code.c): generation with a CSPRNG and a Luhn mod 32 check
-- character over 23456789ABCDEFGHJKLMNPQRSTUVWXYZ.
CREATE FUNCTION @extschema@.coupon_code_generate() RETURNS text
LANGUAGE c VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'loyalty_coupon_code_generate';
COMMENT ON FUNCTION @extschema@.coupon_code_generate() IS
    'A new random issued code: 11 characters from a CSPRNG and a Luhn mod 32 check character, upper case, ungrouped';

CREATE FUNCTION @extschema@.coupon_code_shape(code text) RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'loyalty_coupon_code_shape';
COMMENT ON FUNCTION @extschema@.coupon_code_shape(text) IS
    'For a normalized code: issued (the issued form with a right check character), mistyped (that form, wrong check character) or other';

-- Not STRICT: a NULL as_of is an error.  Volatile: it reads the clock.
CREATE FUNCTION @extschema@.check_spend_as_of(as_of timestamptz) RETURNS timestamptz
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'loyalty_check_spend_as_of';
COMMENT ON FUNCTION @extschema@.check_spend_as_of(timestamptz) IS
    'The as_of rule of loyalty.redeem for a new spending: LY007 when more than 5 seconds ahead of or behind the clock and the caller is not a member of loyalty_admin';

CREATE FUNCTION @extschema@.coupon_code_normal(code text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.upper(pg_catalog.translate(code, E' -\t', ''));
COMMENT ON FUNCTION @extschema@.coupon_code_normal(text) IS
    'A code as stored: upper case, without spaces, tabs or dashes';

CREATE FUNCTION @extschema@.coupon_code_display(code text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN @extschema@.coupon_code_shape(code) OPERATOR(pg_catalog.=) 'issued'
            THEN pg_catalog.substr(code, 1, 4) OPERATOR(pg_catalog.||) '-' OPERATOR(pg_catalog.||)
                 pg_catalog.substr(code, 5, 4) OPERATOR(pg_catalog.||) '-' OPERATOR(pg_catalog.||)
                 pg_catalog.substr(code, 9, 4)
            ELSE code END;
COMMENT ON FUNCTION @extschema@.coupon_code_display(text) IS
    'A stored code as shown to people: an issued code in groups of four (K7QX-M2RD-P9X2), a shared code as stored';

-- Raises 42704 unless the campaign exists; returns it.
CREATE FUNCTION @extschema@.require_campaign(program text, campaign text)
RETURNS @extschema@.coupon_campaign
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    c loyalty.coupon_campaign;
BEGIN
    PERFORM loyalty.require_program(program);
    IF campaign IS NULL THEN
        RAISE EXCEPTION 'campaign must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO c FROM loyalty.coupon_campaign x
     WHERE x.program = require_campaign.program AND x.campaign = require_campaign.campaign;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'campaign "%" does not exist in program "%"', campaign, program
            USING ERRCODE = '42704', HINT = 'Create it with loyalty.create_campaign().';
    END IF;
    RETURN c;
END
$$;
COMMENT ON FUNCTION @extschema@.require_campaign(text, text) IS
    'Returns the campaign row or raises 42704 when the program or campaign does not exist';

-- Raises 42704 unless the member is enrolled in the program.
CREATE FUNCTION @extschema@.require_member(program text, member_id text)
RETURNS @extschema@.member
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member;
BEGIN
    IF member_id IS NULL THEN
        RAISE EXCEPTION 'member_id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM loyalty.member x
     WHERE x.program = require_member.program AND x.member_id = require_member.member_id;
    IF NOT FOUND AND loyalty.forgotten_pseudonym(program, member_id) IS NOT NULL THEN   -- 39_gdpr.sql
        RAISE EXCEPTION 'member "%" of program "%" is forgotten', member_id, program
            USING ERRCODE = 'LY002', DETAIL = 'Its id was replaced by a pseudonym (loyalty.forget_member).';
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'member "%" is not enrolled in program "%"', member_id, program
            USING ERRCODE = '42704', HINT = 'Enroll the member with loyalty.enroll() first.';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION @extschema@.require_member(text, text) IS
    'Returns the member row or raises 42704 when the member is not enrolled in the program';

-- Audience names compare ignoring case, "_" taken as a space (at_risk = At Risk).
CREATE FUNCTION @extschema@.coupon_audience_key(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.replace(pg_catalog.lower(pg_catalog.btrim(name)), '_', ' ');
COMMENT ON FUNCTION @extschema@.coupon_audience_key(text) IS
    'An audience, tier, segment or stage name as compared: lower case, "_" as a space';

-- The audiences a campaign may name: lifecycle stages, the program's tiers,
-- RFM segments (the program's map, else the default one); lower case.
CREATE FUNCTION @extschema@.coupon_audiences(program text) RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT loyalty.coupon_audience_key(s) FROM unnest(ARRAY['registered', 'new', 'active', 'at_risk', 'dormant', 'churned']) s
    UNION
    SELECT loyalty.coupon_audience_key(t.tier) FROM loyalty.program_tier t WHERE t.program = coupon_audiences.program
    UNION
    SELECT loyalty.coupon_audience_key(r.segment) FROM loyalty.rfm_segment_rule r
     WHERE r.program = coupon_audiences.program
        OR (r.program IS NULL AND NOT EXISTS (SELECT 1 FROM loyalty.rfm_segment_rule o
                                               WHERE o.program = coupon_audiences.program))
$$;
COMMENT ON FUNCTION @extschema@.coupon_audiences(text) IS
    'Names a campaign audience may take in a program, as compared (coupon_audience_key): lifecycle stages, tiers of its ladder, RFM segments';

CREATE FUNCTION @extschema@.create_campaign(
    program text, campaign text, rule @extschema@.coupon_rule,
    total_limit integer DEFAULT NULL, per_member_limit integer DEFAULT 1,
    budget numeric DEFAULT NULL, audience text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    existing loyalty.coupon_campaign;
BEGIN
    PERFORM loyalty.require_program(program);
    IF campaign IS NULL OR rule IS NULL THEN
        RAISE EXCEPTION 'campaign and rule must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT loyalty.program_code_valid(campaign) THEN
        RAISE EXCEPTION 'invalid campaign name: "%"', campaign
            USING ERRCODE = '22023',
                  DETAIL = 'A campaign name is 1 to 63 letters, digits, "_", "." or "-".';
    END IF;
    IF total_limit < 1 THEN
        RAISE EXCEPTION 'invalid total_limit: %', total_limit
            USING ERRCODE = '22023', DETAIL = 'total_limit is at least 1, or NULL for no limit.';
    END IF;
    IF per_member_limit < 1 THEN
        RAISE EXCEPTION 'invalid per_member_limit: %', per_member_limit
            USING ERRCODE = '22023', DETAIL = 'per_member_limit is at least 1, or NULL for no limit per member.';
    END IF;
    IF budget <= 0 OR budget >= 'Infinity' THEN  -- NaN sorts above Infinity
        RAISE EXCEPTION 'invalid budget: %', budget
            USING ERRCODE = '22023',
                  DETAIL = 'A budget is an amount of the program''s base currency, positive and finite, or NULL for none.';
    END IF;
    IF audience IS NOT NULL AND loyalty.coupon_audience_key(audience) NOT IN
           (SELECT a FROM loyalty.coupon_audiences(program) a) THEN
        RAISE EXCEPTION 'unknown audience: "%"', audience
            USING ERRCODE = '22023',
                  DETAIL = pg_catalog.format('Program "%s" knows: %s.', program,
                      (SELECT string_agg(a, ', ' ORDER BY a) FROM loyalty.coupon_audiences(program) a)),
                  HINT = 'Name a lifecycle stage, a tier of the program''s ladder or an RFM segment.';
    END IF;
    INSERT INTO loyalty.coupon_campaign AS c (program, campaign, rule, total_limit, per_member_limit, budget, audience)
    VALUES (program, campaign, rule, total_limit, per_member_limit, budget, audience)
    ON CONFLICT ON CONSTRAINT coupon_campaign_pkey DO NOTHING;
    IF NOT FOUND THEN
        -- Creating the same campaign twice is fine; creating it differently is not.
        SELECT * INTO existing FROM loyalty.coupon_campaign c
         WHERE c.program = create_campaign.program AND c.campaign = create_campaign.campaign;
        IF (existing.rule::text, existing.total_limit, existing.per_member_limit, existing.budget, existing.audience)
           IS DISTINCT FROM (rule::text, total_limit, per_member_limit, budget, audience) THEN
            RAISE EXCEPTION 'campaign "%" already exists in program "%" with other settings', campaign, program
                USING ERRCODE = '42710',
                      DETAIL = pg_catalog.format('Existing: rule %s, total_limit %s, per_member_limit %s, budget %s, audience %s.',
                          existing.rule, coalesce(existing.total_limit::text, 'none'),
                          coalesce(existing.per_member_limit::text, 'none'),
                          coalesce(existing.budget::text, 'none'), coalesce(existing.audience, 'anyone')),
                      HINT = 'Use another campaign name.';
        END IF;
    END IF;
    RETURN campaign;
END
$$;
COMMENT ON FUNCTION @extschema@.create_campaign(text, text, @extschema@.coupon_rule, integer, integer, numeric, text) IS
    'Creates a coupon campaign (idempotent for identical settings, 42710 otherwise): rule, total and per-member limits, budget in base currency, audience; returns its name';

-- Inserts one issued code (a new one on the unlikely clash); returns it stored.
CREATE FUNCTION @extschema@.insert_issued_code(program text, campaign text, member_id text, issued_ref text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    c text;
BEGIN
    FOR attempt IN 1..10 LOOP
        c := loyalty.coupon_code_generate();
        INSERT INTO loyalty.coupon_code AS x (program, code, campaign, member_id, issued_ref)
        VALUES (program, c, campaign, member_id, issued_ref)
        ON CONFLICT ON CONSTRAINT coupon_code_pkey DO NOTHING;
        IF FOUND THEN
            RETURN c;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'could not find a free coupon code in 10 attempts' USING ERRCODE = 'XX000';
END
$$;
COMMENT ON FUNCTION @extschema@.insert_issued_code(text, text, text, text) IS
    'Inserts one new issued code (drawing again on a clash with an existing code); returns it as stored';

CREATE FUNCTION @extschema@.issue_codes(program text, campaign text, n integer, member_id text DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    made integer := 0;
    got integer;
BEGIN
    PERFORM loyalty.require_campaign(program, campaign);
    IF n IS NULL OR n < 1 OR n > 100000 THEN
        RAISE EXCEPTION 'invalid number of codes: %', coalesce(n::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'issue_codes issues 1 to 100000 codes per call.',
                  HINT = 'Call it several times for more.';
    END IF;
    IF member_id IS NOT NULL THEN
        PERFORM loyalty.require_member(program, member_id);
    END IF;
    -- One statement per round; a code drawn twice (or clashing with a shared
    -- code) is skipped by ON CONFLICT and drawn again in the next round.
    WHILE made < n LOOP
        RETURN QUERY
            WITH i AS (
                INSERT INTO loyalty.coupon_code AS x (program, code, campaign, member_id)
                SELECT program, loyalty.coupon_code_generate(), campaign, member_id
                  FROM generate_series(1, n - made)
                ON CONFLICT ON CONSTRAINT coupon_code_pkey DO NOTHING
                RETURNING x.code)
            SELECT loyalty.coupon_code_display(i.code) FROM i;
        GET DIAGNOSTICS got = ROW_COUNT;
        made := made + got;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.issue_codes(text, text, integer, text) IS
    'Issues n (1 to 100000) single-use random codes with a check character, to a member or (member_id NULL) to anyone; returns them grouped (K7QX-M2RD-P9X2)';

-- For the features that issue one code per event (reward claims,
-- compensation, automatic coupons): idempotent on (program, issued_ref).
CREATE FUNCTION @extschema@.issue_code_for(program text, campaign text, member_id text, issued_ref text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    existing loyalty.coupon_code;
BEGIN
    PERFORM loyalty.require_campaign(program, campaign);
    PERFORM loyalty.require_member(program, member_id);
    IF issued_ref IS NULL OR issued_ref = '' THEN
        RAISE EXCEPTION 'issued_ref must not be null or empty' USING ERRCODE = '22004';
    END IF;
    -- Two sessions issuing for the same ref: the second waits, then finds the first's code.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('loyalty.coupon_code'),
                                             pg_catalog.hashtext(program || '/' || issued_ref));
    SELECT * INTO existing FROM loyalty.coupon_code c
     WHERE c.program = issue_code_for.program AND c.issued_ref = issue_code_for.issued_ref;
    IF FOUND THEN
        IF (existing.campaign, existing.member_id) IS DISTINCT FROM (campaign, member_id) THEN
            RAISE EXCEPTION 'issued_ref "%" was used for another code', issued_ref
                USING ERRCODE = 'LY003',
                      DETAIL = pg_catalog.format('It issued a code of campaign %s to member %s.', existing.campaign, existing.member_id);
        END IF;
        RETURN loyalty.coupon_code_display(existing.code);
    END IF;
    RETURN loyalty.coupon_code_display(loyalty.insert_issued_code(program, campaign, member_id, issued_ref));
END
$$;
COMMENT ON FUNCTION @extschema@.issue_code_for(text, text, text, text) IS
    'Issues one code of a campaign to a member for a reference, idempotent on (program, issued_ref) (LY003 when the ref issued another campaign''s or member''s code); returns it grouped';

CREATE FUNCTION @extschema@.add_code(program text, campaign text, code text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    stored text := loyalty.coupon_code_normal(code);
    existing loyalty.coupon_code;
BEGIN
    PERFORM loyalty.require_campaign(program, campaign);
    IF code IS NULL THEN
        RAISE EXCEPTION 'code must not be null' USING ERRCODE = '22004';
    END IF;
    IF stored !~ '^[A-Z0-9_]{3,32}$' THEN
        RAISE EXCEPTION 'invalid shared code: "%"', code
            USING ERRCODE = '22023',
                  DETAIL = 'A shared code is 3 to 32 letters, digits or "_" (spaces and dashes are ignored, case too).';
    END IF;
    INSERT INTO loyalty.coupon_code AS c (program, code, campaign, shared)
    VALUES (program, stored, campaign, true)
    ON CONFLICT ON CONSTRAINT coupon_code_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM loyalty.coupon_code c WHERE c.program = add_code.program AND c.code = stored;
        IF existing.campaign <> campaign OR NOT existing.shared THEN
            RAISE EXCEPTION 'code "%" already exists in program "%"', stored, program
                USING ERRCODE = '42710',
                      DETAIL = pg_catalog.format('It belongs to campaign %s.', existing.campaign),
                      HINT = 'Codes are compared ignoring case, spaces and dashes; choose another code.';
        END IF;
    END IF;
    RETURN stored;
END
$$;
COMMENT ON FUNCTION @extschema@.add_code(text, text, text) IS
    'Adds a shared code (e.g. BLACKFRIDAY; case, spaces and dashes ignored) to a campaign, idempotent; 42710 when another campaign holds it; returns it as stored';

-- What the program knows of a member at as_of, as the cart's "member":
-- tier (the level held, the ladder's first when none; absent without a
-- ladder), segment (of the last RFM pass; absent when not scored), lifecycle
-- (the rule of member_lifecycle_at, for this member alone), first_order (no
-- counted order before as_of; this_order, the order being paid, does not
-- count).  Keys without a value are left out.
-- PL/pgSQL for its cached plan: a SQL function with a SET clause is
-- planned again on every call, and this runs on every redemption.
CREATE FUNCTION @extschema@.member_facts(program text, member_id text, as_of timestamptz,
                                         this_order text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN (WITH p AS (
        SELECT x.* FROM loyalty.program x WHERE x.code = member_facts.program
    ), o AS (
        SELECT min(v.ordered_at) AS first_at, max(v.ordered_at) AS last_at
          FROM loyalty.order_value_all v
         WHERE v.program = member_facts.program AND v.member_id = member_facts.member_id
           AND v.net > 0 AND v.ordered_at <= as_of
    ), d AS (
        SELECT o.last_at,
               floor(extract(epoch FROM as_of - o.first_at) / 86400)::integer AS since_first,
               floor(extract(epoch FROM as_of - o.last_at) / 86400)::integer AS since_last
          FROM o
    )
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'tier', (SELECT coalesce(m.tier, (SELECT t.tier FROM loyalty.program_tier t
                                           WHERE t.program = member_facts.program AND t.level = 1))
                   FROM loyalty.member m
                  WHERE m.program = member_facts.program AND m.member_id = member_facts.member_id
                    AND p.tier_ladder IS NOT NULL),
        'segment', (SELECT nullif(s.segment, '') FROM loyalty.rfm_score s
                     WHERE s.program = member_facts.program AND s.member_id = member_facts.member_id),
        'lifecycle', CASE WHEN d.last_at IS NULL THEN 'registered'
                          WHEN d.since_last > p.churned_days THEN 'churned'
                          WHEN d.since_last > p.dormant_days THEN 'dormant'
                          WHEN d.since_last > p.at_risk_days THEN 'at_risk'
                          WHEN d.since_first <= p.new_days THEN 'new'
                          ELSE 'active' END,
        'first_order', NOT EXISTS (
            SELECT 1 FROM loyalty.order_earning e
             WHERE e.program = member_facts.program AND e.member_id = member_facts.member_id
               AND NOT e.closed AND e.amount > 0 AND e.refunded_amount < e.amount
               AND e.ordered_at < as_of AND e.order_id IS DISTINCT FROM this_order)))
      FROM p, d);
END
$$;
COMMENT ON FUNCTION @extschema@.member_facts(text, text, timestamptz, text) IS
    'A member''s tier, RFM segment, lifecycle stage and first_order at as_of, as a cart''s "member" object (this_order: an order that does not count against first_order)';

-- Raises unless cart is a JSON object; the evaluator checks its fields (LY030).
CREATE FUNCTION @extschema@.check_cart(cart jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF cart IS NULL THEN
        RAISE EXCEPTION 'cart must not be null' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.jsonb_typeof(cart) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'cart must be a JSON object, not %', pg_catalog.jsonb_typeof(cart)
            USING ERRCODE = '22023', HINT = 'See "Carts" in docs/coupons.md.';
    END IF;
    RETURN cart;
END
$$;
COMMENT ON FUNCTION @extschema@.check_cart(jsonb) IS 'Returns cart, or raises unless it is a JSON object';

CREATE FUNCTION @extschema@.member_cart(program text, member_id text, cart jsonb, as_of timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    PERFORM loyalty.require_member(program, member_id);
    PERFORM loyalty.check_cart(cart);
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_as_of(as_of);
    RETURN cart || jsonb_build_object('member', loyalty.member_facts(program, member_id, as_of));
END
$$;
COMMENT ON FUNCTION @extschema@.member_cart(text, text, jsonb, timestamptz) IS
    'The cart with "member" (tier, segment, lifecycle, first_order) filled from the program at as_of, replacing any the caller gave';

-- The subtotal of a cart: the sum of qty x price.
CREATE FUNCTION @extschema@.cart_subtotal(cart jsonb) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce(sum((i ->> 'qty')::numeric * (i ->> 'price')::numeric), 0)
              FROM jsonb_array_elements(coalesce(cart -> 'items', '[]')) i);
END
$$;
COMMENT ON FUNCTION @extschema@.cart_subtotal(jsonb) IS 'The subtotal of a cart: the sum of qty x price over its items';

-- Whether a member (its facts) is in a campaign's audience.
CREATE FUNCTION @extschema@.in_audience(audience text, facts jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN audience IS NULL
    OR coalesce(@extschema@.coupon_audience_key(audience) IN (@extschema@.coupon_audience_key(facts ->> 'tier'),
                                                               @extschema@.coupon_audience_key(facts ->> 'segment'),
                                                               @extschema@.coupon_audience_key(facts ->> 'lifecycle')),
                false);
COMMENT ON FUNCTION @extschema@.in_audience(text, jsonb) IS
    'Whether a member with these facts is in the audience (NULL: everyone): its tier, segment or lifecycle stage, compared by coupon_audience_key';

/*
 * What a coupon offers a member's cart, from what does not change under
 * the campaign's lock: the member's right to the code (not_yours), the
 * audience, the rule's evaluation (its reason when not eligible), and the
 * FX rate into base currency (LY005 when an eligible cart has none).
 * cart carries the member facts already.  redeem_coupon runs it before
 * taking its locks, to hold them for less time.
 */
CREATE FUNCTION @extschema@.coupon_offer(
    p @extschema@.program, c @extschema@.coupon_campaign, k @extschema@.coupon_code,
    member_id text, cart jsonb, as_of timestamptz,
    OUT discount numeric, OUT reason text, OUT rate numeric, OUT currency text, OUT subtotal numeric,
    OUT shipping numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    e record;
BEGIN
    discount := 0;
    currency := upper(cart ->> 'currency');
    IF k.member_id IS NOT NULL AND k.member_id <> coupon_offer.member_id THEN
        reason := 'not_yours'; RETURN;
    END IF;
    IF NOT loyalty.in_audience(c.audience, cart -> 'member') THEN
        reason := 'audience'; RETURN;
    END IF;
    SELECT * INTO e FROM loyalty.coupon_evaluate(c.rule, cart, as_of, p.timezone);
    IF NOT e.eligible THEN
        reason := e.reason; RETURN;
    END IF;
    discount := e.discount + e.shipping_discount;
    subtotal := loyalty.cart_subtotal(cart);
    shipping := coalesce((cart ->> 'shipping')::numeric, 0);
    rate := loyalty.fx_rate_at(currency, p.base_currency, as_of);
    IF rate IS NULL THEN
        RAISE EXCEPTION 'no FX rate from % to % at %', currency, p.base_currency, as_of
            USING ERRCODE = 'LY005',
                  DETAIL = 'A coupon''s discount counts toward its campaign''s budget in the program''s base currency.',
                  HINT = pg_catalog.format('Set one with loyalty.set_fx_rate(%L, %L, rate).', currency, p.base_currency);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_offer(@extschema@.program, @extschema@.coupon_campaign, @extschema@.coupon_code, text, jsonb, timestamptz) IS
    'What a coupon offers a member''s cart (member facts filled): discount (money and shipping) or the reason (not_yours, audience, the evaluator''s), FX rate into base currency, currency, subtotal, shipping';

/*
 * Whether the coupon may be used now, given its offer: the checks, first
 * failure wins: not_yours, used (an issued code with an active redemption),
 * limit_reached, member_limit_reached, budget_exhausted (nothing left), the
 * offer's reason (audience, the evaluator's), then, on an order (order_ref
 * given): stacking (the campaign already on the order, an exclusive coupon
 * with another, two of one stack group), cap_reached (the program's cap
 * leaves no room); the discount is cut to the room the cap leaves;
 * budget_exhausted again when the discount would take the campaign past
 * its budget.  Without a cap the coupons of one order together still take
 * at most the cart (subtotal and shipping): stacking when nothing is left.
 * Counts under the caller's locks.
 */
CREATE FUNCTION @extschema@.coupon_counters(
    p @extschema@.program, c @extschema@.coupon_campaign, k @extschema@.coupon_code,
    member_id text, order_ref text, offer_discount numeric, offer_reason text, rate numeric,
    currency text, subtotal numeric, shipping numeric DEFAULT 0,
    OUT ok boolean, OUT discount numeric, OUT reason text, OUT discount_base numeric, OUT detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    room numeric;
    scale integer;
    stack text := loyalty.coupon_rule_stack(c.rule);
    conflict text;
BEGIN
    ok := false;
    discount := 0;
    IF offer_reason = 'not_yours' THEN
        reason := offer_reason; RETURN;
    END IF;
    IF NOT k.shared AND EXISTS (SELECT 1 FROM loyalty.coupon_redemption r
                                 WHERE r.program = k.program AND r.code = k.code AND r.released_at IS NULL) THEN
        reason := 'used'; RETURN;
    END IF;
    IF c.redeemed_count >= c.total_limit THEN
        reason := 'limit_reached'; RETURN;
    END IF;
    IF c.per_member_limit IS NOT NULL
       AND (SELECT count(*) FROM loyalty.coupon_redemption r
             WHERE r.program = c.program AND r.member_id = coupon_counters.member_id
               AND r.campaign = c.campaign AND r.released_at IS NULL) >= c.per_member_limit THEN
        reason := 'member_limit_reached'; RETURN;
    END IF;
    IF c.spent_base >= c.budget THEN
        reason := 'budget_exhausted'; RETURN;
    END IF;
    IF offer_reason IS NOT NULL THEN
        reason := offer_reason; RETURN;
    END IF;
    discount := offer_discount;
    -- No cap: stacked coupons still never take more than the whole cart.
    room := coalesce(subtotal * p.discount_cap_percent / 100, subtotal + coalesce(shipping, 0));
    IF order_ref IS NOT NULL THEN
        SELECT CASE WHEN x.campaign = c.campaign THEN pg_catalog.format('campaign %s is already on the order (code %s)', c.campaign, loyalty.coupon_code_display(x.code))
                    WHEN stack = 'exclusive' THEN pg_catalog.format('an exclusive coupon combines with no other, and code %s is on the order', loyalty.coupon_code_display(x.code))
                    WHEN loyalty.coupon_rule_stack(xc.rule) = 'exclusive' THEN pg_catalog.format('code %s on the order is exclusive', loyalty.coupon_code_display(x.code))
                    WHEN lower(stack) = lower(loyalty.coupon_rule_stack(xc.rule)) THEN pg_catalog.format('code %s of stack group %s is on the order', loyalty.coupon_code_display(x.code), stack)
               END
          INTO conflict
          FROM loyalty.coupon_redemption x
          JOIN loyalty.coupon_campaign xc ON xc.program = x.program AND xc.campaign = x.campaign
         WHERE x.program = p.code AND x.order_ref = coupon_counters.order_ref AND x.released_at IS NULL
         ORDER BY 1 NULLS LAST LIMIT 1;
        IF conflict IS NOT NULL THEN
            reason := 'stacking'; detail := conflict; discount := 0; RETURN;
        END IF;
        IF EXISTS (SELECT 1 FROM loyalty.coupon_redemption x
                    WHERE x.program = p.code AND x.order_ref = coupon_counters.order_ref AND x.released_at IS NULL
                      AND x.currency <> coupon_counters.currency) THEN
            RAISE EXCEPTION 'order_ref "%" has coupons in another currency than %', order_ref, currency
                USING ERRCODE = '22023', HINT = 'Every coupon of one order is redeemed on a cart of the order''s currency.';
        END IF;
        room := room - (SELECT coalesce(sum(x.discount), 0) FROM loyalty.coupon_redemption x
                         WHERE x.program = p.code AND x.order_ref = coupon_counters.order_ref AND x.released_at IS NULL);
    END IF;
    IF room IS NOT NULL THEN
        -- Cut down to the minor unit, so that the cap holds after rounding.
        scale := coalesce(loyalty.currency_minor_unit(currency), 2);
        room := trunc(greatest(room, 0), scale);
        IF discount > 0 AND room = 0 AND p.discount_cap_percent IS NULL THEN
            reason := 'stacking'; detail := 'the coupons on the order take the whole cart already'; discount := 0; RETURN;
        END IF;
        IF discount > 0 AND room = 0 THEN
            reason := 'cap_reached'; discount := 0; RETURN;
        END IF;
        discount := least(discount, room);
    END IF;
    discount_base := round(discount * rate, 4);
    IF c.spent_base + discount_base > c.budget THEN
        reason := 'budget_exhausted'; discount := 0; RETURN;
    END IF;
    ok := true;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_counters(@extschema@.program, @extschema@.coupon_campaign, @extschema@.coupon_code, text, text, numeric, text, numeric, text, numeric, numeric) IS
    'Whether a coupon with its offer may be used now (and on order_ref when given): ok, the discount cut to the cap, the reason, the discount in base currency, the detail of a stacking conflict';

-- Both steps at once, for the readers (validate_coupon, best_offer).
CREATE FUNCTION @extschema@.coupon_state(
    p @extschema@.program, c @extschema@.coupon_campaign, k @extschema@.coupon_code,
    member_id text, cart jsonb, as_of timestamptz, order_ref text,
    OUT ok boolean, OUT discount numeric, OUT reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    o record;
    s record;
BEGIN
    SELECT * INTO o FROM loyalty.coupon_offer(p, c, k, member_id, cart, as_of);
    SELECT * INTO s FROM loyalty.coupon_counters(p, c, k, member_id, order_ref, o.discount, o.reason, o.rate,
                                                 o.currency, o.subtotal, o.shipping);
    ok := s.ok;
    discount := s.discount;
    reason := s.reason;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_state(@extschema@.program, @extschema@.coupon_campaign, @extschema@.coupon_code, text, jsonb, timestamptz, text) IS
    'Whether a coupon applies to a member''s cart (member facts filled) now, and on order_ref when given: ok, the discount cut to the cap, the reason (coupon_offer, then coupon_counters)';

-- The stored code row for what a person typed, or a reason: unknown_code,
-- mistyped_code (the issued form with a wrong check character).
CREATE FUNCTION @extschema@.find_code(program text, code text, OUT k @extschema@.coupon_code, OUT reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    stored text := loyalty.coupon_code_normal(code);
BEGIN
    SELECT * INTO k FROM loyalty.coupon_code x WHERE x.program = find_code.program AND x.code = stored;
    IF NOT FOUND THEN
        reason := CASE WHEN loyalty.coupon_code_shape(stored) = 'mistyped' THEN 'mistyped_code' ELSE 'unknown_code' END;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.find_code(text, text) IS
    'The code row of a code as typed (case, spaces, dashes ignored), or the reason: unknown_code or mistyped_code';

CREATE FUNCTION @extschema@.validate_coupon(program text, code text, member_id text, cart jsonb,
                                            as_of timestamptz DEFAULT now(),
                                            OUT ok boolean, OUT discount numeric, OUT reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    m loyalty.member := loyalty.require_member(program, member_id);
    f record;
    c loyalty.coupon_campaign;
    s record;
BEGIN
    IF code IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'code and as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_cart(cart);
    PERFORM loyalty.check_as_of(as_of);
    ok := false;
    discount := 0;
    IF m.status <> 'active' THEN
        reason := 'member_not_active'; RETURN;
    END IF;
    SELECT * INTO f FROM loyalty.find_code(program, code);
    IF f.reason IS NOT NULL THEN
        reason := f.reason; RETURN;
    END IF;
    SELECT * INTO c FROM loyalty.coupon_campaign x WHERE x.program = p.code AND x.campaign = (f.k).campaign;
    SELECT * INTO s FROM loyalty.coupon_state(p, c, f.k, member_id,
        cart || jsonb_build_object('member', loyalty.member_facts(program, member_id, as_of)), as_of, NULL);
    ok := s.ok;
    discount := s.discount;
    reason := s.reason;
END
$$;
COMMENT ON FUNCTION @extschema@.validate_coupon(text, text, text, jsonb, timestamptz) IS
    'Whether a member may use a code on a cart now, and the discount; never raises for the coupon''s state (reason: unknown_code, mistyped_code, not_yours, used, limit_reached, member_limit_reached, budget_exhausted, audience, member_not_active, cap_reached or the evaluator''s reason)';

-- Raises the error of a reason coupon_state or find_code gave.
CREATE FUNCTION @extschema@.raise_coupon_reason(program text, code text, member_id text, campaign text,
                                                order_ref text, reason text, detail text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    CASE reason
    WHEN 'unknown_code' THEN
        RAISE EXCEPTION 'coupon code "%" does not exist in program "%"', code, program
            USING ERRCODE = 'LY020', HINT = 'Check the code with the customer; codes ignore case, spaces and dashes.';
    WHEN 'mistyped_code' THEN
        RAISE EXCEPTION 'coupon code "%" is mistyped', code
            USING ERRCODE = 'LY021', DETAIL = 'Its check character (the last one) does not match the others.',
                  HINT = 'Ask the customer to type the code again.';
    WHEN 'limit_reached' THEN
        RAISE EXCEPTION 'campaign "%" has reached its total limit', campaign
            USING ERRCODE = 'LY022', DETAIL = pg_catalog.format('Code %s cannot be redeemed any more.', code),
                  HINT = 'Released redemptions (cancelled orders) give units back.';
    WHEN 'member_limit_reached' THEN
        RAISE EXCEPTION 'member "%" has reached the limit of campaign "%"', member_id, campaign
            USING ERRCODE = 'LY023', DETAIL = pg_catalog.format('Code %s was not redeemed.', code),
                  HINT = 'A released redemption (a cancelled order) gives the member''s use back.';
    WHEN 'budget_exhausted' THEN
        RAISE EXCEPTION 'campaign "%" has no budget left for this discount', campaign
            USING ERRCODE = 'LY024', DETAIL = pg_catalog.format('Code %s was not redeemed.', code),
                  HINT = 'The budget counts discounts in the program''s base currency; a smaller discount may still fit.';
    WHEN 'not_yours' THEN
        RAISE EXCEPTION 'coupon code "%" was issued to another member', code
            USING ERRCODE = 'LY026', DETAIL = 'not_yours',
                  HINT = 'Only the member the code was issued to may use it.';
    WHEN 'used' THEN
        RAISE EXCEPTION 'coupon code "%" was already used', code
            USING ERRCODE = 'LY026', DETAIL = 'used',
                  HINT = 'An issued code is redeemed once; releasing its redemption makes it usable again.';
    WHEN 'stacking' THEN
        RAISE EXCEPTION 'coupon code "%" cannot be combined with the coupons of order_ref "%"', code, order_ref
            USING ERRCODE = 'LY027', DETAIL = pg_catalog.format('stacking: %s.', detail),
                  HINT = 'An exclusive coupon goes alone, one coupon per stack group; loyalty.best_offer() gives a combination that fits.';
    WHEN 'cap_reached' THEN
        RAISE EXCEPTION 'order_ref "%" has reached the program''s discount cap', order_ref
            USING ERRCODE = 'LY027', DETAIL = pg_catalog.format('cap_reached: code %s would take more than the cap of program %s allows.', code, program),
                  HINT = 'The program''s discount cap (loyalty.set_discount_cap) limits all coupons of one order together.';
    ELSE
        RAISE EXCEPTION 'coupon code "%" does not apply: %', code, reason
            USING ERRCODE = 'LY025', DETAIL = reason,
                  HINT = 'loyalty.validate_coupon() says why before the order is placed.';
    END CASE;
END
$$;
COMMENT ON FUNCTION @extschema@.raise_coupon_reason(text, text, text, text, text, text, text) IS
    'Raises the LY02x error of a coupon reason (unknown_code LY020, mistyped_code LY021, limit_reached LY022, member_limit_reached LY023, budget_exhausted LY024, not_yours and used LY026, stacking and cap_reached LY027, others LY025)';

-- The lock every redemption and release of an order_ref takes first.
CREATE FUNCTION @extschema@.lock_coupon_order(program text, order_ref text) RETURNS void
LANGUAGE sql VOLATILE
RETURN pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('loyalty.coupon_order'),
                                        pg_catalog.hashtext(program OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) order_ref));
COMMENT ON FUNCTION @extschema@.lock_coupon_order(text, text) IS
    'Takes the transaction lock of an order_ref''s coupons: stacking and the cap are checked under it';

-- Under REPEATABLE READ the snapshot is older than the order's lock:
-- 40001 when a coupon was committed on the order since (coupon_order.c).
CREATE FUNCTION @extschema@.check_coupon_order_snapshot(program text, order_ref text) RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'loyalty_check_coupon_order_snapshot';
COMMENT ON FUNCTION @extschema@.check_coupon_order_snapshot(text, text) IS
    'Raises 40001 when the transaction''s snapshot (REPEATABLE READ, SERIALIZABLE) misses an active coupon of the order that a fresh snapshot sees; call it holding the order''s lock; internal';

-- A replay of (program, code, order_ref): the first discount, or LY003.
CREATE FUNCTION @extschema@.coupon_replay(r @extschema@.coupon_redemption, member_id text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF r.member_id <> member_id THEN
        RAISE EXCEPTION 'order_ref "%" was used with code "%" by another member', r.order_ref, @extschema@.coupon_code_display(r.code)
            USING ERRCODE = 'LY003',
                  DETAIL = pg_catalog.format('Member %s redeemed it at %s.', r.member_id, r.redeemed_at),
                  HINT = 'Use a new order_ref for a new order.';
    END IF;
    IF r.released_at IS NOT NULL THEN
        RAISE EXCEPTION 'the redemption of code "%" on order_ref "%" was released', @extschema@.coupon_code_display(r.code), r.order_ref
            USING ERRCODE = 'LY003',
                  DETAIL = pg_catalog.format('Redeemed at %s, released at %s.', r.redeemed_at, r.released_at),
                  HINT = 'Use a new order_ref for a new order.';
    END IF;
    RETURN r.discount;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_replay(@extschema@.coupon_redemption, text) IS
    'A replayed redemption: its first discount; LY003 when another member made it or it was released';

CREATE FUNCTION @extschema@.redeem_coupon(program text, code text, member_id text, cart jsonb, order_ref text,
                                          as_of timestamptz DEFAULT now())
RETURNS numeric
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    m loyalty.member := loyalty.require_member(program, member_id);
    f record;
    c loyalty.coupon_campaign;
    r loyalty.coupon_redemption;
    o record;
    s record;
BEGIN
    PERFORM loyalty.cluster_one_connection();   -- 02_cluster_node.sql
    IF code IS NULL OR as_of IS NULL OR order_ref IS NULL OR order_ref = '' THEN
        RAISE EXCEPTION 'code, order_ref and as_of must not be null (nor order_ref empty)' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_cart(cart);
    PERFORM loyalty.check_as_of(as_of);
    SELECT * INTO f FROM loyalty.find_code(program, code);
    IF f.reason IS NOT NULL THEN
        PERFORM loyalty.raise_coupon_reason(program, code, member_id, NULL, order_ref, f.reason);
    END IF;
    -- A replay answers before any limit, lock or time check.
    SELECT * INTO r FROM loyalty.coupon_redemption x
     WHERE x.program = p.code AND x.code = (f.k).code AND x.order_ref = redeem_coupon.order_ref;
    IF FOUND THEN
        RETURN loyalty.coupon_replay(r, member_id);
    END IF;
    IF m.status <> 'active' THEN
        RAISE EXCEPTION 'member "%" is %', member_id, m.status
            USING ERRCODE = 'LY002', HINT = 'A held or forgotten member cannot redeem coupons.';
    END IF;
    PERFORM loyalty.check_spend_as_of(as_of);
    -- The offer does not depend on the counters: worked out before the locks.
    SELECT * INTO c FROM loyalty.coupon_campaign x WHERE x.program = p.code AND x.campaign = (f.k).campaign;
    SELECT * INTO o FROM loyalty.coupon_offer(p, c, f.k, member_id,
        cart || jsonb_build_object('member', loyalty.member_facts(program, member_id, as_of, order_ref)), as_of);
    -- The order's lock, then the campaign's: from here on every count is exact.
    PERFORM loyalty.lock_coupon_order(p.code, order_ref);
    PERFORM loyalty.check_coupon_order_snapshot(p.code, order_ref);
    PERFORM loyalty.fold_coupon_releases(p.code, (f.k).campaign);
    SELECT * INTO c FROM loyalty.coupon_campaign x
     WHERE x.program = p.code AND x.campaign = (f.k).campaign FOR UPDATE;
    -- Under the campaign's row lock (every redemption of the code takes it)
    -- this is the one check of (program, code, order_ref): the same member
    -- replays, another member is LY003.  No unique index backs it (keys
    -- include the member id, so the table can be distributed by member).
    SELECT * INTO r FROM loyalty.coupon_redemption x
     WHERE x.program = p.code AND x.code = (f.k).code AND x.order_ref = redeem_coupon.order_ref;
    IF FOUND THEN
        RETURN loyalty.coupon_replay(r, member_id);
    END IF;
    SELECT * INTO s FROM loyalty.coupon_counters(p, c, f.k, member_id, order_ref, o.discount, o.reason, o.rate,
                                                 o.currency, o.subtotal, o.shipping);
    IF NOT s.ok THEN
        PERFORM loyalty.raise_coupon_reason(program, loyalty.coupon_code_display((f.k).code), member_id, c.campaign,
                                            order_ref, s.reason, s.detail);
    END IF;
    INSERT INTO loyalty.coupon_redemption (program, member_id, code, campaign, order_ref, currency, subtotal,
                                           discount, discount_base, redeemed_at)
    VALUES (p.code, member_id, (f.k).code, c.campaign, order_ref, o.currency, o.subtotal,
            s.discount, s.discount_base, as_of);
    UPDATE loyalty.coupon_campaign x
       SET redeemed_count = x.redeemed_count + 1, spent_base = x.spent_base + s.discount_base
     WHERE x.program = p.code AND x.campaign = c.campaign;
    RETURN s.discount;
END
$$;
COMMENT ON FUNCTION @extschema@.redeem_coupon(text, text, text, jsonb, text, timestamptz) IS
    'Redeems a code for a member''s cart on order_ref and returns the discount (cut to the program''s cap); idempotent on (program, code, order_ref); LY020-LY027 when it cannot';

/*
 * What releases give back, applied to the campaign row once per
 * transaction and campaign, at commit (or at the transaction's next
 * redemption of the campaign).  A statement that cancels or refunds many
 * orders releases them one order at a time (the accrual trigger writes
 * order_earning row by row); updating the campaign row each time made the
 * transaction walk an ever longer chain of the row's own versions
 * (10,000 orders: minutes), and locking it in each trigger's
 * subtransaction grew a multixact per order.  Until the releasing
 * transaction commits, other sessions count the released units as still
 * taken: a limit is never passed, a unit comes back at commit.
 */
CREATE TABLE @extschema@.coupon_release_pending (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program     text NOT NULL,
    campaign    text NOT NULL,
    released    integer NOT NULL,
    spent_base  numeric NOT NULL
);
CREATE INDEX coupon_release_pending_campaign_idx ON @extschema@.coupon_release_pending (program, campaign);
COMMENT ON TABLE @extschema@.coupon_release_pending IS
    'Counter changes of released coupons not yet applied to their campaign row; empty outside a transaction that releases';

CREATE FUNCTION @extschema@.fold_coupon_releases(program text, campaign text) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
BEGIN ATOMIC
    WITH d AS (
        DELETE FROM loyalty.coupon_release_pending x
         WHERE x.program OPERATOR(pg_catalog.=) fold_coupon_releases.program
           AND x.campaign OPERATOR(pg_catalog.=) fold_coupon_releases.campaign
        RETURNING x.released, x.spent_base
    ), s AS (
        SELECT pg_catalog.sum(d.released) AS n, pg_catalog.sum(d.spent_base) AS spent FROM d
    )
    UPDATE loyalty.coupon_campaign c
       SET redeemed_count = c.redeemed_count OPERATOR(pg_catalog.-) s.n::integer,
           spent_base = c.spent_base OPERATOR(pg_catalog.-) s.spent
      FROM s
     WHERE s.n IS NOT NULL
       AND c.program OPERATOR(pg_catalog.=) fold_coupon_releases.program
       AND c.campaign OPERATOR(pg_catalog.=) fold_coupon_releases.campaign;
END;
COMMENT ON FUNCTION @extschema@.fold_coupon_releases(text, text) IS
    'Applies the transaction''s pending releases of a campaign to its counters (redeemed_count, spent_base); internal';

-- Deferred: fires at commit once per pending row; the first row of a
-- campaign folds them all, the others find their row gone (a primary-key look-up).
CREATE FUNCTION @extschema@.coupon_release_pending_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM loyalty.coupon_release_pending x WHERE x.id = NEW.id) THEN
        PERFORM loyalty.fold_coupon_releases(NEW.program, NEW.campaign);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_release_pending_trigger() IS
    'Deferred trigger on loyalty.coupon_release_pending: folds a campaign''s pending releases into its counters at commit';
CREATE CONSTRAINT TRIGGER coupon_release_fold AFTER INSERT ON @extschema@.coupon_release_pending
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION @extschema@.coupon_release_pending_trigger();

-- Gives back the active redemptions of some order_refs: locks each order
-- (in order), marks the redemptions released and leaves the campaigns'
-- counters to coupon_release_pending (applied at commit).  Returns how
-- many were released.
CREATE FUNCTION @extschema@.release_orders(program text, order_refs text[]) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    released integer;
BEGIN
    PERFORM loyalty.lock_coupon_order(release_orders.program, o)
       FROM (SELECT DISTINCT o FROM unnest(order_refs) o WHERE o IS NOT NULL ORDER BY o) x;
    WITH r AS (
        UPDATE loyalty.coupon_redemption r SET released_at = now()
         WHERE r.program = release_orders.program AND r.order_ref = ANY (order_refs) AND r.released_at IS NULL
        RETURNING r.campaign, r.discount_base
    ), s AS (
        SELECT r.campaign, count(*) AS n, sum(r.discount_base) AS spent FROM r GROUP BY r.campaign
    ), u AS (
        INSERT INTO loyalty.coupon_release_pending (program, campaign, released, spent_base)
        SELECT release_orders.program, s.campaign, s.n, s.spent FROM s
    )
    SELECT coalesce(sum(s.n), 0) INTO released FROM s;
    RETURN released;
END
$$;
COMMENT ON FUNCTION @extschema@.release_orders(text, text[]) IS
    'Releases the active coupon redemptions of order_refs, giving their limit units and budget back; returns how many';

CREATE FUNCTION @extschema@.release_coupon(program text, order_ref text) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.cluster_one_connection();   -- 02_cluster_node.sql
    PERFORM loyalty.require_program(program);
    IF order_ref IS NULL THEN
        RAISE EXCEPTION 'order_ref must not be null' USING ERRCODE = '22004';
    END IF;
    RETURN loyalty.release_orders(program, ARRAY[order_ref]);
END
$$;
COMMENT ON FUNCTION @extschema@.release_coupon(text, text) IS
    'Releases every active coupon redemption of an order_ref (limit units and budget given back, issued codes usable again); idempotent; returns how many';

/*
 * Automatic release: an attached order that is cancelled (closing status),
 * deleted or truncated closes its order_earning row; a full refund brings
 * refunded_amount up to the amount.  Either releases the coupons redeemed
 * on order_ref = the order id.  Statement-level, with transition tables.
 * A failure is a WARNING, never a failed order change (the coupon can still
 * be released with loyalty.release_coupon).
 */
CREATE FUNCTION @extschema@.coupon_release_trigger() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    o record;
BEGIN
    -- On a Citus cluster this fires on a shard of order_earning, where only
    -- one member's rows can be read and the campaigns' reference tables
    -- cannot be written: a coupon of an order closed there is named in a
    -- WARNING, to be released with loyalty.release_coupon() on the
    -- coordinator (docs/scale-out.md).
    IF loyalty.distributed() THEN
        FOR o IN
            SELECT n.program, n.member_id, n.order_id
              FROM new_rows n JOIN old_rows b ON b.program = n.program AND b.order_id = n.order_id
             WHERE n.member_id IS NOT NULL
               AND ((n.closed AND NOT b.closed)
                    OR (n.amount > 0 AND n.refunded_amount >= n.amount AND NOT (b.amount > 0 AND b.refunded_amount >= b.amount)))
        LOOP
            IF EXISTS (SELECT 1 FROM loyalty.coupon_redemption r
                        WHERE r.program = o.program AND r.member_id = o.member_id
                          AND r.order_ref = o.order_id AND r.released_at IS NULL) THEN
                RAISE WARNING 'loyalty: coupons of order % of program "%" not released on the cluster', o.order_id, o.program
                    USING HINT = 'Release them with loyalty.release_coupon(program, order_ref) on the coordinator.';
            END IF;
        END LOOP;
        RETURN NULL;
    END IF;
    FOR o IN
        SELECT n.program, array_agg(n.order_id ORDER BY n.order_id) AS refs
          FROM new_rows n JOIN old_rows b ON b.program = n.program AND b.order_id = n.order_id
         WHERE ((n.closed AND NOT b.closed)
                OR (n.amount > 0 AND n.refunded_amount >= n.amount AND NOT (b.amount > 0 AND b.refunded_amount >= b.amount)))
           AND EXISTS (SELECT 1 FROM loyalty.coupon_redemption r
                        WHERE r.program = n.program AND r.order_ref = n.order_id AND r.released_at IS NULL)
         GROUP BY n.program ORDER BY n.program
    LOOP
        BEGIN
            PERFORM loyalty.release_orders(o.program, o.refs);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'loyalty: coupons of orders % of program "%" not released: %', o.refs, o.program, SQLERRM
                USING HINT = 'Release them with loyalty.release_coupon(program, order_ref).';
        END;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_release_trigger() IS
    'Trigger on loyalty.order_earning: releases the coupons of orders that became closed (cancelled, deleted, truncated) or fully refunded';

CREATE FUNCTION @extschema@.coupon_release_delete_trigger() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    o record;
BEGIN
    -- On a Citus cluster: see coupon_release_trigger().
    IF loyalty.distributed() THEN
        FOR o IN SELECT b.program, b.member_id, b.order_id FROM old_rows b WHERE b.member_id IS NOT NULL LOOP
            IF EXISTS (SELECT 1 FROM loyalty.coupon_redemption r
                        WHERE r.program = o.program AND r.member_id = o.member_id
                          AND r.order_ref = o.order_id AND r.released_at IS NULL) THEN
                RAISE WARNING 'loyalty: coupons of order % of program "%" not released on the cluster', o.order_id, o.program
                    USING HINT = 'Release them with loyalty.release_coupon(program, order_ref) on the coordinator.';
            END IF;
        END LOOP;
        RETURN NULL;
    END IF;
    FOR o IN
        SELECT b.program, array_agg(b.order_id ORDER BY b.order_id) AS refs
          FROM old_rows b
         WHERE EXISTS (SELECT 1 FROM loyalty.coupon_redemption r
                        WHERE r.program = b.program AND r.order_ref = b.order_id AND r.released_at IS NULL)
         GROUP BY b.program ORDER BY b.program
    LOOP
        PERFORM loyalty.release_orders(o.program, o.refs);
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_release_delete_trigger() IS
    'Trigger on loyalty.order_earning: releases the coupons of orders whose record is deleted';

CREATE TRIGGER coupon_release_update AFTER UPDATE ON @extschema@.order_earning
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coupon_release_trigger();
CREATE TRIGGER coupon_release_delete AFTER DELETE ON @extschema@.order_earning
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coupon_release_delete_trigger();

CREATE FUNCTION @extschema@.set_discount_cap(program text, percent numeric) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF percent <= 0 OR percent > 100 OR percent = 'NaN' THEN
        RAISE EXCEPTION 'invalid discount cap: %', percent
            USING ERRCODE = '22023',
                  DETAIL = 'The cap is the most all coupons of one order may take off, in percent of its subtotal: above 0, at most 100, or NULL for none.';
    END IF;
    UPDATE loyalty.program p SET discount_cap_percent = percent WHERE p.code = set_discount_cap.program;
END
$$;
COMMENT ON FUNCTION @extschema@.set_discount_cap(text, numeric) IS
    'Sets (NULL: removes) the most all coupons of one order_ref may take off, in percent of the subtotal';

/*
 * The best offer for a member's cart: the combination of usable codes with
 * the largest total discount.
 *
 * Candidates: the member's issued codes without an active redemption and
 * the program's shared codes, each checked like validate_coupon (limits,
 * audience, budget, the rule, the cap for one coupon alone), with a
 * discount above 0; one code per campaign (the member's own issued code
 * before a shared one, then the first in text order).  The search is
 * bounded: the 12 candidates with the largest discounts (then the
 * soonest-ending campaign, then the code).
 *
 * Combinations: one exclusive coupon alone, or coupons of which no two
 * share a stack group (coupons without a group combine freely).  A
 * combination's total is its sum, cut to the program's cap.  The best has
 * the largest total; ties go to the combination holding the soonest-ending
 * campaign (coupon_rule_valid_until, open-ended last), then the one with
 * fewer codes, then the first by its codes in text order.  Under a cap the
 * discounts are given out soonest-ending first (then larger first, then by
 * code) until the cap is used up.
 */
CREATE FUNCTION @extschema@.best_offer(program text, member_id text, cart jsonb, as_of timestamptz DEFAULT now())
RETURNS TABLE (code text, discount numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    m loyalty.member := loyalty.require_member(program, member_id);
    full_cart jsonb;
    room numeric;
    used text[];
BEGIN
    PERFORM loyalty.check_cart(cart);
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_as_of(as_of);
    IF m.status <> 'active' THEN
        RETURN;
    END IF;
    full_cart := cart || jsonb_build_object('member', loyalty.member_facts(program, member_id, as_of));
    -- The evaluator checks the cart (LY030) before its amounts are summed here.
    PERFORM loyalty.coupon_discount('10% off', cart);
    IF p.discount_cap_percent IS NOT NULL THEN
        room := trunc(loyalty.cart_subtotal(cart) * p.discount_cap_percent / 100,
                      coalesce(loyalty.currency_minor_unit(upper(cart ->> 'currency')), 2));
    ELSE
        -- No cap: a combination still takes at most the cart.
        room := loyalty.cart_subtotal(cart) + coalesce((cart ->> 'shipping')::numeric, 0);
    END IF;
    -- The member's own codes already redeemed, looked up first: on a
    -- cluster the redemptions are distributed, and Citus plans a recursive
    -- query only over the reference tables.
    used := ARRAY(SELECT r.code FROM loyalty.coupon_redemption r
                   WHERE r.program = p.code AND r.released_at IS NULL
                     AND r.code IN (SELECT k.code FROM loyalty.coupon_code k
                                     WHERE k.program = p.code AND k.member_id = best_offer.member_id AND NOT k.shared));
    RETURN QUERY
    WITH RECURSIVE owned AS (
        -- Rows rebuilt from JSON: on a cluster Citus would hand coupon_state
        -- the row type of a reference table's shard.
        SELECT jsonb_populate_record(NULL::loyalty.coupon_code, to_jsonb(k)) AS k,
               jsonb_populate_record(NULL::loyalty.coupon_campaign, to_jsonb(c)) AS c,
               k.member_id IS NOT NULL AS own
          FROM loyalty.coupon_code k
          JOIN loyalty.coupon_campaign c ON c.program = k.program AND c.campaign = k.campaign
         WHERE k.program = p.code
           AND ((k.member_id = best_offer.member_id AND NOT k.shared AND k.code <> ALL (used)) OR k.shared)
    ), checked AS (
        SELECT (o.k).code AS code, (o.c).campaign AS campaign, o.own, s.discount,
               loyalty.coupon_rule_stack((o.c).rule) AS stack,
               loyalty.coupon_rule_valid_until((o.c).rule) AS until
          FROM owned o
         CROSS JOIN LATERAL loyalty.coupon_state(p, o.c, o.k, best_offer.member_id, full_cart, as_of, NULL) s
         WHERE s.ok AND s.discount > 0
    ), one_per_campaign AS (
        SELECT DISTINCT ON (x.campaign) x.* FROM checked x ORDER BY x.campaign, x.own DESC, x.code
    ), cand AS (
        SELECT row_number() OVER (ORDER BY y.discount DESC, y.until NULLS LAST, y.code)::integer AS i, y.*
          FROM (SELECT z.* FROM one_per_campaign z ORDER BY z.discount DESC, z.until NULLS LAST, z.code LIMIT 12) y
    ), combo AS (
        SELECT ARRAY[x.i] AS ids, x.i AS last, ARRAY[lower(x.stack)] AS stacks, x.discount AS total,
               coalesce(x.stack = 'exclusive', false) AS exclusive, x.until AS soonest, ARRAY[x.code] AS codes
          FROM cand x
        UNION ALL
        SELECT b.ids || x.i, x.i, b.stacks || lower(x.stack), b.total + x.discount, false,
               least(b.soonest, x.until), b.codes || x.code
          FROM combo b JOIN cand x ON x.i > b.last
         WHERE NOT b.exclusive AND coalesce(x.stack <> 'exclusive', true)
           AND (x.stack IS NULL OR NOT coalesce(lower(x.stack) = ANY (b.stacks), false))
    ), best AS (
        SELECT b.ids FROM combo b
         ORDER BY least(b.total, coalesce(room, b.total)) DESC, b.soonest NULLS LAST,
                  array_length(b.ids, 1), (SELECT array_agg(t ORDER BY t) FROM unnest(b.codes) t)
         LIMIT 1
    ), given AS (
        SELECT x.code, x.discount, x.until,
               sum(x.discount) OVER (ORDER BY x.until NULLS LAST, x.discount DESC, x.code) AS running
          FROM cand x, best WHERE x.i = ANY (best.ids)
    )
    SELECT loyalty.coupon_code_display(g.code),
           CASE WHEN room IS NULL THEN g.discount
                ELSE least(g.discount, greatest(room - (g.running - g.discount), 0)) END
      FROM given g
     WHERE room IS NULL OR room - (g.running - g.discount) > 0
     ORDER BY g.until NULLS LAST, g.discount DESC, g.code;
END
$$;
COMMENT ON FUNCTION @extschema@.best_offer(text, text, jsonb, timestamptz) IS
    'The member''s usable codes (own unused issued codes, shared codes) whose combination gives the largest total discount under stacking groups and the cap (ties: soonest-ending campaign, fewer codes, codes in text order; at most one code per campaign, the 12 best candidates searched)';
