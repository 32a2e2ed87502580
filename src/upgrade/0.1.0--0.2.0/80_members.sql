-- Member administration and GDPR (P3): adjust, profile and consent,
-- member_lots, the labelled statement, merge_members, forget_member,
-- export_member.  From the state of main: the functions and the view they
-- change are replaced, history (a new result type) dropped and created
-- again, the new objects created as 38_member_admin.sql and 39_gdpr.sql
-- create them, with the same comments and grants.

-- The ledger lets the member id rewrite of merge and forget through.
CREATE OR REPLACE FUNCTION @extschema@.refuse_ledger_change() RETURNS trigger
LANGUAGE plpgsql AS
$$
DECLARE
    rewrite text[];
    pre text;
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- {program, old id, new id}
        rewrite := pg_catalog.string_to_array(pg_catalog.current_setting('loyalty.member_rewrite', true), E'\x1f');
        pre := pg_catalog.split_part(OLD.ref, ':', 1) OPERATOR(pg_catalog.||) ':';
        IF pg_catalog.cardinality(rewrite) OPERATOR(pg_catalog.=) 3
           AND OLD.program OPERATOR(pg_catalog.=) rewrite[1]
           -- The member id kept, or the old id replaced by the new one.
           AND (NEW.member_id IS NOT DISTINCT FROM OLD.member_id
                OR (OLD.member_id OPERATOR(pg_catalog.=) rewrite[2] AND NEW.member_id OPERATOR(pg_catalog.=) rewrite[3]))
           -- The ref kept, or a referral reward's ref naming the old id
           -- (settle_referrals) renamed the same way (forget_member).
           AND (NEW.ref IS NOT DISTINCT FROM OLD.ref
                OR (pre OPERATOR(pg_catalog.=) ANY (ARRAY['referral:', 'referral-milestone:'])
                    AND pg_catalog.starts_with(OLD.ref, pre OPERATOR(pg_catalog.||) rewrite[2] OPERATOR(pg_catalog.||) ':')
                    AND NEW.ref OPERATOR(pg_catalog.=) (pre OPERATOR(pg_catalog.||) rewrite[3] OPERATOR(pg_catalog.||)
                        pg_catalog.substr(OLD.ref, pg_catalog.length(pre OPERATOR(pg_catalog.||) rewrite[2]) OPERATOR(pg_catalog.+) 1))))
           AND (NEW.id, NEW.program, NEW.kind, NEW.points, NEW.order_id, NEW.lot_id, NEW.related_id,
                NEW.reason, NEW.occurred_at, NEW.recorded_at)
               IS NOT DISTINCT FROM
               (OLD.id, OLD.program, OLD.kind, OLD.points, OLD.order_id, OLD.lot_id, OLD.related_id,
                OLD.reason, OLD.occurred_at, OLD.recorded_at) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'loyalty.ledger is append-only'
        USING ERRCODE = 'LY004',
              DETAIL = pg_catalog.format('%s on the ledger was refused.', TG_OP),
              HINT = 'Correct a balance with loyalty.adjust(), which adds ledger rows.';
END
$$;
COMMENT ON FUNCTION @extschema@.refuse_ledger_change() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE on loyalty.ledger, except the member id rewrite of a merge or forget (and, for a forget, the referral refs naming the id)';

-- enroll refuses a forgotten id; set_member_status 'forgotten' forgets.
CREATE OR REPLACE FUNCTION @extschema@.enroll(program text, member_id text, profile jsonb DEFAULT '{}')
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    merged_into text;
BEGIN
    PERFORM loyalty.require_program(program);
    IF member_id IS NULL OR member_id = '' THEN
        RAISE EXCEPTION 'member_id must not be null or empty' USING ERRCODE = '22004';
    END IF;
    IF profile IS NULL OR jsonb_typeof(profile) <> 'object' THEN
        RAISE EXCEPTION 'profile must be a JSON object, not %', coalesce(jsonb_typeof(profile), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF profile ? 'consent' THEN
        RAISE EXCEPTION 'profile key "consent" cannot be set with enroll'
            USING ERRCODE = '22023', HINT = 'Use loyalty.set_consent(program, member_id, purpose, granted).';
    END IF;
    IF loyalty.forgotten_pseudonym(program, member_id) IS NOT NULL THEN   -- 39_gdpr.sql
        RAISE EXCEPTION 'member "%" of program "%" was forgotten', member_id, program
            USING ERRCODE = 'LY002',
                  DETAIL = 'Its orders count as a guest''s; the id cannot be enrolled again.',
                  HINT = 'Give the person a new member id.';
    END IF;
    SELECT x.into_member_id INTO merged_into FROM loyalty.member_merge x   -- 38_member_admin.sql
     WHERE x.program = enroll.program AND x.from_member_id = enroll.member_id;
    IF FOUND THEN
        RAISE EXCEPTION 'member "%" of program "%" was merged into "%"', member_id, program, merged_into
            USING ERRCODE = 'LY002',
                  DETAIL = 'Its orders count for the member it was merged into; enrolling it again would split the person.',
                  HINT = pg_catalog.format('Use member id "%s".', merged_into);
    END IF;
    INSERT INTO loyalty.member AS m (program, member_id, profile)
    VALUES (program, member_id, profile)
    ON CONFLICT ON CONSTRAINT member_pkey DO NOTHING;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION @extschema@.enroll(text, text, jsonb) IS
    'Enrolls a member (idempotent: true when enrolled now, false when already a member; the profile is not changed); LY002 for a forgotten id';

CREATE OR REPLACE FUNCTION @extschema@.set_member_status(program text, member_id text, status text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member;
BEGIN
    PERFORM loyalty.require_program(program);
    IF status IS NULL OR status NOT IN ('active', 'held', 'forgotten') THEN
        RAISE EXCEPTION 'unknown member status: "%"', coalesce(status, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use active, held or forgotten.';
    END IF;
    m := loyalty.lock_member(program, member_id);
    IF status = 'forgotten' THEN
        PERFORM loyalty.forget_member(program, member_id);   -- 39_gdpr.sql
        RETURN;
    END IF;
    IF status = 'held' THEN
        PERFORM loyalty.hold_member(program, member_id, 'manual', NULL);
        RETURN;
    END IF;
    IF m.status = 'held' THEN
        PERFORM loyalty.release_member(program, member_id, pg_catalog.format('set_member_status %s', status));
    END IF;
    UPDATE loyalty.member x SET status = set_member_status.status::loyalty.member_status
     WHERE x.program = set_member_status.program AND x.member_id = set_member_status.member_id;
END
$$;
COMMENT ON FUNCTION @extschema@.set_member_status(text, text, text) IS
    'Sets a member''s status: active (releases a hold), held (a manual hold: earns, points kept pending, cannot redeem) or forgotten (loyalty.forget_member: erased, the id replaced by a pseudonym)';

-- A forgotten id is LY002, not an unknown member.
CREATE OR REPLACE FUNCTION @extschema@.lock_member(program text, member_id text)
RETURNS @extschema@.member
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member;
BEGIN
    PERFORM loyalty.require_program(program);
    IF member_id IS NULL OR member_id = '' THEN
        RAISE EXCEPTION 'member_id must not be null or empty' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM loyalty.member x
     WHERE x.program = lock_member.program AND x.member_id = lock_member.member_id FOR UPDATE;
    IF NOT FOUND AND loyalty.forgotten_pseudonym(program, member_id) IS NOT NULL THEN   -- 39_gdpr.sql
        RAISE EXCEPTION 'member "%" of program "%" is forgotten', member_id, program
            USING ERRCODE = 'LY002', DETAIL = 'Its id was replaced by a pseudonym (loyalty.forget_member).';
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'member "%" is not enrolled in program "%"', member_id, program
            USING ERRCODE = '42704';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION @extschema@.lock_member(text, text) IS
    'Locks an enrolled member''s row and returns it; 42704 when not enrolled; internal';

CREATE OR REPLACE FUNCTION @extschema@.require_member(program text, member_id text)
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

-- history gains label and undoes_ref: created again in 38_member_admin.sql's words below.
DROP FUNCTION @extschema@.history(text, text);

-- 38_member_admin.sql
-- Member administration: signed adjustments, profile and consent, the lots
-- and the labelled statement of a member, and merging two members of one
-- person.  Forgetting and export are in 39_gdpr.sql.

-- Consent per purpose lives in the member's profile, under "consent":
-- {"marketing": {"granted": true, "at": "..."}, "profiling": {...}}.
-- A program decides what a member without a recorded answer counts as:
-- consent_policy.required false (the default, and every program without a
-- row: an installation that has no consent data yet behaves as before) or
-- true (no answer is no).
CREATE TABLE @extschema@.consent_policy (
    program     text PRIMARY KEY REFERENCES @extschema@.program (code),
    required    boolean NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.consent_policy IS
    'Per program: whether a member without a recorded consent answer counts as not consenting (required) or consenting (not required, the default without a row)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.consent_policy', '');

-- Plain SQL without SET: inlined into the views and jobs that call it.
CREATE FUNCTION @extschema@.has_consent(program text, member_id text, purpose text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(
        (SELECT CASE WHEN pg_catalog.jsonb_typeof(m.profile OPERATOR(pg_catalog.->) 'consent' OPERATOR(pg_catalog.->)
                                                   has_consent.purpose OPERATOR(pg_catalog.->) 'granted')
                          OPERATOR(pg_catalog.=) 'boolean'   -- any other answer counts as none
                     THEN (m.profile OPERATOR(pg_catalog.->) 'consent' OPERATOR(pg_catalog.->) has_consent.purpose
                           OPERATOR(pg_catalog.->>) 'granted')::pg_catalog.bool END
           FROM @extschema@.member m
          WHERE m.program OPERATOR(pg_catalog.=) has_consent.program
            AND m.member_id OPERATOR(pg_catalog.=) has_consent.member_id),
        NOT coalesce((SELECT c.required FROM @extschema@.consent_policy c
                       WHERE c.program OPERATOR(pg_catalog.=) has_consent.program), false))
$$;
COMMENT ON FUNCTION @extschema@.has_consent(text, text, text) IS
    'Whether a member consents to a purpose (marketing, profiling): the recorded answer, else true unless the program requires consent; internal';

CREATE FUNCTION @extschema@.check_consent_purpose(purpose text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF purpose IS NULL THEN
        RAISE EXCEPTION 'purpose must not be null' USING ERRCODE = '22004', HINT = 'Use marketing or profiling.';
    END IF;
    IF purpose NOT IN ('marketing', 'profiling') THEN
        RAISE EXCEPTION 'unknown consent purpose: "%"', purpose
            USING ERRCODE = '22023', HINT = 'Use marketing or profiling.';
    END IF;
    RETURN purpose;
END
$$;
COMMENT ON FUNCTION @extschema@.check_consent_purpose(text) IS
    'Raises unless purpose is marketing or profiling; returns it; internal';

CREATE FUNCTION @extschema@.set_consent_required(program text, required boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF required IS NULL THEN
        RAISE EXCEPTION 'required must not be null' USING ERRCODE = '22004';
    END IF;
    INSERT INTO loyalty.consent_policy AS c (program, required) VALUES (program, required)
    ON CONFLICT ON CONSTRAINT consent_policy_pkey DO UPDATE SET required = excluded.required, changed_at = now();
END
$$;
COMMENT ON FUNCTION @extschema@.set_consent_required(text, boolean) IS
    'Sets whether a program''s members without a recorded consent answer count as not consenting (true) or consenting (false, the default)';

-- A member the administration may change: enrolled, and not forgotten.
CREATE FUNCTION @extschema@.lock_live_member(program text, member_id text, action text)
RETURNS @extschema@.member
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member := loyalty.lock_member(program, member_id);
BEGIN
    IF m.status = 'forgotten' THEN
        RAISE EXCEPTION 'member "%" of program "%" is forgotten', member_id, program
            USING ERRCODE = 'LY002', DETAIL = pg_catalog.format('A forgotten member cannot be %s.', action);
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION @extschema@.lock_live_member(text, text, text) IS
    'Locks an enrolled member that is not forgotten and returns it; 42704 when not enrolled, LY002 when forgotten; internal';

CREATE FUNCTION @extschema@.set_consent(program text, member_id text, purpose text, granted boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    answer jsonb;
BEGIN
    PERFORM loyalty.check_consent_purpose(purpose);
    IF granted IS NULL THEN
        RAISE EXCEPTION 'granted must not be null' USING ERRCODE = '22004',
              HINT = 'true records consent, false its refusal or withdrawal.';
    END IF;
    PERFORM loyalty.lock_live_member(program, member_id, 'given consent');
    answer := jsonb_build_object('granted', granted, 'at', now());
    UPDATE loyalty.member m
       SET profile = jsonb_set(CASE WHEN jsonb_typeof(m.profile -> 'consent') = 'object' THEN m.profile
                                    ELSE m.profile || '{"consent": {}}' END,
                               ARRAY['consent', purpose], answer)
     WHERE m.program = set_consent.program AND m.member_id = set_consent.member_id;
    RETURN answer;
END
$$;
COMMENT ON FUNCTION @extschema@.set_consent(text, text, text, boolean) IS
    'Records a member''s consent answer for a purpose (marketing: automatic coupons; profiling: RFM segments) in profile.consent with its time; returns it';

CREATE FUNCTION @extschema@.update_profile(program text, member_id text, profile jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    stored loyalty.member;
    result jsonb;
BEGIN
    IF profile IS NULL OR jsonb_typeof(profile) <> 'object' THEN
        RAISE EXCEPTION 'profile must be a JSON object, not %', coalesce(jsonb_typeof(profile), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF profile ? 'consent' THEN
        RAISE EXCEPTION 'profile key "consent" cannot be set with update_profile'
            USING ERRCODE = '22023', HINT = 'Use loyalty.set_consent(program, member_id, purpose, granted).';
    END IF;
    stored := loyalty.lock_live_member(program, member_id, 'changed');
    -- The keys given replace theirs; a key given as JSON null is removed.
    -- Computed here, not in the UPDATE: on a cluster an UPDATE may not call
    -- a stable function inside CASE.
    result := jsonb_strip_nulls(stored.profile || update_profile.profile)
              || CASE WHEN stored.profile ? 'consent' THEN jsonb_build_object('consent', stored.profile -> 'consent')
                      ELSE '{}' END;
    UPDATE loyalty.member m SET profile = result
     WHERE m.program = update_profile.program AND m.member_id = update_profile.member_id;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.update_profile(text, text, jsonb) IS
    'Changes a member''s profile: the keys given replace the stored ones, a key given as JSON null is removed, consent is kept (set_consent changes it); returns the profile';

-- Signed manual adjustment: a credit (ledger kind adjust, with the
-- program's pending and expiry) or a debit taken like take_back (soonest-
-- expiring lots first, the rest as debt unless refund_policy within_balance).
CREATE FUNCTION @extschema@.adjust(program text, member_id text, points bigint, ref text, reason text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    posted loyalty.ledger;
    holder text;
BEGIN
    PERFORM loyalty.require_program(program);
    IF points IS NULL OR ref IS NULL OR member_id IS NULL THEN
        RAISE EXCEPTION 'member_id, points and ref must not be null' USING ERRCODE = '22004';
    END IF;
    IF points = 0 THEN
        RAISE EXCEPTION 'invalid adjustment: 0 points' USING ERRCODE = '22023',
              HINT = 'Give a positive number to credit points, a negative one to take them.';
    END IF;
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'reason must not be null or blank' USING ERRCODE = '22004',
              HINT = 'Say why, e.g. ''amounts were loaded in cents''.';
    END IF;
    -- A replay of the same call returns its ledger row (before the member
    -- checks: the member may have been merged or forgotten since, its
    -- ledger rows moved to the member it was merged into or its pseudonym).
    -- A reference is the member's: another member's row is another call.
    holder := coalesce(loyalty.member_alias(program, member_id), loyalty.forgotten_pseudonym(program, member_id));
    SELECT * INTO posted FROM loyalty.ledger l
     WHERE l.program = adjust.program AND l.member_id = holder AND l.ref = adjust.ref;
    IF FOUND THEN
        IF (posted.kind IN ('earn', 'adjust')) <> (points > 0) OR posted.kind NOT IN ('earn', 'adjust', 'reverse')
           OR (posted.points <> points AND points > 0)
           OR posted.reason IS DISTINCT FROM reason THEN
            RAISE EXCEPTION 'ref "%" was already used for another call', ref
                USING ERRCODE = 'LY003',
                      DETAIL = pg_catalog.format('Ledger row %s: %s %s points, reason %s.', posted.id, posted.kind,
                                                 posted.points, coalesce(posted.reason, 'none'));
        END IF;
        IF points < 0 THEN
            -- take_back knows what it was asked for (it may have taken less).
            PERFORM loyalty.take_back(program, posted.member_id, -points, ref, reason);
        END IF;
        RETURN posted.id;
    END IF;
    PERFORM loyalty.lock_live_member(program, member_id, 'adjusted');
    IF points > 0 THEN
        RETURN loyalty.earn(program, member_id, points, ref, reason);
    END IF;
    PERFORM loyalty.take_back(program, member_id, -points, ref, reason);
    SELECT l.id INTO STRICT posted.id FROM loyalty.ledger l
     WHERE l.program = adjust.program AND l.member_id = adjust.member_id AND l.ref = adjust.ref;
    RETURN posted.id;
END
$$;
COMMENT ON FUNCTION @extschema@.adjust(text, text, bigint, text, text) IS
    'Signed manual adjustment with a reason: positive credits (kind adjust, program pending and expiry), negative takes points back (kind reverse: soonest-expiring lots first, the rest as debt or, under within_balance, not taken); idempotent on ref (LY003 when reused for another call); returns the ledger id';

-- The lots of a member: what each credit has left, when it can be spent
-- and when it expires.
CREATE FUNCTION @extschema@.member_lots(program text, member_id text, as_of timestamptz DEFAULT now())
RETURNS TABLE (lot_id bigint, order_id text, earned bigint, remaining bigint,
               available_at timestamptz, expires_at timestamptz, state text)
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
    SELECT l.id, l.order_id, l.earned, l.remaining,
           coalesce(h.available_at, l.available_at), l.expires_at,
           CASE WHEN l.remaining = 0 THEN 'used'
                WHEN loyalty.lot_expired(l.expires_at, as_of) THEN 'expired'
                WHEN h.lot_id IS NOT NULL THEN 'held'
                WHEN loyalty.lot_spendable(l.available_at, l.expires_at, as_of) THEN 'available'
                ELSE 'pending' END
      FROM loyalty.lot l
      LEFT JOIN loyalty.held_lot h ON h.lot_id = l.id AND h.member_id = l.member_id
     WHERE l.program = member_lots.program AND l.member_id = member_lots.member_id
     ORDER BY l.id;
END
$$;
COMMENT ON FUNCTION @extschema@.member_lots(text, text, timestamptz) IS
    'A member''s lots at as_of: earned, remaining, available_at (a held lot: when it becomes available once released), expires_at, state (pending, available, held, expired, used)';

-- What a ledger row was, in the words of a statement.
CREATE FUNCTION @extschema@.ledger_label(kind @extschema@.ledger_kind, reason text, order_id text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN reason OPERATOR(pg_catalog.=) 'merge' THEN 'merge'
        WHEN kind OPERATOR(pg_catalog.=) 'earn' THEN CASE WHEN order_id IS NULL THEN 'credit' ELSE 'order' END
        WHEN kind OPERATOR(pg_catalog.=) 'adjust' THEN 'adjustment'
        WHEN kind OPERATOR(pg_catalog.=) 'redeem' THEN 'redemption'
        WHEN kind OPERATOR(pg_catalog.=) 'unredeem' THEN 'redemption cancelled'
        WHEN kind OPERATOR(pg_catalog.=) 'expire' THEN 'expiry'
        WHEN order_id IS NOT NULL THEN CASE coalesce(reason, 'refund')
            WHEN 'refund' THEN 'refund' WHEN 'cancel' THEN 'cancel' WHEN 'delete' THEN 'delete'
            WHEN 'moved' THEN 'moved to another member' WHEN 'changed' THEN 'order changed'
            ELSE 'order reversed' END
        ELSE 'taken back' END
$$;
COMMENT ON FUNCTION @extschema@.ledger_label(@extschema@.ledger_kind, text, text) IS
    'The statement label of a ledger row: order, credit, adjustment, redemption, redemption cancelled, expiry, refund, cancel, delete, moved to another member, order changed, order reversed, taken back, merge';

CREATE FUNCTION @extschema@.history(program text, member_id text)
RETURNS TABLE (id bigint, kind text, points bigint, balance_after bigint, ref text, order_id text,
               reason text, occurred_at timestamptz, recorded_at timestamptz,
               label text, undoes_ref text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    -- PL/pgSQL, not SQL: on a Citus cluster a SQL function's parameters
    -- cannot be planned.  The cancelled redemption is the member's own row
    -- (the join keeps to the member: one shard on a cluster).
    RETURN QUERY
    SELECT l.id, l.kind::text, l.points,
           (sum(l.points) OVER (ORDER BY l.id))::bigint,
           l.ref, l.order_id, l.reason, l.occurred_at, l.recorded_at,
           loyalty.ledger_label(l.kind, l.reason, l.order_id),
           r.ref
      FROM loyalty.ledger l
      LEFT JOIN loyalty.ledger r ON r.id = l.related_id AND r.member_id = l.member_id AND l.kind = 'unredeem'
     WHERE l.program = history.program AND l.member_id = history.member_id
     ORDER BY l.id;
END
$$;
COMMENT ON FUNCTION @extschema@.history(text, text) IS
    'A member''s statement: every ledger row in order with the running balance, a label saying what it was (refund, cancel, delete, moved to another member, merge, ...) and, for a cancelled redemption, the ref of the redemption it undid';

-- Merges of two members of one person.  Orders the application still
-- records under a merged id go to the member it was merged into
-- (loyalty.member_alias, read by the accrual trigger).
CREATE TABLE @extschema@.member_merge (
    program         text NOT NULL REFERENCES @extschema@.program (code),
    from_member_id  text NOT NULL,
    into_member_id  text NOT NULL,
    ref             text NOT NULL,
    ledger_id       bigint NOT NULL,
    merged_at       timestamptz NOT NULL DEFAULT now(),
    merged_by       text NOT NULL DEFAULT current_user,
    PRIMARY KEY (program, from_member_id),
    UNIQUE (program, ref)
);
CREATE INDEX member_merge_into_idx ON @extschema@.member_merge (program, into_member_id);
COMMENT ON TABLE @extschema@.member_merge IS
    'Members merged into another (merge_members): the accrual trigger credits orders of from_member_id to into_member_id (always the final member: later merges update older rows); ledger_id is the merge''s 0-point ledger row';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.member_merge', '');

-- Every column of the extension's tables that holds a member id, and what
-- merging a member (into another) and forgetting one (a pseudonym) do to
-- it: rewrite (the id is replaced), orders (the activity trigger of
-- order_earning moves the rows with the orders), or the name of the step
-- that treats the table (combine: combine_member_rows; delete, guest,
-- forget: forget_member).  The test
-- member_admin fails when a table holds a member id this list misses.
CREATE FUNCTION @extschema@.member_id_columns()
RETURNS TABLE (table_name name, column_name name, on_merge text, on_forget text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    VALUES ('member'::name, 'member_id'::name, 'combine', 'rewrite'),
           ('ledger', 'member_id', 'rewrite', 'rewrite'),
           ('lot', 'member_id', 'rewrite', 'rewrite'),
           ('lot_use', 'member_id', 'rewrite', 'rewrite'),
           ('order_earning', 'member_id', 'rewrite', 'rewrite'),
           ('order_signal', 'member_id', 'rewrite', 'delete'),
           ('dead_letter', 'member_id', 'rewrite', 'guest'),
           ('member_contact', 'member_id', 'combine', 'delete'),
           ('member_hold', 'member_id', 'rewrite', 'rewrite'),
           ('held_lot', 'member_id', 'rewrite', 'rewrite'),
           ('member_exclusion', 'member_id', 'combine', 'rewrite'),
           ('activity_total', 'member_id', 'orders', 'orders'),
           ('activity_day', 'member_id', 'orders', 'orders'),
           ('activity_before', 'member_id', 'orders', 'orders'),
           ('rfm_score', 'member_id', 'combine', 'delete'),
           ('tier_history', 'member_id', 'rewrite', 'rewrite'),
           ('coupon_code', 'member_id', 'rewrite', 'rewrite'),
           ('coupon_redemption', 'member_id', 'rewrite', 'rewrite'),
           ('reward_claim', 'member_id', 'rewrite', 'rewrite'),
           ('referral', 'member_id', 'combine', 'rewrite'),
           ('referral', 'referrer_id', 'rewrite', 'rewrite'),
           ('referral_code', 'member_id', 'combine', 'delete'),
           ('referral_rejection', 'member_id', 'combine', 'rewrite'),
           ('referral_rejection', 'referrer_id', 'rewrite', 'rewrite'),
           ('referral_commission', 'member_id', 'rewrite', 'rewrite'),
           ('referral_commission', 'referee_id', 'rewrite', 'rewrite'),
           ('fraud_flag', 'member_id', 'combine', 'rewrite'),
           ('member_merge', 'from_member_id', 'combine', 'forget'),
           ('member_merge', 'into_member_id', 'combine', 'forget')
$$;
COMMENT ON FUNCTION @extschema@.member_id_columns() IS
    'Every table column holding a member id, and what merge_members and forget_member do to it (rewrite: the id replaced; orders: moved with the orders by the activity trigger; otherwise the named step); internal';

-- The rows of the source member that would collide with the target's on a
-- key including the member id: combined into the target's, or dropped.
CREATE FUNCTION @extschema@.combine_member_rows(program text, from_id text, into_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    src loyalty.member;
    tgt loyalty.member;
    ladder loyalty.tier_ladder;
    levels jsonb;
BEGIN
    SELECT * INTO src FROM loyalty.member m WHERE m.program = combine_member_rows.program AND m.member_id = from_id;
    SELECT * INTO tgt FROM loyalty.member m WHERE m.program = combine_member_rows.program AND m.member_id = into_id;
    SELECT p.tier_ladder INTO ladder FROM loyalty.program p WHERE p.code = combine_member_rows.program;
    IF ladder IS NOT NULL THEN
        SELECT jsonb_object_agg(t.tier, t.level) INTO levels FROM loyalty.tier_levels(ladder) t;
    END IF;
    -- The account: figures add up; the target's profile wins key by key; the higher tier stays.
    UPDATE loyalty.member m
       SET balance = m.balance + src.balance, debt = m.debt + src.debt,
           lifetime_earned = m.lifetime_earned + src.lifetime_earned,
           lifetime_redeemed = m.lifetime_redeemed + src.lifetime_redeemed,
           lifetime_reversed = m.lifetime_reversed + src.lifetime_reversed,
           lifetime_expired = m.lifetime_expired + src.lifetime_expired,
           enrolled_at = least(m.enrolled_at, src.enrolled_at),
           profile = src.profile || m.profile,
           tier = CASE WHEN coalesce((levels ->> src.tier)::integer, 0) > coalesce((levels ->> m.tier)::integer, 0)
                       THEN src.tier ELSE m.tier END,
           tier_since = CASE WHEN coalesce((levels ->> src.tier)::integer, 0) > coalesce((levels ->> m.tier)::integer, 0)
                             THEN src.tier_since ELSE m.tier_since END
     WHERE m.program = combine_member_rows.program AND m.member_id = into_id;
    DELETE FROM loyalty.member m WHERE m.program = combine_member_rows.program AND m.member_id = from_id;
    DELETE FROM loyalty.member_contact c WHERE c.program = combine_member_rows.program AND c.member_id = from_id;

    -- Activity moves with the orders: rewriting order_earning fires its activity trigger.

    -- One row per member: the target's stays, the source's moves only when the target has none.
    -- (The next score_rfm pass scores the merged orders.)
    UPDATE loyalty.rfm_score x SET member_id = into_id
     WHERE x.program = combine_member_rows.program AND x.member_id = from_id
       AND NOT EXISTS (SELECT 1 FROM loyalty.rfm_score y WHERE y.program = x.program AND y.member_id = into_id);
    DELETE FROM loyalty.rfm_score x WHERE x.program = combine_member_rows.program AND x.member_id = from_id;
    UPDATE loyalty.member_exclusion x SET member_id = into_id
     WHERE x.program = combine_member_rows.program AND x.member_id = from_id
       AND NOT EXISTS (SELECT 1 FROM loyalty.member_exclusion y WHERE y.program = x.program AND y.member_id = into_id);
    DELETE FROM loyalty.member_exclusion x WHERE x.program = combine_member_rows.program AND x.member_id = from_id;
    -- One referred the other: now one member, who cannot have referred himself.
    DELETE FROM loyalty.referral x
     WHERE x.program = combine_member_rows.program
       AND ((x.member_id = from_id AND x.referrer_id = into_id) OR (x.member_id = into_id AND x.referrer_id = from_id));
    UPDATE loyalty.referral x SET member_id = into_id
     WHERE x.program = combine_member_rows.program AND x.member_id = from_id
       AND NOT EXISTS (SELECT 1 FROM loyalty.referral y WHERE y.program = x.program AND y.member_id = into_id);
    DELETE FROM loyalty.referral x WHERE x.program = combine_member_rows.program AND x.member_id = from_id;
    UPDATE loyalty.referral_code x SET member_id = into_id
     WHERE x.program = combine_member_rows.program AND x.member_id = from_id
       AND NOT EXISTS (SELECT 1 FROM loyalty.referral_code y WHERE y.program = x.program AND y.member_id = into_id);
    DELETE FROM loyalty.referral_code x WHERE x.program = combine_member_rows.program AND x.member_id = from_id;
    DELETE FROM loyalty.referral_rejection x
     WHERE x.program = combine_member_rows.program AND x.member_id = from_id
       AND EXISTS (SELECT 1 FROM loyalty.referral_rejection y
                    WHERE y.program = x.program AND y.member_id = into_id AND y.code = x.code AND y.reason = x.reason);
    UPDATE loyalty.referral_rejection x SET member_id = into_id
     WHERE x.program = combine_member_rows.program AND x.member_id = from_id;
    DELETE FROM loyalty.fraud_flag x
     WHERE x.program = combine_member_rows.program AND x.member_id = from_id
       AND EXISTS (SELECT 1 FROM loyalty.fraud_flag y
                    WHERE y.program = x.program AND y.member_id = into_id AND y.rule = x.rule AND y.subject = x.subject);
    UPDATE loyalty.fraud_flag x SET member_id = into_id
     WHERE x.program = combine_member_rows.program AND x.member_id = from_id;
    -- Earlier merges into the source now point at the target.
    UPDATE loyalty.member_merge x SET into_member_id = into_id
     WHERE x.program = combine_member_rows.program AND x.into_member_id = from_id;
END
$$;
COMMENT ON FUNCTION @extschema@.combine_member_rows(text, text, text) IS
    'The merge step for tables keyed by member: figures added into the target''s account, the target''s profile, score, exclusion, referral and code kept (the source''s moved when the target has none), duplicate flags and rejections dropped; internal';

-- Replaces a member id by another in every column member_id_columns()
-- marks rewrite for the purpose (merge or forget), the append-only ledger
-- included: its trigger lets exactly this change through.
CREATE FUNCTION @extschema@.rewrite_member_id(program text, from_id text, to_id text, purpose text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    c record;
BEGIN
    PERFORM pg_catalog.set_config('loyalty.member_rewrite',
                                  pg_catalog.concat_ws(E'\x1f', program, from_id, to_id), true);
    FOR c IN SELECT x.table_name, x.column_name FROM loyalty.member_id_columns() x
              WHERE CASE purpose WHEN 'merge' THEN x.on_merge ELSE x.on_forget END = 'rewrite'
              ORDER BY 1, 2 LOOP
        EXECUTE pg_catalog.format('UPDATE loyalty.%I x SET %I = $3 WHERE x.program = $1 AND x.%I = $2',
                                  c.table_name, c.column_name, c.column_name)
          USING program, from_id, to_id;
    END LOOP;
    PERFORM pg_catalog.set_config('loyalty.member_rewrite', '', true);
    -- The activity trigger moved the figures with the orders and left the
    -- old id's rows at zero.
    DELETE FROM loyalty.activity_total a WHERE a.program = rewrite_member_id.program AND a.member_id = from_id
       AND a.orders = 0 AND a.net_spend = 0;
    DELETE FROM loyalty.activity_day a WHERE a.program = rewrite_member_id.program AND a.member_id = from_id
       AND a.orders = 0 AND a.net_spend = 0;
    DELETE FROM loyalty.activity_before a WHERE a.program = rewrite_member_id.program AND a.member_id = from_id
       AND a.orders = 0 AND a.net_spend = 0;
END
$$;
COMMENT ON FUNCTION @extschema@.rewrite_member_id(text, text, text, text) IS
    'Replaces a member id by another in every column loyalty.member_id_columns() marks rewrite for the purpose (merge or forget), the ledger included; internal';

CREATE FUNCTION @extschema@.merge_members(program text, from_member_id text, into_member_id text, ref text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    done loyalty.member_merge;
    m loyalty.member;
    marker bigint;
    clash text;
    clashes bigint;
BEGIN
    -- On a Citus cluster a member id is where the member's rows live:
    -- rewriting it means moving them between nodes, not done yet.
    IF loyalty.distributed() THEN
        RAISE EXCEPTION 'loyalty.merge_members() is not available on a Citus cluster'
            USING ERRCODE = '0A000',
                  DETAIL = 'It rewrites member ids, which place the member''s rows on a node.',
                  HINT = 'Run it on a single node, or see docs/scale-out.md.';
    END IF;
    -- Orders being inserted finish first; new ones wait for this (MemberAliasBarrier, member_alias.c).
    LOCK TABLE loyalty.member_merge, loyalty.forgotten_member IN EXCLUSIVE MODE;
    PERFORM loyalty.require_program(program);
    IF from_member_id IS NULL OR into_member_id IS NULL OR ref IS NULL THEN
        RAISE EXCEPTION 'from_member_id, into_member_id and ref must not be null' USING ERRCODE = '22004';
    END IF;
    IF from_member_id = into_member_id THEN
        RAISE EXCEPTION 'cannot merge member "%" into itself', from_member_id USING ERRCODE = '22023';
    END IF;
    -- A replay returns the merge it made.
    SELECT * INTO done FROM loyalty.member_merge x WHERE x.program = merge_members.program AND x.ref = merge_members.ref;
    IF FOUND THEN
        IF done.from_member_id <> from_member_id THEN
            RAISE EXCEPTION 'ref "%" was already used for another merge', ref
                USING ERRCODE = 'LY003', DETAIL = 'It merged another member.';
        END IF;
        RETURN done.ledger_id;
    END IF;
    -- The merge's row goes to the target, with the source's rows: the ref
    -- must be new to both (a ledger ref is unique per member).
    IF EXISTS (SELECT 1 FROM loyalty.ledger l WHERE l.program = merge_members.program
                  AND l.member_id IN (from_member_id, into_member_id) AND l.ref = merge_members.ref) THEN
        RAISE EXCEPTION 'ref "%" was already used for another call', ref USING ERRCODE = 'LY003';
    END IF;
    -- Both rows locked in member order, as every posting locks them.
    FOR m IN SELECT * FROM loyalty.member x
              WHERE x.program = merge_members.program AND x.member_id IN (from_member_id, into_member_id)
              ORDER BY x.member_id FOR UPDATE LOOP
        IF m.status <> 'active' THEN
            RAISE EXCEPTION 'member "%" of program "%" is %', m.member_id, program, m.status
                USING ERRCODE = 'LY002',
                      HINT = CASE m.status WHEN 'held' THEN 'Release the hold (loyalty.review_flag or loyalty.set_member_status(..., ''active'')) first.'
                                           ELSE 'A forgotten member can be neither merged nor merged into.' END;
        END IF;
    END LOOP;
    PERFORM loyalty.lock_member(program, from_member_id);
    PERFORM loyalty.lock_member(program, into_member_id);
    -- A reference both used cannot move: it is unique per member, the ledger
    -- is append-only, and rewriting one would break its replay.  Refused.
    SELECT l.ref, count(*) OVER () INTO clash, clashes FROM loyalty.ledger l
     WHERE l.program = merge_members.program AND l.member_id = from_member_id AND l.ref IS NOT NULL
       AND l.ref IN (SELECT k.ref FROM loyalty.ledger k
                      WHERE k.program = merge_members.program AND k.member_id = into_member_id AND k.ref IS NOT NULL)
     ORDER BY l.ref LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'members "%" and "%" of program "%" both used reference "%"', from_member_id, into_member_id, program, clash
            USING ERRCODE = 'LY003',
                  DETAIL = pg_catalog.format('%s reference(s) are in both ledgers; a reference is unique per member.', clashes),
                  HINT = 'A merge keeps every ledger row under its reference: members whose references overlap cannot be merged. Where accounts may be merged, use references unique in the program.';
    END IF;

    PERFORM loyalty.combine_member_rows(program, from_member_id, into_member_id);
    PERFORM loyalty.rewrite_member_id(program, from_member_id, into_member_id, 'merge');
    -- The statement shows the merge: a 0-point row under the ref.
    INSERT INTO loyalty.ledger (program, member_id, kind, points, ref, reason, occurred_at)
    VALUES (program, into_member_id, 'reverse', 0, ref, 'merge', now())
    RETURNING id INTO marker;
    INSERT INTO loyalty.member_merge (program, from_member_id, into_member_id, ref, ledger_id, merged_by)
    VALUES (program, from_member_id, into_member_id, ref, marker, loyalty.calling_role()::text);
    RETURN marker;
END
$$;
COMMENT ON FUNCTION @extschema@.merge_members(text, text, text, text) IS
    'Merges two members of one person: the source''s lots, ledger, orders, activity, coupons, referrals, flags and history move to the target (figures added, the higher tier kept, the target''s profile winning key by key), a 0-point ledger row labelled merge records it, later orders of the source id earn for the target; idempotent on ref (LY003 when reused); LY002 for a held or forgotten member; returns the merge''s ledger id';

-- 39_gdpr.sql
-- GDPR / PIPL: forgetting a member (erasure, with a pseudonym in its place
-- so every total stays) and exporting what loyalty holds about one.

-- Forgotten members: the keyed hash of program and id (forgotten_id_hash,
-- under a signal key: nobody without the key can test an id against it),
-- so an order the application still records under the old id earns
-- nothing and enrols no one, and the pseudonym that replaced the id.
CREATE TABLE @extschema@.forgotten_member (
    program         text NOT NULL REFERENCES @extschema@.program (code),
    key_id          integer NOT NULL,
    id_hash         bytea NOT NULL,
    pseudonym       text NOT NULL,
    forgotten_at    timestamptz NOT NULL DEFAULT now(),
    forgotten_by    text NOT NULL DEFAULT current_user,
    PRIMARY KEY (program, key_id, id_hash)
);
COMMENT ON TABLE @extschema@.forgotten_member IS
    'Members erased with forget_member: the keyed hash (HMAC under signal key key_id) of program and member id, and the pseudonym that replaced the id everywhere; orders under the old id are a guest''s';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.forgotten_member', '');

CREATE FUNCTION @extschema@.forgotten_id_hash(key bytea, program text, member_id text) RETURNS bytea
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'loyalty_forgotten_id_hash';
COMMENT ON FUNCTION @extschema@.forgotten_id_hash(bytea, text, text) IS
    'HMAC-SHA-256 (first 16 bytes) of a program and member id under a 32-byte signal key, as loyalty.forgotten_member keeps it; internal';

-- The pseudonym of a forgotten id, NULL when it was not forgotten.
CREATE FUNCTION @extschema@.forgotten_pseudonym(program text, member_id text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT f.pseudonym FROM loyalty.signal_key k
      JOIN loyalty.forgotten_member f
        ON f.program = forgotten_pseudonym.program AND f.key_id = k.id
       AND f.id_hash = loyalty.forgotten_id_hash(k.key, forgotten_pseudonym.program, forgotten_pseudonym.member_id)
     LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.forgotten_pseudonym(text, text) IS
    'The pseudonym that replaced a forgotten member id, NULL when the id was not forgotten; internal';

-- What the accrual trigger credits an order of member_id to (member_alias.c).
CREATE FUNCTION @extschema@.member_alias(program text, member_id text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT CASE WHEN loyalty.forgotten_pseudonym(program, member_id) IS NOT NULL THEN NULL
                ELSE coalesce((SELECT x.into_member_id FROM loyalty.member_merge x
                                WHERE x.program = member_alias.program AND x.from_member_id = member_alias.member_id),
                              member_id) END
$$;
COMMENT ON FUNCTION @extschema@.member_alias(text, text) IS
    'The member an order of member_id earns for: the member it was merged into, NULL (a guest) when it was forgotten, else itself; internal';

-- The accrual trigger keeps whether any alias exists; a change drops it.
CREATE TRIGGER member_merge_cache_invalidation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.member_merge FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_program_cache();
CREATE TRIGGER forgotten_member_cache_invalidation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.forgotten_member FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_program_cache();

-- Keeps the keyed hash of a forgotten id, under the current signal key.
CREATE FUNCTION @extschema@.remember_forgotten(program text, member_id text, pseudonym text)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    INSERT INTO loyalty.forgotten_member (program, key_id, id_hash, pseudonym, forgotten_by)
    SELECT program, k.id, loyalty.forgotten_id_hash(k.key, program, member_id), pseudonym,
           loyalty.calling_role()::text
      FROM loyalty.signal_key k WHERE k.retired_at IS NULL
    ON CONFLICT DO NOTHING
$$;
COMMENT ON FUNCTION @extschema@.remember_forgotten(text, text, text) IS
    'Records the keyed hash of a forgotten member id and its pseudonym in loyalty.forgotten_member; internal';

CREATE FUNCTION @extschema@.forget_member(program text, member_id text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member;
    pseudonym text := loyalty.forgotten_pseudonym(program, member_id);
    merged record;
BEGIN
    -- On a Citus cluster a member id is where the member's rows live:
    -- rewriting it means moving them between nodes, not done yet.
    IF loyalty.distributed() THEN
        RAISE EXCEPTION 'loyalty.forget_member() is not available on a Citus cluster'
            USING ERRCODE = '0A000',
                  DETAIL = 'It rewrites member ids, which place the member''s rows on a node.',
                  HINT = 'Run it on a single node, or see docs/scale-out.md.';
    END IF;
    -- Orders being inserted finish first; new ones wait for this (MemberAliasBarrier, member_alias.c).
    LOCK TABLE loyalty.member_merge, loyalty.forgotten_member IN EXCLUSIVE MODE;
    PERFORM loyalty.require_program(program);
    IF member_id IS NULL OR member_id = '' THEN
        RAISE EXCEPTION 'member_id must not be null or empty' USING ERRCODE = '22004';
    END IF;
    IF pseudonym IS NOT NULL THEN
        RETURN pseudonym;   -- forgotten already
    END IF;
    m := loyalty.lock_member(program, member_id);
    pseudonym := 'forgotten-' || replace(gen_random_uuid()::text, '-', '');
    IF m.status = 'held' THEN
        PERFORM loyalty.release_member(program, member_id, 'member forgotten');
    END IF;
    -- The profile goes (its contact hashes with it), then the id everywhere.
    UPDATE loyalty.member x SET profile = '{}', status = 'forgotten'
     WHERE x.program = forget_member.program AND x.member_id = forget_member.member_id;
    DELETE FROM loyalty.member_contact c WHERE c.program = forget_member.program AND c.member_id = forget_member.member_id;
    DELETE FROM loyalty.order_signal s WHERE s.program = forget_member.program AND s.member_id = forget_member.member_id;
    DELETE FROM loyalty.rfm_score s WHERE s.program = forget_member.program AND s.member_id = forget_member.member_id;
    DELETE FROM loyalty.referral_code c WHERE c.program = forget_member.program AND c.member_id = forget_member.member_id;
    -- Open dead letters of the member replay as a guest's orders.
    -- (A reason may name the member: 'member "<id>" earning ... would hold more than ...'.)
    UPDATE loyalty.dead_letter d
       SET member_id = NULL,
           reason = replace(d.reason, '"' || forget_member.member_id || '"', '"' || pseudonym || '"')
     WHERE d.program = forget_member.program AND d.member_id = forget_member.member_id;
    -- Ids merged into the member were the same person's: forgotten too.
    FOR merged IN DELETE FROM loyalty.member_merge x
                   WHERE x.program = forget_member.program AND x.into_member_id = forget_member.member_id
                  RETURNING x.from_member_id LOOP
        PERFORM loyalty.remember_forgotten(program, merged.from_member_id, pseudonym);
    END LOOP;
    UPDATE loyalty.member_merge x SET from_member_id = pseudonym
     WHERE x.program = forget_member.program AND x.from_member_id = forget_member.member_id;
    -- Flags of other members may cite the id as evidence.
    UPDATE loyalty.fraud_flag f
       SET evidence = replace(f.evidence::text, to_json(forget_member.member_id)::text, to_json(pseudonym)::text)::jsonb
     WHERE f.program = forget_member.program AND strpos(f.evidence::text, to_json(forget_member.member_id)::text) > 0;
    UPDATE loyalty.fraud_flag f SET subject = 'referral:' || pseudonym
     WHERE f.program = forget_member.program AND f.subject = 'referral:' || forget_member.member_id;
    UPDATE loyalty.coupon_code c SET issued_ref = left(c.issued_ref, -length(forget_member.member_id)) || pseudonym
     WHERE c.program = forget_member.program AND c.member_id = forget_member.member_id
       AND right(c.issued_ref, length(forget_member.member_id) + 1) = ':' || forget_member.member_id;
    -- Referral rewards name the referee (and a milestone its referrer) in
    -- their ref, on the member's rows and on its referrer's: renamed too.
    PERFORM set_config('loyalty.member_rewrite', concat_ws(E'\x1f', program, member_id, pseudonym), true);
    UPDATE loyalty.ledger l
       SET ref = split_part(l.ref, ':', 1) || ':' || pseudonym
                 || substr(l.ref, length(split_part(l.ref, ':', 1) || ':' || forget_member.member_id) + 1)
     WHERE l.program = forget_member.program
       AND l.member_id IN (SELECT forget_member.member_id
                           UNION ALL SELECT r.referrer_id FROM loyalty.referral r
                                      WHERE r.program = forget_member.program AND r.member_id = forget_member.member_id)
       AND (starts_with(l.ref, 'referral:' || forget_member.member_id || ':')
            OR starts_with(l.ref, 'referral-milestone:' || forget_member.member_id || ':'));
    PERFORM set_config('loyalty.member_rewrite', '', true);
    UPDATE loyalty.coupon_code c
       SET issued_ref = 'referral:' || pseudonym || substr(c.issued_ref, length('referral:' || forget_member.member_id) + 1)
     WHERE c.program = forget_member.program AND starts_with(c.issued_ref, 'referral:' || forget_member.member_id || ':');
    PERFORM loyalty.rewrite_member_id(program, member_id, pseudonym, 'forget');
    PERFORM loyalty.remember_forgotten(program, member_id, pseudonym);
    RETURN pseudonym;
END
$$;
COMMENT ON FUNCTION @extschema@.forget_member(text, text) IS
    'Erases a member (GDPR/PIPL): profile, contact and order signal hashes, RFM score and referral code deleted, the id replaced by a pseudonym in every table (ledger included), status forgotten, totals kept; a keyed hash of the id makes later orders under it a guest''s; idempotent; returns the pseudonym';

CREATE FUNCTION @extschema@.export_member(program text, member_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member;
    p text := program;
    who text := member_id;
BEGIN
    PERFORM loyalty.require_program(program);
    IF member_id IS NULL THEN
        RAISE EXCEPTION 'member_id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM loyalty.member x WHERE x.program = p AND x.member_id = who;
    IF NOT FOUND THEN
        IF loyalty.forgotten_pseudonym(p, who) IS NOT NULL THEN
            RAISE EXCEPTION 'member "%" of program "%" was forgotten', who, p
                USING ERRCODE = 'LY002', DETAIL = 'Nothing is kept under this id.';
        END IF;
        RAISE EXCEPTION 'member "%" is not enrolled in program "%"', who, p USING ERRCODE = '42704';
    END IF;
    RETURN jsonb_build_object(
        'program', p, 'member_id', who, 'exported_at', now(),
        'profile', m.profile - 'consent',
        'consent', coalesce(m.profile -> 'consent', '{}'),
        'status', m.status, 'enrolled_at', m.enrolled_at,
        'balance', (SELECT to_jsonb(b) FROM loyalty.balance(p, who) b),
        'account', jsonb_build_object('balance', m.balance, 'debt', m.debt,
                                      'lifetime_earned', m.lifetime_earned, 'lifetime_redeemed', m.lifetime_redeemed,
                                      'lifetime_reversed', m.lifetime_reversed, 'lifetime_expired', m.lifetime_expired),
        'tier', jsonb_build_object('tier', m.tier, 'since', m.tier_since),
        'tier_history', coalesce((SELECT jsonb_agg(to_jsonb(t) - 'program' - 'member_id' ORDER BY t.id)
                                    FROM loyalty.tier_history t WHERE t.program = p AND t.member_id = who), '[]'),
        'ledger', coalesce((SELECT jsonb_agg(to_jsonb(h) ORDER BY h.id) FROM loyalty.history(p, who) h), '[]'),
        'lots', coalesce((SELECT jsonb_agg(to_jsonb(l) ORDER BY l.lot_id) FROM loyalty.member_lots(p, who) l), '[]'),
        'orders', coalesce((SELECT jsonb_agg(to_jsonb(o) - 'program' - 'member_id' ORDER BY o.ordered_at, o.order_id)
                              FROM loyalty.order_earning o WHERE o.program = p AND o.member_id = who), '[]'),
        'activity', (SELECT to_jsonb(a) - 'program' - 'member_id' FROM loyalty.activity_total a
                      WHERE a.program = p AND a.member_id = who),
        'rfm', (SELECT to_jsonb(s) - 'program' - 'member_id' FROM loyalty.rfm_score s
                 WHERE s.program = p AND s.member_id = who),
        'coupons', coalesce((SELECT jsonb_agg(to_jsonb(c) - 'program' - 'member_id' ORDER BY c.issued_at, c.code)
                               FROM loyalty.coupon_code c WHERE c.program = p AND c.member_id = who), '[]'),
        'coupon_redemptions', coalesce((SELECT jsonb_agg(to_jsonb(r) - 'program' - 'member_id' ORDER BY r.redeemed_at, r.code)
                                          FROM loyalty.coupon_redemption r WHERE r.program = p AND r.member_id = who), '[]'),
        'reward_claims', coalesce((SELECT jsonb_agg(to_jsonb(r) - 'program' - 'member_id' ORDER BY r.claimed_at, r.ref)
                                     FROM loyalty.reward_claim r WHERE r.program = p AND r.member_id = who), '[]'),
        'referral_code', (SELECT loyalty.coupon_code_display(c.code) FROM loyalty.referral_code c
                           WHERE c.program = p AND c.member_id = who),
        'referred_by', (SELECT to_jsonb(r) - 'program' - 'member_id' FROM loyalty.referral r
                         WHERE r.program = p AND r.member_id = who),
        'referrals', coalesce((SELECT jsonb_agg(jsonb_build_object('member_id', r.member_id, 'state', r.state,
                                                                   'referred_at', r.referred_at) ORDER BY r.referred_at)
                                 FROM loyalty.referral r WHERE r.program = p AND r.referrer_id = who), '[]'),
        'fraud_flags', coalesce((SELECT jsonb_agg(jsonb_build_object('rule', f.rule, 'state', f.state, 'raised_at', f.raised_at,
                                                                     'decided_at', f.decided_at) ORDER BY f.id)
                                   FROM loyalty.fraud_flag f WHERE f.program = p AND f.member_id = who), '[]'),
        'holds', coalesce((SELECT jsonb_agg(jsonb_build_object('source', h.source, 'held_at', h.held_at,
                                                               'released_at', h.released_at) ORDER BY h.id)
                             FROM loyalty.member_hold h WHERE h.program = p AND h.member_id = who), '[]'),
        'excluded', EXISTS (SELECT 1 FROM loyalty.member_exclusion x WHERE x.program = p AND x.member_id = who),
        'merged_from', coalesce((SELECT jsonb_agg(x.from_member_id ORDER BY x.merged_at)
                                   FROM loyalty.member_merge x WHERE x.program = p AND x.into_member_id = who), '[]'));
END
$$;
COMMENT ON FUNCTION @extschema@.export_member(text, text) IS
    'Everything loyalty holds about a member, as JSON (GDPR/PIPL access and portability): profile, consent, status, balance and account, tier and its history, ledger (the labelled statement), lots, orders, activity, RFM, coupons and redemptions, reward claims, referrals, fraud flags (rules and states, not other members'' evidence), holds, exclusion, merged ids';

-- member_rfm leaves members without profiling consent out (same columns).
CREATE OR REPLACE VIEW @extschema@.member_rfm AS
    SELECT s.program, s.member_id,
           floor(extract(epoch FROM p.scored_at - s.last_order_at) / 86400)::integer AS recency_days,
           s.frequency, s.monetary, s.rfm, s.segment, p.scored_at
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
                    NOT coalesce(c.required, false));
COMMENT ON VIEW @extschema@.member_rfm IS
    'RFM per member as of the last loyalty.score_rfm(): recency in whole days, distinct orders, net spend in base currency, scores and segment; excluded members and members without profiling consent left out';

-- The birthday and wake-up coupons want marketing consent.
CREATE OR REPLACE FUNCTION @extschema@.issue_birthday_coupons(program text, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    campaign text := loyalty.auto_coupon_campaign(program, 'birthday');
    today date;
    m record;
    seen bigint := 0;
    issued bigint := 0;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_as_of(as_of);
    IF campaign IS NULL THEN
        RAISE NOTICE 'loyalty: program "%" has no birthday coupon (loyalty.set_auto_coupon)', program;
        RETURN 0;
    END IF;
    today := (as_of AT TIME ZONE p.timezone)::date;
    FOR m IN
        SELECT x.member_id FROM loyalty.member x
         WHERE x.program = issue_birthday_coupons.program AND x.status = 'active'
           AND loyalty.birthday_in(x.profile ->> 'birthday', extract(year FROM today)::integer) = today
           AND loyalty.has_consent(x.program, x.member_id, 'marketing')
         ORDER BY x.member_id
    LOOP
        IF loyalty.issue_coupon_once(program, campaign, m.member_id,
                                     'birthday:' || extract(year FROM today) || ':' || m.member_id,
                                     as_of) IS NOT NULL THEN
            issued := issued + 1;
        END IF;
        seen := seen + 1;
        IF seen % 1000 = 0 THEN
            RAISE NOTICE 'loyalty: birthday coupons %: % members with a birthday on %, % issued so far',
                program, seen, to_char(today, 'YYYY-MM-DD'), issued;
        END IF;
    END LOOP;
    RAISE NOTICE 'loyalty: birthday coupons %: % members with a birthday on %, % issued',
        program, seen, to_char(today, 'YYYY-MM-DD'), issued;
    RETURN issued;
END
$$;
COMMENT ON FUNCTION @extschema@.issue_birthday_coupons(text, timestamptz) IS
    'Daily job: issues the birthday coupon to each active member with marketing consent whose profile birthday is as_of''s date in the program''s time zone, once a year; returns the codes issued';

CREATE OR REPLACE FUNCTION @extschema@.issue_wake_up_coupons(program text, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    campaign text := loyalty.auto_coupon_campaign(program, 'wake_up');
    m record;
    seen bigint := 0;
    issued bigint := 0;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_as_of(as_of);
    IF campaign IS NULL THEN
        RAISE NOTICE 'loyalty: program "%" has no wake-up coupon (loyalty.set_auto_coupon)', program;
        RETURN 0;
    END IF;
    FOR m IN
        SELECT l.member_id, l.last_order_at
          FROM loyalty.member_lifecycle_all(p.code, as_of) l
          JOIN loyalty.member x ON x.program = l.program AND x.member_id = l.member_id
         WHERE l.stage = 'dormant' AND x.status = 'active'
           AND loyalty.has_consent(x.program, x.member_id, 'marketing')
         ORDER BY l.member_id
    LOOP
        -- One coupon per dormancy episode: an order later starts another.
        IF loyalty.issue_coupon_once(program, campaign, m.member_id,
                                     'wake_up:' || to_char(m.last_order_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                                     || ':' || m.member_id, as_of) IS NOT NULL THEN
            issued := issued + 1;
        END IF;
        seen := seen + 1;
        IF seen % 1000 = 0 THEN
            RAISE NOTICE 'loyalty: wake-up coupons %: % dormant members, % issued so far', program, seen, issued;
        END IF;
    END LOOP;
    RAISE NOTICE 'loyalty: wake-up coupons %: % dormant members, % issued', program, seen, issued;
    RETURN issued;
END
$$;
COMMENT ON FUNCTION @extschema@.issue_wake_up_coupons(text, timestamptz) IS
    'Daily job: issues the wake-up coupon to each active member with marketing consent in the dormant lifecycle stage at as_of, once per dormancy episode (keyed on the last order time); returns the codes issued';

-- Privileges, as 99_privileges.sql gives them: the new functions are not
-- PUBLIC's (the install script revokes everything from PUBLIC first),
-- admins read every table, history is the application's again.
DO $revoke$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) '@extschema@'::regnamespace
                AND p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['adjust', 'check_consent_purpose', 'combine_member_rows', 'export_member', 'forget_member', 'forgotten_id_hash', 'forgotten_pseudonym', 'has_consent', 'history', 'ledger_label', 'lock_live_member', 'member_alias', 'member_id_columns', 'member_lots', 'merge_members', 'remember_forgotten', 'rewrite_member_id', 'set_consent', 'set_consent_required', 'update_profile']) LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$revoke$;
GRANT SELECT ON @extschema@.consent_policy, @extschema@.member_merge, @extschema@.forgotten_member TO loyalty_admin;
GRANT EXECUTE ON FUNCTION @extschema@.history(text, text) TO loyalty_app, loyalty_admin;

-- P3 (member administration and GDPR).  The application keeps profiles
-- and consent and shows members their lots; admins adjust, merge, forget
-- and export.  Internal (owner only): has_consent (the automatic coupon jobs
-- call it as the owner; member_rfm writes the rule out), check_consent_purpose,
-- lock_live_member, ledger_label, member_id_columns, combine_member_rows,
-- rewrite_member_id, forgotten_id_hash, forgotten_pseudonym, member_alias,
-- remember_forgotten.
GRANT EXECUTE ON FUNCTION
    @extschema@.update_profile(text, text, jsonb),
    @extschema@.set_consent(text, text, text, boolean),
    @extschema@.member_lots(text, text, timestamptz)
TO loyalty_app, loyalty_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.adjust(text, text, bigint, text, text),
    @extschema@.set_consent_required(text, boolean),
    @extschema@.merge_members(text, text, text, text),
    @extschema@.forget_member(text, text),
    @extschema@.export_member(text, text)
TO loyalty_admin;
