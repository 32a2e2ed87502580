-- Rewards for points: a catalog of coupons a member buys with points.
--
-- A claim is one transaction: the reward row is locked (stock never
-- oversold), the points are paid with loyalty.redeem under the claim's
-- reference (LY001 short, LY002 held, LY003 reference reused), a code of
-- the reward's campaign is issued to the member, the stock goes down.  Any
-- error leaves points, stock and codes as they were.

CREATE TABLE @extschema@.reward (
    program         text NOT NULL REFERENCES @extschema@.program (code),
    reward          text NOT NULL CHECK (reward <> ''),
    points          bigint NOT NULL CHECK (points > 0),
    campaign        text NOT NULL,
    initial_stock   bigint CHECK (initial_stock >= 0),
    stock           bigint CHECK (stock >= 0),
    claimed         bigint NOT NULL DEFAULT 0 CHECK (claimed >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program, reward),
    CHECK ((initial_stock IS NULL) = (stock IS NULL))
);
COMMENT ON TABLE @extschema@.reward IS
    'Rewards for points: each claim pays points and issues one code of the campaign; stock NULL = unlimited';
COMMENT ON COLUMN @extschema@.reward.initial_stock IS 'Units the reward was created with (NULL: unlimited)';
COMMENT ON COLUMN @extschema@.reward.stock IS 'Units left to claim (NULL: unlimited); claims take one, restock_reward adds';
COMMENT ON COLUMN @extschema@.reward.claimed IS 'Units claimed so far';

-- One row per claim; the reference is the ledger's (unique per member).
CREATE TABLE @extschema@.reward_claim (
    program     text NOT NULL,
    member_id   text NOT NULL,
    ref         text NOT NULL,
    reward      text NOT NULL,
    code        text NOT NULL,
    points      bigint NOT NULL,
    ledger_id   bigint NOT NULL,
    claimed_at  timestamptz NOT NULL,
    PRIMARY KEY (program, member_id, ref),
    FOREIGN KEY (program, reward) REFERENCES @extschema@.reward (program, reward)
);
CREATE INDEX reward_claim_ref_idx ON @extschema@.reward_claim (program, ref);
COMMENT ON TABLE @extschema@.reward_claim IS
    'Rewards claimed: member, reference (its ledger redemption), the code issued, the points paid';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.reward', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.reward_claim', '');

CREATE FUNCTION @extschema@.create_reward(program text, reward text, points bigint, campaign text,
                                          stock bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    existing loyalty.reward;
BEGIN
    PERFORM loyalty.require_program(program);
    IF reward IS NULL OR reward = '' THEN
        RAISE EXCEPTION 'reward must not be null or empty' USING ERRCODE = '22004';
    END IF;
    IF points IS NULL OR points <= 0 THEN
        RAISE EXCEPTION 'invalid points for reward "%": %', reward, coalesce(points::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'A reward costs a positive number of points.';
    END IF;
    IF stock < 0 THEN
        RAISE EXCEPTION 'invalid stock for reward "%": %', reward, stock
            USING ERRCODE = '22023', DETAIL = 'Stock is zero or more units, or NULL for an unlimited reward.';
    END IF;
    PERFORM loyalty.require_campaign(program, campaign);
    INSERT INTO loyalty.reward AS r (program, reward, points, campaign, initial_stock, stock)
    VALUES (program, reward, points, campaign, stock, stock)
    ON CONFLICT ON CONSTRAINT reward_pkey DO NOTHING;
    IF NOT FOUND THEN
        -- The same reward twice is fine; created differently it is not.
        SELECT * INTO existing FROM loyalty.reward r
         WHERE r.program = create_reward.program AND r.reward = create_reward.reward;
        IF (existing.points, existing.campaign, existing.initial_stock)
           IS DISTINCT FROM (points, campaign, stock) THEN
            RAISE EXCEPTION 'reward "%" already exists in program "%" with other settings', reward, program
                USING ERRCODE = '42710',
                      DETAIL = pg_catalog.format('Existing: %s points, campaign %s, initial stock %s.',
                          existing.points, existing.campaign, coalesce(existing.initial_stock::text, 'unlimited')),
                      HINT = 'Add units with loyalty.restock_reward().';
        END IF;
    END IF;
    RETURN reward;
END
$$;
COMMENT ON FUNCTION @extschema@.create_reward(text, text, bigint, text, bigint) IS
    'Creates a reward: a code of the campaign for points, stock units (NULL: unlimited); idempotent for identical settings; returns its name';

-- Locks the reward row and returns it; 42704 when unknown.
CREATE FUNCTION @extschema@.lock_reward(program text, reward text)
RETURNS @extschema@.reward
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    r loyalty.reward;
BEGIN
    IF reward IS NULL THEN
        RAISE EXCEPTION 'reward must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO r FROM loyalty.reward x
     WHERE x.program = lock_reward.program AND x.reward = lock_reward.reward FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'reward "%" does not exist in program "%"', reward, program
            USING ERRCODE = '42704', HINT = 'Create it with loyalty.create_reward().';
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION @extschema@.lock_reward(text, text) IS 'Locks a reward row and returns it; 42704 when unknown; internal';

CREATE FUNCTION @extschema@.restock_reward(program text, reward text, units bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    r loyalty.reward;
BEGIN
    PERFORM loyalty.require_program(program);
    r := loyalty.lock_reward(program, reward);
    IF units IS NULL OR units <= 0 THEN
        RAISE EXCEPTION 'invalid units to restock reward "%": %', reward, coalesce(units::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'Restocking adds a positive number of units.';
    END IF;
    IF r.stock IS NULL THEN
        RAISE EXCEPTION 'reward "%" of program "%" has unlimited stock', reward, program
            USING ERRCODE = '22023', DETAIL = 'Only a reward created with a stock can be restocked.';
    END IF;
    UPDATE loyalty.reward x SET stock = x.stock + units
     WHERE x.program = restock_reward.program AND x.reward = restock_reward.reward
    RETURNING x.stock INTO r.stock;
    RETURN r.stock;
END
$$;
COMMENT ON FUNCTION @extschema@.restock_reward(text, text, bigint) IS
    'Adds units to a reward''s stock (under its lock, so claims never see a partial change); returns the units left';

-- The claim of a reference the member already used: the same claim returns
-- its code; another reward, or a ledger row that is no claim, is LY003.
-- (A reference is the member's: another member's claim is another call.)
CREATE FUNCTION @extschema@.reward_claim_replay(program text, member_id text, reward text, ref text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    c loyalty.reward_claim;
BEGIN
    SELECT * INTO c FROM loyalty.reward_claim x
     WHERE x.program = reward_claim_replay.program AND x.member_id = reward_claim_replay.member_id
       AND x.ref = reward_claim_replay.ref;
    IF FOUND THEN
        IF c.reward = reward THEN
            RETURN c.code;
        END IF;
        RAISE EXCEPTION 'reference "%" was already used in program "%" for another call', ref, program
            USING ERRCODE = 'LY003',
                  DETAIL = pg_catalog.format('It claimed reward %s for member %s.', c.reward, c.member_id),
                  HINT = 'Use a new reference for a new claim; replay a claim only with its original arguments.';
    END IF;
    IF EXISTS (SELECT 1 FROM loyalty.ledger l
                WHERE l.program = reward_claim_replay.program AND l.member_id = reward_claim_replay.member_id
                  AND l.ref = reward_claim_replay.ref) THEN
        RAISE EXCEPTION 'reference "%" was already used in program "%" for another call', ref, program
            USING ERRCODE = 'LY003', DETAIL = 'A ledger row that is not a reward claim has this reference.',
                  HINT = 'Use a new reference for a new claim.';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.reward_claim_replay(text, text, text, text) IS
    'The code of a replayed claim, NULL for a new reference, LY003 for a reference used otherwise; internal';

-- Not STRICT: a NULL argument is an error.
CREATE FUNCTION @extschema@.claim_reward(program text, member_id text, reward text, ref text,
                                         as_of timestamptz DEFAULT now())
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    r loyalty.reward;
    issued text;
    ledger_id bigint;
BEGIN
    PERFORM loyalty.cluster_one_connection();   -- 02_cluster_node.sql
    PERFORM loyalty.require_program(program);
    IF member_id IS NULL OR ref IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'member_id, ref and as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_as_of(as_of);
    -- Calls with one reference queue here, so the second sees the first's claim.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('loyalty.claim_reward'),
                                             pg_catalog.hashtext(program || ' ' || ref));
    r := loyalty.lock_reward(program, reward);
    issued := loyalty.reward_claim_replay(program, member_id, reward, ref);
    IF issued IS NOT NULL THEN
        RETURN issued;
    END IF;
    PERFORM loyalty.require_member(program, member_id);
    IF r.stock = 0 THEN
        RAISE EXCEPTION 'reward "%" of program "%" is out of stock', reward, program
            USING ERRCODE = 'LY028',
                  DETAIL = pg_catalog.format('All %s units have been claimed.', r.claimed),
                  HINT = 'Add units with loyalty.restock_reward().';
    END IF;
    -- LY001 (short), LY002 (held or forgotten), LY007 (as_of) come from here.
    ledger_id := loyalty.redeem(program, member_id, r.points, ref, as_of);
    -- The code's issued_ref names the claim's redemption (refs are unique
    -- per member only; issued_ref is unique in the program).
    issued := loyalty.issue_code_for(program, r.campaign, member_id, 'reward-claim:' || ledger_id);
    UPDATE loyalty.coupon_code k SET issued_at = as_of
     WHERE k.program = claim_reward.program AND k.issued_ref = 'reward-claim:' || ledger_id;
    UPDATE loyalty.reward x SET stock = x.stock - 1, claimed = x.claimed + 1
     WHERE x.program = claim_reward.program AND x.reward = claim_reward.reward;
    INSERT INTO loyalty.reward_claim (program, member_id, ref, reward, code, points, ledger_id, claimed_at)
    VALUES (program, member_id, ref, reward, issued, r.points, ledger_id, as_of);
    RETURN issued;
END
$$;
COMMENT ON FUNCTION @extschema@.claim_reward(text, text, text, text, timestamptz) IS
    'Buys a reward with points: redeems its points under ref and issues a code of its campaign to the member, in one transaction; LY028 out of stock; idempotent on ref; returns the code';
