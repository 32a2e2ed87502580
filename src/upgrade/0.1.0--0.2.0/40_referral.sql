-- 0.1.0 -> 0.2.0, src/sql/91_referral.sql is new in 0.2.0: its objects as a fresh install makes them.

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
    'Accepted referrals, one per referee (member_id): pending until the first order stands, then rewarded, capped (over the referrer''s cap) or void (first order refunded or cancelled, placed before the referral, or a fingerprint shared with the referrer by then)';

-- Referrals refused as abuse or as invalid, kept for the funnel and fraud review.
CREATE SEQUENCE @extschema@.referral_rejection_id_seq;

CREATE TABLE @extschema@.referral_rejection (
    id              bigint NOT NULL DEFAULT nextval('@extschema@.referral_rejection_id_seq'),
    program         text NOT NULL,
    member_id       text NOT NULL,
    referrer_id     text,
    code            text NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('self_referral', 'shared_fingerprint', 'already_ordered', 'cycle')),
    rejected_at     timestamptz NOT NULL,
    PRIMARY KEY (id, member_id)
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

-- A refused attempt is recorded once: the application retrying the same
-- sign-up with the same code counts once in the funnel.
CREATE UNIQUE INDEX referral_rejection_attempt_key
    ON @extschema@.referral_rejection (program, member_id, code, reason);

CREATE INDEX referral_rejection_time_idx ON @extschema@.referral_rejection (program, rejected_at);

-- settle_referrals reads the pending referrals of a program.
CREATE INDEX referral_pending_idx ON @extschema@.referral (program, referrer_id, member_id) WHERE state = 'pending';

-- Commission paid on referees' orders: one row per order, generation and
-- level (a changed order, which earns again as a new generation, pays its
-- commission again and takes the old one back).
CREATE TABLE @extschema@.referral_commission (
    program         text NOT NULL,
    order_id        text NOT NULL,
    generation      integer NOT NULL,
    level           integer NOT NULL CHECK (level BETWEEN 1 AND 3),
    member_id       text NOT NULL,
    referee_id      text NOT NULL,
    points          bigint NOT NULL CHECK (points > 0),
    taken_target    bigint NOT NULL DEFAULT 0,
    ledger_id       bigint NOT NULL,
    paid_at         timestamptz NOT NULL DEFAULT now(),
    -- member_id (the referrer paid) is in the key for distribution by member;
    -- (program, order_id, generation, level) alone names one payment.
    PRIMARY KEY (program, order_id, generation, level, member_id),
    CONSTRAINT referral_commission_taken CHECK (taken_target BETWEEN 0 AND points)
);

CREATE INDEX referral_commission_member_idx ON @extschema@.referral_commission (program, member_id);

-- A voided referral takes back the commission of its referee's orders.
CREATE INDEX referral_commission_referee_idx ON @extschema@.referral_commission (program, referee_id);

COMMENT ON TABLE @extschema@.referral_commission IS
    'Commission paid to the referrers (level 1: the referee''s referrer, 2: its referrer, 3) on a referee''s order, per order generation; taken back with the order''s refund or cancel';

COMMENT ON COLUMN @extschema@.referral_commission.member_id IS 'The referrer paid';

COMMENT ON COLUMN @extschema@.referral_commission.referee_id IS 'The member whose order it is';

COMMENT ON COLUMN @extschema@.referral_commission.points IS 'Points paid: floor(the level''s fraction x the points the order''s generation earned)';

COMMENT ON COLUMN @extschema@.referral_commission.taken_target IS
    'Points of it the order''s refunds and cancel call for (taken back with loyalty.take_back; under refund_policy within_balance more than was actually taken)';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.referral_commission', '');

-- The credit of a reward or commission (referral.c): an earn idempotent on
-- ref, dated as given, through the one credit writer.  Not STRICT: a NULL
-- argument is an error.
CREATE OR REPLACE FUNCTION @extschema@.referral_credit(program text, member_id text, points bigint, ref text,
                                            reason text, occurred_at timestamptz)
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_referral_credit';

COMMENT ON FUNCTION @extschema@.referral_credit(text, text, bigint, text, text, timestamptz) IS
    'Credits a referral reward or commission (ledger kind earn) dated occurred_at; idempotent on ref; returns the ledger id; internal';

-- Not STRICT: a NULL as_of is an error.  Volatile: it reads the clock.
CREATE OR REPLACE FUNCTION @extschema@.check_referral_as_of(as_of timestamptz) RETURNS timestamptz
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'loyalty_check_referral_as_of';

COMMENT ON FUNCTION @extschema@.check_referral_as_of(timestamptz) IS
    'The as_of rule of loyalty.refer: LY007 when more than 5 seconds ahead of the clock or behind the transaction''s start and the caller is not a member of loyalty_admin; internal';

-- The milestones as stored: sorted by referrals, each {"referrals": n >= 1,
-- "points": p >= 1}, n distinct.  Raises 22023 naming the bad element.
CREATE OR REPLACE FUNCTION @extschema@.check_referral_milestones(milestones jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m jsonb;
BEGIN
    IF milestones IS NULL THEN
        RAISE EXCEPTION 'milestones must not be null' USING ERRCODE = '22004',
              HINT = 'Use ''[]'' for no milestone.';
    END IF;
    IF jsonb_typeof(milestones) <> 'array' THEN
        RAISE EXCEPTION 'invalid milestones: %', milestones
            USING ERRCODE = '22023', DETAIL = 'Milestones are a JSON array of {"referrals": n, "points": p}.';
    END IF;
    FOR m IN SELECT e FROM jsonb_array_elements(milestones) e LOOP
        IF jsonb_typeof(m) <> 'object' OR NOT (m ?& ARRAY['referrals', 'points'])
           OR (SELECT count(*) FROM jsonb_object_keys(m)) <> 2
           OR jsonb_typeof(m -> 'referrals') <> 'number' OR jsonb_typeof(m -> 'points') <> 'number'
           OR (m ->> 'referrals')::numeric <> trunc((m ->> 'referrals')::numeric)
           OR (m ->> 'points')::numeric <> trunc((m ->> 'points')::numeric)
           OR (m ->> 'referrals')::numeric NOT BETWEEN 1 AND 1000000
           OR (m ->> 'points')::numeric NOT BETWEEN 1 AND 1000000000000 THEN
            RAISE EXCEPTION 'invalid milestone: %', m
                USING ERRCODE = '22023',
                      DETAIL = 'A milestone is {"referrals": n, "points": p}: n from 1 to 1000000 rewarded referrals, p from 1 to 10^12 points, both whole numbers.';
        END IF;
    END LOOP;
    IF (SELECT count(DISTINCT (e ->> 'referrals')::integer) FROM jsonb_array_elements(milestones) e)
       <> jsonb_array_length(milestones) THEN
        RAISE EXCEPTION 'invalid milestones: %', milestones
            USING ERRCODE = '22023', DETAIL = 'Two milestones name the same number of referrals.';
    END IF;
    RETURN coalesce((SELECT jsonb_agg(jsonb_build_object('referrals', (e ->> 'referrals')::integer,
                                                         'points', (e ->> 'points')::bigint)
                                      ORDER BY (e ->> 'referrals')::integer)
                       FROM jsonb_array_elements(milestones) e), '[]');
END
$$;

COMMENT ON FUNCTION @extschema@.check_referral_milestones(jsonb) IS
    'Validates referral milestones (a JSON array of {"referrals": n, "points": p}); returns them sorted by n';

-- Not STRICT: a NULL where a value is required is an error.
CREATE OR REPLACE FUNCTION @extschema@.set_referral_terms(
    program text, referrer_points bigint DEFAULT 0, referee_points bigint DEFAULT 0,
    referrer_campaign text DEFAULT NULL, referee_campaign text DEFAULT NULL,
    milestones jsonb DEFAULT '[]', cap integer DEFAULT NULL, cap_period interval DEFAULT NULL,
    commission numeric[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    stored jsonb := loyalty.check_referral_milestones(milestones);
    -- The rates as a plain one-based array; worked out here, not in the
    -- INSERT (Citus takes no subquery inside INSERT ... VALUES).
    rates numeric[] := ARRAY(SELECT f FROM unnest(commission) WITH ORDINALITY AS x(f, n) ORDER BY x.n);
BEGIN
    PERFORM loyalty.require_program(program);
    IF pg_catalog.cardinality(rates) > 0 AND loyalty.distributed() THEN
        RAISE EXCEPTION 'referral commission is not paid on a Citus cluster'
            USING ERRCODE = '0A000',
                  DETAIL = 'The accrual trigger runs on the buyer''s node, where the referrer''s commission cannot be paid or taken back.',
                  HINT = 'Set commission => ''{}''; referral rewards and milestones are paid by settle_referrals().';
    END IF;
    IF referrer_points IS NULL OR referee_points IS NULL THEN
        RAISE EXCEPTION 'referrer_points and referee_points must not be null' USING ERRCODE = '22004',
              HINT = 'Use 0 for no points.';
    END IF;
    IF referrer_points < 0 OR referee_points < 0 THEN
        RAISE EXCEPTION 'invalid referral points: referrer %, referee %', referrer_points, referee_points
            USING ERRCODE = '22023', DETAIL = 'Reward points are zero (none) or more.';
    END IF;
    IF referrer_campaign IS NOT NULL THEN
        PERFORM loyalty.require_campaign(program, referrer_campaign);
    END IF;
    IF referee_campaign IS NOT NULL THEN
        PERFORM loyalty.require_campaign(program, referee_campaign);
    END IF;
    IF (cap IS NULL) <> (cap_period IS NULL) OR cap < 1 OR cap_period <= interval '0' THEN
        RAISE EXCEPTION 'invalid referral cap: % per %', coalesce(cap::text, 'NULL'), coalesce(cap_period::text, 'NULL')
            USING ERRCODE = '22023',
                  DETAIL = 'A cap is at least 1 rewarded referral per referrer in a positive period (e.g. 10 per ''30 days''); both NULL for none.';
    END IF;
    IF commission IS NULL THEN
        RAISE EXCEPTION 'commission must not be null' USING ERRCODE = '22004',
              HINT = 'Use ''{}'' for no commission.';
    END IF;
    IF cardinality(commission) > 3 OR array_ndims(commission) > 1 OR array_position(commission, NULL) IS NOT NULL
       OR EXISTS (SELECT 1 FROM unnest(commission) f WHERE f < 0 OR f > 1 OR f = 'NaN') THEN
        RAISE EXCEPTION 'invalid commission: %', commission
            USING ERRCODE = '22023',
                  DETAIL = 'Commission is up to three fractions from 0 to 1, level 1 first: {0.03,0.015,0.005} pays 3%, 1.5% and 0.5% of the points a referee''s order earns.';
    END IF;
    INSERT INTO loyalty.referral_setting AS s (program, referrer_points, referee_points, referrer_campaign,
                                               referee_campaign, milestones, cap, cap_period, commission, updated_at)
    VALUES (program, referrer_points, referee_points, referrer_campaign, referee_campaign, stored,
            cap, cap_period, rates, now())
    ON CONFLICT ON CONSTRAINT referral_setting_pkey DO UPDATE
    SET referrer_points = excluded.referrer_points, referee_points = excluded.referee_points,
        referrer_campaign = excluded.referrer_campaign, referee_campaign = excluded.referee_campaign,
        milestones = excluded.milestones, cap = excluded.cap, cap_period = excluded.cap_period,
        commission = excluded.commission, updated_at = excluded.updated_at;   -- (Citus: no now() here)
END
$$;

COMMENT ON FUNCTION @extschema@.set_referral_terms(text, bigint, bigint, text, text, jsonb, integer, interval, numeric[]) IS
    'Sets a program''s referral terms: points and/or coupon campaign for referrer and referee, milestones, cap per referrer and period, commission by level';

-- A member's referral code, made on first ask (a random code with a Luhn
-- mod 32 check character, as coupon codes: coupon_code.c), shown in groups
-- of four.  Two first asks at once: the second waits on the first's
-- primary key, then reads its code.
CREATE OR REPLACE FUNCTION @extschema@.referral_code(program text, member_id text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member;
    stored text;
BEGIN
    PERFORM loyalty.require_program(program);
    m := loyalty.require_member(program, member_id);
    IF m.status = 'forgotten' THEN
        RAISE EXCEPTION 'member "%" of program "%" is forgotten', member_id, program USING ERRCODE = 'LY002';
    END IF;
    FOR attempt IN 1..10 LOOP
        SELECT k.code INTO stored FROM loyalty.referral_code k
         WHERE k.program = referral_code.program AND k.member_id = referral_code.member_id;
        IF FOUND THEN
            RETURN loyalty.coupon_code_display(stored);
        END IF;
        -- Nothing inserted: a concurrent first ask won (read it above), or
        -- the random code clashed with another member's (draw again).
        INSERT INTO loyalty.referral_code AS k (program, member_id, code)
        VALUES (program, member_id, loyalty.coupon_code_generate())
        ON CONFLICT DO NOTHING
        RETURNING k.code INTO stored;
        IF stored IS NOT NULL THEN
            RETURN loyalty.coupon_code_display(stored);
        END IF;
    END LOOP;
    RAISE EXCEPTION 'could not find a free referral code in 10 attempts' USING ERRCODE = 'XX000';
END
$$;

COMMENT ON FUNCTION @extschema@.referral_code(text, text) IS
    'A member''s referral code (random, with a check character, shown in groups of four), made on first ask and never changed';

-- Serializes the referrals that touch a member's place in the referral
-- forest, until the end of the transaction.
CREATE OR REPLACE FUNCTION @extschema@.lock_referral_member(program text, member_id text) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
BEGIN ATOMIC
    SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('loyalty.referral'),
                                            pg_catalog.hashtext(program OPERATOR(pg_catalog.||) '/'
                                                                OPERATOR(pg_catalog.||) member_id));
END;

COMMENT ON FUNCTION @extschema@.lock_referral_member(text, text) IS
    'Takes the transaction lock of a member''s place among the program''s referrals; internal';

-- The top of a member's referral chain: following referrer_id up until a
-- member nobody referred (the member itself when not referred).  The chain
-- holds no cycle (refer refuses them); the depth bound is a guard.
CREATE OR REPLACE FUNCTION @extschema@.referral_root(program text, member_id text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    cur text := member_id;
    up text;
BEGIN
    -- One member at a time (on a cluster each step reads one member's
    -- node; a recursive query over many members cannot be planned there).
    FOR depth IN 1..100000 LOOP
        SELECT r.referrer_id INTO up FROM loyalty.referral r
         WHERE r.program = referral_root.program AND r.member_id = cur;
        EXIT WHEN NOT FOUND OR up IS NULL;
        cur := up;
    END LOOP;
    RETURN cur;
END
$$;

COMMENT ON FUNCTION @extschema@.referral_root(text, text) IS
    'The first member of a member''s referral chain (who referred who referred ... the member); internal';

-- Whether two members share a fingerprint: a device, payment fingerprint or
-- shipping address of their orders, or an email or phone of their
-- profiles, hashed under the same key.
CREATE OR REPLACE FUNCTION @extschema@.referral_shares_fingerprint(program text, a text, b text) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    orders_a text[];
    orders_b text[];
    sa jsonb;
    sb jsonb;
    -- On a cluster an order id is unique per member only.
    per_member boolean := loyalty.distributed();
BEGIN
    -- Each member's fingerprints read on their own (on a cluster two
    -- members may sit on two nodes), then compared here.
    orders_a := ARRAY(SELECT e.order_id FROM loyalty.order_earning e
                       WHERE e.program = referral_shares_fingerprint.program AND e.member_id = a);
    orders_b := ARRAY(SELECT e.order_id FROM loyalty.order_earning e
                       WHERE e.program = referral_shares_fingerprint.program AND e.member_id = b);
    SELECT jsonb_agg(jsonb_build_object('k', s.key_id, 'd', s.device_id, 'p', s.payment_fingerprint,
                                        'a', s.shipping_address)) INTO sa
      FROM loyalty.order_signal s
     WHERE s.program = referral_shares_fingerprint.program
       AND s.order_id = ANY (orders_a) AND (NOT per_member OR s.member_id = a);
    SELECT jsonb_agg(jsonb_build_object('k', s.key_id, 'd', s.device_id, 'p', s.payment_fingerprint,
                                        'a', s.shipping_address)) INTO sb
      FROM loyalty.order_signal s
     WHERE s.program = referral_shares_fingerprint.program
       AND s.order_id = ANY (orders_b) AND (NOT per_member OR s.member_id = b);
    IF EXISTS (SELECT 1 FROM jsonb_to_recordset(coalesce(sa, '[]')) AS x(k bigint, d text, p text, a text)
                 JOIN jsonb_to_recordset(coalesce(sb, '[]')) AS y(k bigint, d text, p text, a text)
                   ON y.k = x.k AND (y.d = x.d OR y.p = x.p OR y.a = x.a)) THEN
        RETURN true;
    END IF;
    SELECT jsonb_agg(jsonb_build_object('kind', c.kind, 'k', c.key_id, 'h', c.hash)) INTO sa
      FROM loyalty.member_contact c WHERE c.program = referral_shares_fingerprint.program AND c.member_id = a;
    SELECT jsonb_agg(jsonb_build_object('kind', c.kind, 'k', c.key_id, 'h', c.hash)) INTO sb
      FROM loyalty.member_contact c WHERE c.program = referral_shares_fingerprint.program AND c.member_id = b;
    RETURN EXISTS (SELECT 1 FROM jsonb_to_recordset(coalesce(sa, '[]')) AS x(kind text, k bigint, h text)
                     JOIN jsonb_to_recordset(coalesce(sb, '[]')) AS y(kind text, k bigint, h text)
                       ON y.kind = x.kind AND y.k = x.k AND y.h = x.h);
END
$$;

COMMENT ON FUNCTION @extschema@.referral_shares_fingerprint(text, text, text) IS
    'Whether two members share a device, payment fingerprint or shipping address (order_signal) or an email or phone (member_contact) hash under one key; internal';

-- Why referee may not be referred by referrer (a referral whose cycle test
-- holds the locks of refer), or NULL: self_referral, shared_fingerprint,
-- cycle (referee is at the top of the referrer's chain: it referred, maybe
-- through others, the referrer), already_ordered (an order of the referee
-- in the program at or before as_of).
CREATE OR REPLACE FUNCTION @extschema@.referral_abuse(program text, referee text, referrer text, as_of timestamptz) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    -- One test at a time, each its own statement: on a Citus cluster a
    -- member's query would carry the other tests to that member's node.
    IF referee = referrer THEN
        RETURN 'self_referral';
    ELSIF loyalty.referral_shares_fingerprint(program, referee, referrer) THEN
        RETURN 'shared_fingerprint';
    ELSIF loyalty.referral_root(program, referrer) = referee THEN
        RETURN 'cycle';
    END IF;
    PERFORM FROM loyalty.order_earning e
      WHERE e.program = referral_abuse.program AND e.member_id = referee AND e.ordered_at <= as_of
      LIMIT 1;
    RETURN CASE WHEN FOUND THEN 'already_ordered' END;
END
$$;

COMMENT ON FUNCTION @extschema@.referral_abuse(text, text, text, timestamptz) IS
    'Why a referral is refused as abuse (self_referral, shared_fingerprint, cycle, already_ordered), NULL when it is not; internal';

-- Not STRICT: a NULL argument is an error.
CREATE OR REPLACE FUNCTION @extschema@.refer(program text, referee_member_id text, code text,
                                  as_of timestamptz DEFAULT now())
RETURNS TABLE (accepted boolean, referrer_id text, state text, reason text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    referee text := referee_member_id;
    given text := code;
    k loyalty.referral_code;
    -- The code as errors show it: a huge one is cut (the logs keep the message).
    shown text := CASE WHEN length(code) > 40 THEN left(code, 40) || pg_catalog.format('... (%s characters)', length(code))
                       ELSE code END;
    m loyalty.member;
    existing loyalty.referral;
    refused text;
    root text;
    top text;
BEGIN
    PERFORM loyalty.cluster_one_connection();   -- 02_cluster_node.sql
    PERFORM loyalty.require_program(program);
    IF referee IS NULL OR given IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'referee_member_id, code and as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_referral_as_of(as_of);
    SELECT * INTO k FROM loyalty.referral_code x
     WHERE x.program = refer.program AND x.code = loyalty.coupon_code_normal(given);
    IF NOT FOUND AND loyalty.coupon_code_shape(loyalty.coupon_code_normal(given)) = 'mistyped' THEN
        RAISE EXCEPTION 'mistyped referral code "%"', shown
            USING ERRCODE = 'LY042', DETAIL = 'Its check character does not match the other characters: one was mistyped.',
                  HINT = 'Ask for the code again.';
    ELSIF NOT FOUND THEN
        RAISE EXCEPTION 'unknown referral code "%" in program "%"', shown, program
            USING ERRCODE = 'LY041', HINT = 'Codes are compared ignoring case, spaces and dashes; check the code with the customer.';
    END IF;
    m := loyalty.require_member(program, referee);
    IF m.status = 'forgotten' THEN
        RAISE EXCEPTION 'member "%" of program "%" is forgotten', referee, program USING ERRCODE = 'LY002';
    END IF;

    -- The referee, then the top of the referrer's chain, in one order: a
    -- concurrent referral of the referee, or one that would close a cycle
    -- through either, waits for this one.
    root := loyalty.referral_root(program, k.member_id);
    LOOP
        PERFORM loyalty.lock_referral_member(program, x)
           FROM (SELECT DISTINCT x FROM unnest(ARRAY[referee, root]) x ORDER BY x) s;
        top := loyalty.referral_root(program, k.member_id);
        EXIT WHEN top = root;
        root := top;
    END LOOP;

    -- A replay of this referral returns it; a referee referred otherwise is an error.
    SELECT * INTO existing FROM loyalty.referral r WHERE r.program = refer.program AND r.member_id = referee;
    IF FOUND AND existing.referrer_id = k.member_id THEN
        RETURN QUERY SELECT true, existing.referrer_id, existing.state, NULL::text;
        RETURN;
    ELSIF FOUND THEN
        RAISE EXCEPTION 'member "%" of program "%" was already referred with another code', referee, program
            USING ERRCODE = 'LY043',
                  DETAIL = pg_catalog.format('Referred by member %s with code %s at %s.', existing.referrer_id,
                                             loyalty.coupon_code_display(existing.code), existing.referred_at),
                  HINT = 'A member is referred once; the first referral stands.';
    END IF;
    -- A replay of a refused attempt returns its reason.
    SELECT j.reason INTO refused FROM loyalty.referral_rejection j
     WHERE j.program = refer.program AND j.member_id = referee AND j.code = k.code
     ORDER BY j.id LIMIT 1;
    IF refused IS NULL THEN
        refused := loyalty.referral_abuse(program, referee, k.member_id, as_of);
    END IF;
    IF refused IS NOT NULL THEN
        INSERT INTO loyalty.referral_rejection AS j (program, member_id, referrer_id, code, reason, rejected_at)
        VALUES (program, referee, k.member_id, k.code, refused, as_of)
        ON CONFLICT DO NOTHING;
        RETURN QUERY SELECT false, k.member_id, 'rejected'::text, refused;
        RETURN;
    END IF;
    INSERT INTO loyalty.referral AS r (program, member_id, referrer_id, code, referred_at)
    VALUES (program, referee, k.member_id, k.code, as_of);
    RETURN QUERY SELECT true, k.member_id, 'pending'::text, NULL::text;
END
$$;

COMMENT ON FUNCTION @extschema@.refer(text, text, text, timestamptz) IS
    'Records that a code''s owner referred a member: (true, referrer, pending) or, refused as abuse and recorded, (false, referrer, rejected, reason); a replay returns the first answer; LY041/LY042/LY043 for an unknown, mistyped or second code';

-- Whether a member was forgotten (erased on request): it is paid no
-- referral reward, milestone or commission, as it gets no coupon.
CREATE OR REPLACE FUNCTION @extschema@.referral_member_forgotten(program text, member_id text) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    -- PL/pgSQL, not SQL: on a Citus cluster a SQL function's parameters
    -- cannot be planned.
    RETURN EXISTS (SELECT 1 FROM loyalty.member m
                    WHERE m.program = referral_member_forgotten.program
                      AND m.member_id = referral_member_forgotten.member_id AND m.status = 'forgotten');
END
$$;

COMMENT ON FUNCTION @extschema@.referral_member_forgotten(text, text) IS
    'Whether a member is forgotten: paid no referral reward, milestone or commission; internal';

-- Rewards a referral: points and/or a coupon to each side, once (the refs
-- referral:<referee>:referrer and referral:<referee>:referee), then the
-- referrer's milestones reached, each once (referral-milestone:<referrer>:<n>).
CREATE OR REPLACE FUNCTION @extschema@.reward_referral(t @extschema@.referral_setting, r @extschema@.referral,
                                            as_of timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    side record;
    rewarded bigint;
    m jsonb;
BEGIN
    FOR side IN
        SELECT s.* FROM (
            SELECT r.referrer_id AS member_id, 'referrer' AS role, t.referrer_points AS points, t.referrer_campaign AS campaign
            UNION ALL
            SELECT r.member_id, 'referee', t.referee_points, t.referee_campaign) s
         WHERE NOT loyalty.referral_member_forgotten(t.program, s.member_id)
    LOOP
        IF side.points > 0 THEN
            PERFORM loyalty.referral_credit(t.program, side.member_id, side.points,
                                            'referral:' || r.member_id || ':' || side.role,
                                            'referral reward (' || side.role || ')', as_of);
        END IF;
        IF side.campaign IS NOT NULL THEN
            PERFORM loyalty.issue_coupon_once(t.program, side.campaign, side.member_id,
                                              'referral:' || r.member_id || ':' || side.role, as_of);
        END IF;
    END LOOP;
    SELECT count(*) INTO rewarded FROM loyalty.referral x
     WHERE x.program = t.program AND x.referrer_id = r.referrer_id AND x.state = 'rewarded';
    IF loyalty.referral_member_forgotten(t.program, r.referrer_id) THEN
        RETURN;
    END IF;
    -- One statement per milestone: a query that reads the referrer's
    -- ledger and credits would run on the referrer's node on a Citus
    -- cluster, where the credit cannot.
    FOR m IN SELECT x FROM jsonb_array_elements(t.milestones) x
              WHERE (x ->> 'referrals')::bigint <= rewarded
              ORDER BY (x ->> 'referrals')::bigint LOOP
        -- Paid once, at the points of the terms when it was reached: a
        -- milestone whose points were changed since is not paid again
        -- (nor refused by its ref as another amount, LY003).
        CONTINUE WHEN EXISTS (SELECT 1 FROM loyalty.ledger l
                               WHERE l.program = t.program AND l.member_id = r.referrer_id
                                 AND l.ref = 'referral-milestone:' || r.referrer_id || ':' || (m ->> 'referrals'));
        PERFORM loyalty.referral_credit(t.program, r.referrer_id, (m ->> 'points')::bigint,
                                        'referral-milestone:' || r.referrer_id || ':' || (m ->> 'referrals'),
                                        'referral milestone (' || (m ->> 'referrals') || ' referrals)', as_of);
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.reward_referral(@extschema@.referral_setting, @extschema@.referral, timestamptz) IS
    'Pays a rewarded referral''s points and coupons to both sides and the referrer''s milestones reached, each once; internal';

-- Settles the pending referrals of one referrer, under the lock of all its
-- referral rows (two runs at once settle a referrer one after the other:
-- milestones and the cap count each referral once).  Returns how many
-- referrals were rewarded, capped and voided.
CREATE OR REPLACE FUNCTION @extschema@.settle_referrer(p @extschema@.program, t @extschema@.referral_setting,
                                            referrer text, as_of timestamptz,
                                            OUT rewarded integer, OUT capped integer, OUT voided integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    c record;
    settled loyalty.referral;
    outcome text;
    ring text;
BEGIN
    rewarded := 0; capped := 0; voided := 0;
    IF loyalty.distributed() THEN
        -- Citus locks rows only in a query on one member's shard: the
        -- same rows, one referee at a time, in the same order.
        FOR c IN SELECT x.member_id FROM loyalty.referral x
                  WHERE x.program = p.code AND x.referrer_id = referrer ORDER BY x.member_id LOOP
            PERFORM 1 FROM loyalty.referral x
              WHERE x.program = p.code AND x.member_id = c.member_id AND x.referrer_id = referrer FOR UPDATE;
        END LOOP;
    ELSE
        PERFORM 1 FROM loyalty.referral x
          WHERE x.program = p.code AND x.referrer_id = referrer ORDER BY x.member_id FOR UPDATE;
    END IF;
    FOR c IN
        SELECT x.member_id, x.referred_at, f.order_id, f.ordered_at, f.closed OR f.refunded_amount > 0 AS undone
          FROM loyalty.referral x
          CROSS JOIN LATERAL (
                SELECT e.order_id, e.ordered_at, e.closed, e.refunded_amount FROM loyalty.order_earning e
                 WHERE e.program = x.program AND e.member_id = x.member_id AND e.ordered_at <= as_of
                 ORDER BY e.ordered_at, e.order_id LIMIT 1) f
         WHERE x.program = p.code AND x.referrer_id = referrer AND x.state = 'pending'
         ORDER BY f.ordered_at, x.member_id
    LOOP
        ring := loyalty.referral_ring_state(p.code, c.member_id);
        IF c.undone OR ring = 'confirmed' THEN
            outcome := 'void';
        ELSIF c.ordered_at < c.referred_at - interval '5 seconds' THEN
            -- An order loaded late: the referee had ordered before the
            -- referral (beyond the clock skew as_of allows, caller.h).
            outcome := 'void';
        ELSIF c.ordered_at + p.pending_days * interval '1 day' > as_of OR ring = 'open' THEN
            CONTINUE;   -- the first order is still in its pending time, or a ring flag awaits review
        ELSIF loyalty.referral_shares_fingerprint(p.code, c.member_id, referrer) THEN
            outcome := 'void';  -- a device, payment, address, email or phone seen together since refer
        ELSIF t.cap IS NOT NULL
              AND (SELECT count(*) FROM loyalty.referral x
                    WHERE x.program = p.code AND x.referrer_id = referrer AND x.state = 'rewarded'
                      AND x.settled_at > as_of - t.cap_period AND x.settled_at <= as_of) >= t.cap THEN
            outcome := 'capped';
        ELSE
            outcome := 'rewarded';
        END IF;
        UPDATE loyalty.referral x SET state = outcome, first_order_id = c.order_id, settled_at = as_of
         WHERE x.program = p.code AND x.member_id = c.member_id
        RETURNING x.* INTO settled;
        CASE outcome
            WHEN 'rewarded' THEN
                PERFORM loyalty.reward_referral(t, settled, as_of);
                rewarded := rewarded + 1;
            WHEN 'capped' THEN capped := capped + 1;
            ELSE
                PERFORM loyalty.take_back_void_commissions(p.code, c.member_id);
                voided := voided + 1;
        END CASE;
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.settle_referrer(@extschema@.program, @extschema@.referral_setting, text, timestamptz) IS
    'Settles the pending referrals of one referrer whose referee''s first order stood its pending time (rewarded, or capped) or was refunded or cancelled, was placed before the referral, or whose referee shares a fingerprint with the referrer (void); internal';

-- Not STRICT: a NULL argument is an error.
CREATE OR REPLACE FUNCTION @extschema@.settle_referrals(program text, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    t loyalty.referral_setting;
    r record;
    done record;
    referrers bigint := 0;
    rewarded bigint := 0;
    capped bigint := 0;
    voided bigint := 0;
BEGIN
    PERFORM loyalty.cluster_one_connection();   -- 02_cluster_node.sql
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_as_of(as_of);
    SELECT * INTO t FROM loyalty.referral_setting s WHERE s.program = p.code;
    IF NOT FOUND THEN
        RAISE NOTICE 'loyalty: program "%" has no referral terms (loyalty.set_referral_terms)', p.code;
        RETURN 0;
    END IF;
    FOR r IN
        SELECT DISTINCT x.referrer_id FROM loyalty.referral x
         WHERE x.program = p.code AND x.state = 'pending' ORDER BY x.referrer_id
    LOOP
        done := loyalty.settle_referrer(p, t, r.referrer_id, as_of);
        rewarded := rewarded + done.rewarded;
        capped := capped + done.capped;
        voided := voided + done.voided;
        referrers := referrers + 1;
        IF referrers % 1000 = 0 THEN
            RAISE NOTICE 'loyalty: referrals %: % referrers, % rewarded, % capped, % void so far',
                p.code, referrers, rewarded, capped, voided;
        END IF;
    END LOOP;
    RAISE NOTICE 'loyalty: referrals %: % referrers with pending referrals, % rewarded, % capped, % void',
        p.code, referrers, rewarded, capped, voided;
    RETURN rewarded + capped + voided;
END
$$;

COMMENT ON FUNCTION @extschema@.settle_referrals(text, timestamptz) IS
    'Daily job: settles pending referrals whose referee''s first order stood its pending time (both sides rewarded, milestones, cap) or was refunded or cancelled, placed before the referral, or shares a fingerprint with the referrer (void); exactly once; returns the referrals settled';

/*
 * Commission: when a referee's order earns, each of up to three referrers
 * above it (level 1: who referred the referee, 2: who referred that
 * referrer, 3) is paid floor(the level's fraction x the order's points),
 * once per order, generation and level (ref
 * referral-commission:<order>:<level>:<generation>), dated at the order
 * (pending like its points).  Referrals that were voided carry none.  When
 * refunds take back part of the order's points (reversed_target), each
 * commission is taken back in the same share, in the refund's transaction
 * (loyalty.take_back, ref referral-commission:<order>:<level>:<generation>:back:<total>);
 * a cancel, a delete or a new generation takes all of it back.
 */
CREATE OR REPLACE FUNCTION @extschema@.pay_commissions(program text, order_ids text[]) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    fractions numeric[];
    c record;
    paid integer := 0;
BEGIN
    SELECT s.commission INTO fractions FROM loyalty.referral_setting s WHERE s.program = pay_commissions.program;
    IF coalesce(cardinality(fractions), 0) = 0 THEN
        RETURN 0;
    END IF;
    FOR c IN
        WITH RECURSIVE o AS (
            SELECT e.order_id, e.generation, e.member_id, e.points, e.ordered_at
              FROM loyalty.order_earning e
             WHERE e.program = pay_commissions.program AND e.order_id = ANY (order_ids)
               AND NOT e.closed AND e.member_id IS NOT NULL AND e.points > 0
        ), up(order_id, generation, referee_id, points, ordered_at, level, member_id) AS (
            SELECT o.order_id, o.generation, o.member_id, o.points, o.ordered_at, 1, r.referrer_id
              FROM o JOIN loyalty.referral r
                ON r.program = pay_commissions.program AND r.member_id = o.member_id AND r.state <> 'void'
            UNION ALL
            SELECT u.order_id, u.generation, u.referee_id, u.points, u.ordered_at, u.level + 1, r.referrer_id
              FROM up u JOIN loyalty.referral r
                ON r.program = pay_commissions.program AND r.member_id = u.member_id AND r.state <> 'void'
             WHERE u.level < cardinality(fractions)
        )
        SELECT u.*, floor(u.points * fractions[u.level])::bigint AS pay
          FROM up u
         WHERE floor(u.points * fractions[u.level]) >= 1
           AND NOT loyalty.referral_member_forgotten(pay_commissions.program, u.member_id)
           AND NOT EXISTS (SELECT 1 FROM loyalty.referral_commission k
                            WHERE k.program = pay_commissions.program AND k.order_id = u.order_id
                              AND k.generation = u.generation AND k.level = u.level)
         ORDER BY u.member_id, u.order_id, u.level
    LOOP
        INSERT INTO loyalty.referral_commission (program, order_id, generation, level, member_id, referee_id,
                                                 points, ledger_id)
        VALUES (program, c.order_id, c.generation, c.level, c.member_id, c.referee_id, c.pay,
                loyalty.referral_credit(program, c.member_id, c.pay,
                                        pg_catalog.format('referral-commission:%s:%s:%s', c.order_id, c.level, c.generation),
                                        pg_catalog.format('referral commission, level %s, order %s', c.level, c.order_id),
                                        c.ordered_at));
        paid := paid + 1;
    END LOOP;
    RETURN paid;
END
$$;

COMMENT ON FUNCTION @extschema@.pay_commissions(text, text[]) IS
    'Pays the commission of the current generation of orders to up to three levels of their member''s referrers, once per order, generation and level; internal';

CREATE OR REPLACE FUNCTION @extschema@.take_back_commissions(program text, order_ids text[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    c record;
    taken bigint := 0;
BEGIN
    FOR c IN
        SELECT k.order_id, k.generation, k.level, k.member_id, k.taken_target,
               k.points - CASE WHEN e.closed OR e.generation <> k.generation OR e.points <= 0 THEN 0
                               ELSE floor(k.points * (e.points - e.reversed_target)::numeric / e.points)::bigint
                          END AS target
          FROM loyalty.referral_commission k
          JOIN loyalty.order_earning e ON e.program = k.program AND e.order_id = k.order_id
         WHERE k.program = take_back_commissions.program AND k.order_id = ANY (order_ids)
           AND k.taken_target < k.points
         ORDER BY k.member_id, k.order_id, k.generation, k.level
    LOOP
        CONTINUE WHEN c.target <= c.taken_target;
        taken := taken + loyalty.take_back(program, c.member_id, c.target - c.taken_target,
                     pg_catalog.format('referral-commission:%s:%s:%s:back:%s', c.order_id, c.level, c.generation, c.target),
                     pg_catalog.format('referral commission, level %s, order %s reversed', c.level, c.order_id),
                     now());
        UPDATE loyalty.referral_commission k SET taken_target = c.target
         WHERE k.program = take_back_commissions.program AND k.order_id = c.order_id
           AND k.generation = c.generation AND k.level = c.level;
    END LOOP;
    RETURN taken;
END
$$;

COMMENT ON FUNCTION @extschema@.take_back_commissions(text, text[]) IS
    'Takes back the commission of orders in the share their refunds reversed (all of it once cancelled, deleted or replaced by a new generation); internal';

-- A referral voided by settle_referrers carries no commission: what its
-- referee's orders paid (to every level: each goes up through it) is taken
-- back whole, as a cancel would (same refs: a later refund of the order
-- finds nothing left to take).
CREATE OR REPLACE FUNCTION @extschema@.take_back_void_commissions(program text, referee text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    c record;
    taken bigint := 0;
BEGIN
    -- The orders' rows first: a refund of one of them at the same time
    -- (which holds its row) takes back before or after this, never both
    -- from the same taken_target.
    IF loyalty.distributed() THEN
        -- Citus locks rows only in a query on one member's shard: the
        -- referee's orders, named first.
        PERFORM 1 FROM loyalty.order_earning e
          WHERE e.program = take_back_void_commissions.program AND e.member_id = referee
            AND e.order_id = ANY (ARRAY(SELECT k.order_id FROM loyalty.referral_commission k
                                         WHERE k.program = take_back_void_commissions.program
                                           AND k.referee_id = referee AND k.taken_target < k.points))
          ORDER BY e.order_id FOR UPDATE OF e;
    ELSE
        PERFORM 1 FROM loyalty.order_earning e
          WHERE e.program = take_back_void_commissions.program
            AND e.order_id IN (SELECT k.order_id FROM loyalty.referral_commission k
                                WHERE k.program = take_back_void_commissions.program AND k.referee_id = referee
                                  AND k.taken_target < k.points)
          ORDER BY e.order_id FOR UPDATE OF e;
    END IF;
    FOR c IN
        SELECT k.order_id, k.generation, k.level, k.member_id, k.points, k.taken_target
          FROM loyalty.referral_commission k
         WHERE k.program = take_back_void_commissions.program AND k.referee_id = referee
           AND k.taken_target < k.points
         ORDER BY k.member_id, k.order_id, k.generation, k.level
    LOOP
        taken := taken + loyalty.take_back(program, c.member_id, c.points - c.taken_target,
                     pg_catalog.format('referral-commission:%s:%s:%s:back:%s', c.order_id, c.level, c.generation, c.points),
                     pg_catalog.format('referral commission, level %s, order %s: referral void', c.level, c.order_id),
                     now());
        UPDATE loyalty.referral_commission k SET taken_target = k.points
         WHERE k.program = take_back_void_commissions.program AND k.member_id = c.member_id
           AND k.order_id = c.order_id AND k.generation = c.generation AND k.level = c.level;
    END LOOP;
    RETURN taken;
END
$$;

COMMENT ON FUNCTION @extschema@.take_back_void_commissions(text, text) IS
    'Takes back, whole, the commission a referee''s orders paid when its referral is voided; internal';

-- Statement triggers on loyalty.order_earning: an INSERT pays, an UPDATE
-- that starts a generation pays and one that reverses points takes back.
-- They look only at programs with referral terms (commission, or
-- commission paid under earlier terms).  They are installed disabled and
-- enabled when a program first gets referral terms (see
-- referral_setting_trigger): until then an order pays nothing for them.
CREATE OR REPLACE FUNCTION @extschema@.referral_commission_trigger() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    o record;
BEGIN
    -- On a Citus cluster this fires on a shard of order_earning, where the
    -- referrer's rows (another member's, maybe on another node) cannot be
    -- written: commission is not paid from the trigger there
    -- (docs/scale-out.md); the order's own points are never held up by it.
    IF loyalty.distributed() THEN
        RETURN NULL;
    END IF;
    -- Only the orders of referees (a referral that is not void) in
    -- programs with commission pay; only orders with commission paid take
    -- back.  Both read from the transition tables, without parameters:
    -- most statements end here.
    IF TG_OP = 'INSERT' THEN
        FOR o IN
            SELECT n.program, array_agg(n.order_id) AS ids
              FROM new_rows n
             WHERE NOT n.closed AND n.points > 0
               AND EXISTS (SELECT 1 FROM loyalty.referral_setting s
                            WHERE s.program = n.program AND cardinality(s.commission) > 0)
               AND EXISTS (SELECT 1 FROM loyalty.referral r
                            WHERE r.program = n.program AND r.member_id = n.member_id AND r.state <> 'void')
             GROUP BY n.program ORDER BY n.program
        LOOP
            PERFORM loyalty.pay_commissions(o.program, o.ids);
        END LOOP;
        RETURN NULL;
    END IF;
    FOR o IN
        SELECT n.program,
               array_agg(n.order_id) FILTER (WHERE n.generation <> b.generation AND NOT n.closed AND n.points > 0
                                                AND EXISTS (SELECT 1 FROM loyalty.referral r
                                                             WHERE r.program = n.program AND r.member_id = n.member_id
                                                               AND r.state <> 'void')) AS pay,
               array_agg(n.order_id) FILTER (WHERE (n.generation <> b.generation OR n.closed <> b.closed
                                                    OR n.reversed_target <> b.reversed_target)
                                                AND EXISTS (SELECT 1 FROM loyalty.referral_commission k
                                                             WHERE k.program = n.program AND k.order_id = n.order_id)) AS back
          FROM new_rows n JOIN old_rows b ON b.program = n.program AND b.order_id = n.order_id
         WHERE EXISTS (SELECT 1 FROM loyalty.referral_setting s WHERE s.program = n.program)
         GROUP BY n.program ORDER BY n.program
    LOOP
        IF o.back IS NOT NULL THEN
            PERFORM loyalty.take_back_commissions(o.program, o.back);
        END IF;
        IF o.pay IS NOT NULL THEN
            PERFORM loyalty.pay_commissions(o.program, o.pay);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.referral_commission_trigger() IS
    'Trigger on loyalty.order_earning: pays referral commission on orders that earn and takes it back with their refunds and cancels';

CREATE TRIGGER referral_commission_insert AFTER INSERT ON @extschema@.order_earning
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.referral_commission_trigger();

CREATE TRIGGER referral_commission_update AFTER UPDATE ON @extschema@.order_earning
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.referral_commission_trigger();

ALTER TABLE @extschema@.order_earning DISABLE TRIGGER referral_commission_insert;

ALTER TABLE @extschema@.order_earning DISABLE TRIGGER referral_commission_update;

-- Enables the commission triggers once a program has referral terms: from
-- set_referral_terms, and when pg_restore loads referral_setting into a
-- new installation (whose triggers start disabled).  Never disabled again:
-- commission paid must be taken back with its orders.
CREATE OR REPLACE FUNCTION @extschema@.referral_setting_trigger() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    -- On a Citus worker this fires for the node's copy of the reference
    -- table: the coordinator's run enables the triggers (on every shard).
    IF loyalty.on_worker() THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                WHERE t.tgrelid = 'loyalty.order_earning'::regclass AND t.tgenabled = 'D'
                  AND t.tgname IN ('referral_commission_insert', 'referral_commission_update')) THEN
        ALTER TABLE loyalty.order_earning ENABLE TRIGGER referral_commission_insert;
        ALTER TABLE loyalty.order_earning ENABLE TRIGGER referral_commission_update;
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.referral_setting_trigger() IS
    'Trigger on loyalty.referral_setting: enables the commission triggers on loyalty.order_earning once a program has referral terms';

CREATE TRIGGER referral_setting_enables_commission AFTER INSERT ON @extschema@.referral_setting
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.referral_setting_trigger();
