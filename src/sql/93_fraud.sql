-- Fraud checks: per-program rule settings, the flags fraud_check raises,
-- and their review.

-- The rules fraud_check knows, by name.
CREATE FUNCTION @extschema@.fraud_rule_names() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['velocity', 'small_payment_burst', 'shared_fingerprint', 'geo_mismatch',
             'refund_ratio', 'earn_burn', 'coupon_farming', 'referral_ring'];
COMMENT ON FUNCTION @extschema@.fraud_rule_names() IS
    'The names of the fraud rules fraud_check applies';

-- Per program and rule: enabled, and parameters over the documented defaults.
CREATE TABLE @extschema@.fraud_rule (
    program     text NOT NULL REFERENCES @extschema@.program (code),
    rule        text NOT NULL CHECK (rule OPERATOR(pg_catalog.=) ANY (@extschema@.fraud_rule_names())),
    enabled     boolean NOT NULL DEFAULT true,
    params      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program, rule)
);
COMMENT ON TABLE @extschema@.fraud_rule IS
    'Fraud rule settings per program: enabled, and parameters that override the defaults (no row: enabled with the defaults)';

-- Per program: the risk score at which a member is held.
CREATE TABLE @extschema@.fraud_setting (
    program         text PRIMARY KEY REFERENCES @extschema@.program (code),
    hold_threshold  numeric NOT NULL DEFAULT 80 CHECK (hold_threshold > 0 AND hold_threshold <= 100),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.fraud_setting IS
    'Per program, the member risk score (0-100) from which a member is held (no row: 80)';

-- Flags raised by fraud_check; one per member, rule and subject.
CREATE SEQUENCE @extschema@.fraud_flag_id_seq;
CREATE TABLE @extschema@.fraud_flag (
    id              bigint NOT NULL DEFAULT nextval('@extschema@.fraud_flag_id_seq'),
    program         text NOT NULL,
    member_id       text NOT NULL,
    rule            text NOT NULL,
    subject         text NOT NULL,
    score           numeric NOT NULL CHECK (score > 0 AND score <= 100),
    evidence        jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'confirmed', 'dismissed')),
    raised_at       timestamptz NOT NULL,
    decided_at      timestamptz,
    decided_by      text,
    note            text,
    points_at_risk  bigint NOT NULL DEFAULT 0 CHECK (points_at_risk >= 0),
    points_reversed bigint NOT NULL DEFAULT 0 CHECK (points_reversed >= 0),
    UNIQUE (program, member_id, rule, subject),
    CHECK ((state = 'open') = (decided_at IS NULL)),
    PRIMARY KEY (id, member_id)
);
ALTER SEQUENCE @extschema@.fraud_flag_id_seq OWNED BY @extschema@.fraud_flag.id;
CREATE INDEX fraud_flag_open_idx ON @extschema@.fraud_flag (program, member_id) WHERE state = 'open';
COMMENT ON TABLE @extschema@.fraud_flag IS
    'Fraud flags: member, rule, subject (what makes it unique: a rerun raises no duplicate), score, evidence, review state and decision';
COMMENT ON COLUMN @extschema@.fraud_flag.subject IS
    'What the flag is about within its rule (a fingerprint, a day, an order): one flag per member, rule and subject';
COMMENT ON COLUMN @extschema@.fraud_flag.evidence IS
    'What fraud_check saw: the orders ("orders"), ledger rows ("ledger"), other members ("members") and figures of the rule';
COMMENT ON COLUMN @extschema@.fraud_flag.points_at_risk IS
    'Points the flagged activity earned, when raised: what confirming it reverses';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.fraud_rule', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.fraud_setting', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.fraud_flag', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.fraud_flag_id_seq', '');

-- The documented defaults of each rule (docs/fraud.md).  Every rule also
-- takes "score" (above 0, at most 100): the score of its flags.
CREATE FUNCTION @extschema@.fraud_rule_defaults(rule text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    defaults jsonb;
BEGIN
    IF rule IS NULL THEN
        RAISE EXCEPTION 'rule must not be null' USING ERRCODE = '22004';
    END IF;
    defaults := CASE rule
        WHEN 'velocity' THEN '{"orders": 5, "minutes": 10, "score": 40}'
        WHEN 'small_payment_burst' THEN '{"orders": 5, "max_amount": 5, "minutes": 60, "score": 40}'
        WHEN 'shared_fingerprint' THEN '{"members": 3, "contact_members": 2, "kinds": ["device_id", "payment_fingerprint", "shipping_address", "email", "phone"], "score": 50}'
        WHEN 'geo_mismatch' THEN '{"orders": 2, "share": 0.5, "score": 50}'
        WHEN 'refund_ratio' THEN '{"orders": 4, "ratio": 0.5, "score": 40}'
        WHEN 'earn_burn' THEN '{"points": 1000, "hours": 24, "share": 0.8, "score": 40}'
        WHEN 'coupon_farming' THEN '{"members": 2, "score": 60}'
        WHEN 'referral_ring' THEN '{"score": 70}'
    END::jsonb;
    IF defaults IS NULL THEN
        RAISE EXCEPTION 'unknown fraud rule "%"', rule
            USING ERRCODE = '22023',
                  HINT = 'The rules are ' || array_to_string(loyalty.fraud_rule_names(), ', ') || '.';
    END IF;
    RETURN defaults;
END
$$;
COMMENT ON FUNCTION @extschema@.fraud_rule_defaults(text) IS
    'The default parameters of a fraud rule, score included; 22023 for an unknown rule';

-- Checks parameters given for a rule: known keys only, each of its kind.
-- Returns the effective parameters (defaults overridden by params).
CREATE FUNCTION @extschema@.check_fraud_params(rule text, params jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    defaults jsonb := loyalty.fraud_rule_defaults(rule);
    key text;
    value jsonb;
    n numeric;
    bad text;
BEGIN
    IF params IS NULL THEN
        RAISE EXCEPTION 'params must not be null' USING ERRCODE = '22004',
              HINT = 'Pass ''{}'' for the defaults.';
    END IF;
    IF jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'params of fraud rule "%" must be a JSON object, not %', rule, params
            USING ERRCODE = '22023';
    END IF;
    FOR key, value IN SELECT e.key, e.value FROM jsonb_each(params) e LOOP
        IF NOT defaults ? key THEN
            RAISE EXCEPTION 'unknown parameter "%" of fraud rule "%"', key, rule
                USING ERRCODE = '22023',
                      HINT = 'Its parameters are ' || (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(defaults) k) || '.';
        END IF;
        IF key = 'kinds' THEN
            IF jsonb_typeof(value) <> 'array' OR jsonb_array_length(value) = 0 THEN
                RAISE EXCEPTION 'parameter "kinds" of fraud rule "%" must be a non-empty JSON array, not %', rule, value
                    USING ERRCODE = '22023';
            END IF;
            SELECT string_agg(k::text, ', ') INTO bad FROM jsonb_array_elements(value) k
             WHERE jsonb_typeof(k) <> 'string'
                OR k #>> '{}' NOT IN ('device_id', 'payment_fingerprint', 'shipping_address', 'ip', 'email', 'phone');
            IF bad IS NOT NULL THEN
                RAISE EXCEPTION 'unknown kind % in parameter "kinds" of fraud rule "%"', bad, rule
                    USING ERRCODE = '22023',
                          HINT = 'Kinds are device_id, payment_fingerprint, shipping_address, ip, email and phone.';
            END IF;
            CONTINUE;
        END IF;
        IF jsonb_typeof(value) <> 'number' THEN
            RAISE EXCEPTION 'parameter "%" of fraud rule "%" must be a number, not %', key, rule, value
                USING ERRCODE = '22023';
        END IF;
        n := value::numeric;
        IF key IN ('orders', 'members', 'contact_members', 'points') AND (n <> trunc(n) OR n < CASE WHEN key LIKE '%members' THEN 2 ELSE 1 END OR n > 1000000000) THEN
            RAISE EXCEPTION 'parameter "%" of fraud rule "%" must be a whole number from % to 1000000000, not %',
                            key, rule, CASE WHEN key LIKE '%members' THEN 2 ELSE 1 END, value
                USING ERRCODE = '22023';
        ELSIF key IN ('share', 'ratio') AND (n <= 0 OR n > 1) THEN
            RAISE EXCEPTION 'parameter "%" of fraud rule "%" must be above 0 and at most 1, not %', key, rule, value
                USING ERRCODE = '22023';
        ELSIF key = 'score' AND (n <= 0 OR n > 100) THEN
            RAISE EXCEPTION 'parameter "score" of fraud rule "%" must be above 0 and at most 100, not %', rule, value
                USING ERRCODE = '22023';
        ELSIF key IN ('minutes', 'hours', 'max_amount') AND (n <= 0 OR n > 1000000000) THEN
            RAISE EXCEPTION 'parameter "%" of fraud rule "%" must be above 0 and at most 1000000000, not %', key, rule, value
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    RETURN defaults || params;
END
$$;
COMMENT ON FUNCTION @extschema@.check_fraud_params(text, jsonb) IS
    'Validates parameters of a fraud rule (22023 naming the bad key or value) and returns them over the rule''s defaults';

CREATE FUNCTION @extschema@.set_fraud_rule(program text, rule text, params jsonb, enabled boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    effective jsonb;
BEGIN
    PERFORM loyalty.require_program(program);
    IF rule IS NULL THEN
        RAISE EXCEPTION 'rule must not be null' USING ERRCODE = '22004';
    END IF;
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'enabled must not be null' USING ERRCODE = '22004';
    END IF;
    effective := loyalty.check_fraud_params(rule, params);
    INSERT INTO loyalty.fraud_rule AS r (program, rule, enabled, params)
    VALUES (set_fraud_rule.program, set_fraud_rule.rule, set_fraud_rule.enabled, set_fraud_rule.params)
    ON CONFLICT ON CONSTRAINT fraud_rule_pkey DO UPDATE
    SET enabled = excluded.enabled, params = excluded.params, updated_at = now();
    RETURN effective;
END
$$;
COMMENT ON FUNCTION @extschema@.set_fraud_rule(text, text, jsonb, boolean) IS
    'Sets a fraud rule of a program: parameters overriding the defaults (replacing those set before; ''{}'' for the defaults) and enabled; returns the effective parameters';

-- Every rule of a program with its effective parameters (what fraud_check reads).
CREATE FUNCTION @extschema@.fraud_rule_params(program text)
RETURNS TABLE (rule text, enabled boolean, params jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
BEGIN ATOMIC
    SELECT n.rule, coalesce(r.enabled, true),
           loyalty.fraud_rule_defaults(n.rule) OPERATOR(pg_catalog.||) coalesce(r.params, '{}'::jsonb)
      FROM unnest(loyalty.fraud_rule_names()) AS n(rule)
      LEFT JOIN loyalty.fraud_rule r
        ON r.program OPERATOR(pg_catalog.=) fraud_rule_params.program AND r.rule OPERATOR(pg_catalog.=) n.rule
     ORDER BY n.rule;
END;
COMMENT ON FUNCTION @extschema@.fraud_rule_params(text) IS
    'Each fraud rule of a program: enabled, and its effective parameters (defaults overridden by loyalty.fraud_rule)';

CREATE FUNCTION @extschema@.set_hold_threshold(program text, threshold numeric)
RETURNS numeric
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF threshold IS NULL THEN
        RAISE EXCEPTION 'threshold must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT (threshold > 0 AND threshold <= 100) THEN
        RAISE EXCEPTION 'hold threshold must be above 0 and at most 100, not %', threshold
            USING ERRCODE = '22023';
    END IF;
    -- updated_at from a value: Citus wants the DO UPDATE of a reference
    -- table free of functions that are not immutable.
    INSERT INTO loyalty.fraud_setting AS s (program, hold_threshold, updated_at)
    VALUES (set_hold_threshold.program, threshold, now())
    ON CONFLICT ON CONSTRAINT fraud_setting_pkey DO UPDATE
    SET hold_threshold = excluded.hold_threshold, updated_at = excluded.updated_at;
    RETURN threshold;
END
$$;
COMMENT ON FUNCTION @extschema@.set_hold_threshold(text, numeric) IS
    'Sets the member risk score (above 0, at most 100) from which fraud_check holds a member; returns it';

CREATE FUNCTION @extschema@.hold_threshold_of(program text) RETURNS numeric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
-- PL/pgSQL, not a SQL-standard body: Citus cannot run those when they read
-- a table (a reference table here) on a cluster.
AS $$
BEGIN
    RETURN coalesce((SELECT s.hold_threshold FROM loyalty.fraud_setting s
                      WHERE s.program OPERATOR(pg_catalog.=) hold_threshold_of.program), 80);
END
$$;
COMMENT ON FUNCTION @extschema@.hold_threshold_of(text) IS
    'The hold threshold of a program (80 when not set)';

-- 100 x (1 - product of (1 - score/100)), two decimals: independent
-- signals add up, and never pass 100.  One definition for member_risk and
-- the holds of fraud_check.
CREATE FUNCTION @extschema@.combine_risk(scores numeric[]) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN 100 OPERATOR(pg_catalog.<=) ANY (scores) THEN 100.00
            ELSE pg_catalog.round(100 OPERATOR(pg_catalog.*) (1 OPERATOR(pg_catalog.-) coalesce(
                     (SELECT pg_catalog.exp(pg_catalog.sum(pg_catalog.ln(1 OPERATOR(pg_catalog.-) (s OPERATOR(pg_catalog./) 100))))
                        FROM unnest(scores) AS s), 1)), 2) END;
COMMENT ON FUNCTION @extschema@.combine_risk(numeric[]) IS
    'The risk of a set of flag scores: 100 x (1 - product of (1 - score/100)), rounded to 2 decimals (0 for none)';

CREATE FUNCTION @extschema@.member_risk(program text, member_id text) RETURNS numeric
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF member_id IS NULL THEN
        RAISE EXCEPTION 'member_id must not be null' USING ERRCODE = '22004';
    END IF;
    RETURN loyalty.combine_risk(ARRAY(SELECT f.score FROM loyalty.fraud_flag f
                                       WHERE f.program = member_risk.program AND f.member_id = member_risk.member_id
                                         AND f.state = 'open'));
END
$$;
COMMENT ON FUNCTION @extschema@.member_risk(text, text) IS
    'A member''s fraud risk, 0-100: combine_risk of the scores of its open flags (100 x (1 - product of (1 - score/100)), 2 decimals)';

CREATE FUNCTION @extschema@.fraud_check(program text, since timestamptz, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_fraud_check';
COMMENT ON FUNCTION @extschema@.fraud_check(text, timestamptz, timestamptz) IS
    'One pass over a program''s orders, contacts, ledger, coupon redemptions and referrals in [since, as_of]: raises flags by the enabled rules (none twice), holds members whose risk reaches the threshold; returns the new flags';
