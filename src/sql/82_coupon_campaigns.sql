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
CREATE UNIQUE INDEX coupon_redemption_ref_key ON @extschema@.coupon_redemption (program, code, order_ref);
CREATE INDEX coupon_redemption_order_idx ON @extschema@.coupon_redemption (program, order_ref) WHERE released_at IS NULL;
CREATE INDEX coupon_redemption_member_idx ON @extschema@.coupon_redemption (program, member_id, campaign) WHERE released_at IS NULL;
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
    'A stored code as shown to people: an issued code in groups of four (K7QX-M2RD-P9XZ), a shared code as stored';

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
    'Issues n (1 to 100000) single-use random codes with a check character, to a member or (member_id NULL) to anyone; returns them grouped (K7QX-M2RD-P9XZ)';

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
