-- Referrals: codes members share, who referred whom, the rewards both
-- sides get once the referee's first order has stood, milestones, caps and
-- multi-level commission.

-- A program's referral terms (no row: the program has no referral rewards).
CREATE TABLE @extschema@.referral_setting (
    program             text PRIMARY KEY REFERENCES @extschema@.program (code),
    referrer_points     bigint NOT NULL DEFAULT 0 CHECK (referrer_points >= 0),
    referee_points      bigint NOT NULL DEFAULT 0 CHECK (referee_points >= 0),
    referrer_campaign   text,
    referee_campaign    text,
    milestones          jsonb NOT NULL DEFAULT '[]',
    cap                 integer CHECK (cap >= 1),
    cap_period          interval CHECK (cap_period > interval '0'),
    commission          numeric[] NOT NULL DEFAULT '{}'
                        CHECK (cardinality(commission) <= 3 AND array_position(commission, NULL) IS NULL
                               AND 0 <= ALL (commission) AND 1 >= ALL (commission)),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT referral_setting_cap CHECK ((cap IS NULL) = (cap_period IS NULL))
);
COMMENT ON TABLE @extschema@.referral_setting IS
    'Referral terms per program: points or coupon campaign for referrer and referee, milestones, cap per referrer and period, commission by level';
COMMENT ON COLUMN @extschema@.referral_setting.milestones IS
    'Milestone rewards of a referrer: a JSON array of {"referrals": n, "points": p}, paid once when the n-th referral is rewarded';
COMMENT ON COLUMN @extschema@.referral_setting.commission IS
    'Commission of up to three levels of referrers, as fractions of the points a referee''s order earns (e.g. {0.03,0.015,0.005})';

-- Each member's referral code: made on first ask, never changed.
CREATE TABLE @extschema@.referral_code (
    program     text NOT NULL,
    member_id   text NOT NULL,
    code        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program, member_id),
    UNIQUE (program, code)
);
COMMENT ON TABLE @extschema@.referral_code IS
    'Referral codes of members (random, with a check character), made by loyalty.referral_code() on first ask';

-- Who referred whom: one row per referee (member_id), accepted referrals only.
CREATE TABLE @extschema@.referral (
    program         text NOT NULL,
    member_id       text NOT NULL,
    referrer_id     text NOT NULL,
    code            text NOT NULL,
    referred_at     timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'rewarded', 'capped', 'void')),
    first_order_id  text,
    settled_at      timestamptz,
    PRIMARY KEY (program, member_id),
    CHECK (member_id <> referrer_id)
);
CREATE INDEX referral_referrer_idx ON @extschema@.referral (program, referrer_id);
COMMENT ON TABLE @extschema@.referral IS
    'Accepted referrals, one per referee (member_id): pending until the first order stands, then rewarded, capped (over the referrer''s cap) or void (first order refunded or cancelled)';

-- Referrals refused as abuse or as invalid, kept for the funnel and fraud review.
CREATE SEQUENCE @extschema@.referral_rejection_id_seq;
CREATE TABLE @extschema@.referral_rejection (
    id              bigint PRIMARY KEY DEFAULT nextval('@extschema@.referral_rejection_id_seq'),
    program         text NOT NULL,
    member_id       text NOT NULL,
    referrer_id     text,
    code            text NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('self_referral', 'shared_fingerprint', 'already_ordered', 'cycle')),
    rejected_at     timestamptz NOT NULL
);
ALTER SEQUENCE @extschema@.referral_rejection_id_seq OWNED BY @extschema@.referral_rejection.id;
CREATE INDEX referral_rejection_member_idx ON @extschema@.referral_rejection (program, member_id);
COMMENT ON TABLE @extschema@.referral_rejection IS
    'Referrals refused as abuse: self-referral, a fingerprint shared with the referrer, a referee who already ordered, a cycle';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral_setting', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral_code', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral_rejection', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral_rejection_id_seq', '');
