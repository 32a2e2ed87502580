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
