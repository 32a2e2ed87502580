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
    id              bigint PRIMARY KEY DEFAULT nextval('@extschema@.fraud_flag_id_seq'),
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
    CHECK ((state = 'open') = (decided_at IS NULL))
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
