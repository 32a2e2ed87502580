-- Review of fraud flags: confirm (reverse what the flagged activity
-- earned, through the ledger) or dismiss; either way the member's fraud
-- hold is released once its risk falls below the threshold.

-- What a decided flag's review returns (and returns again on a replay).
CREATE FUNCTION @extschema@.review_result(f @extschema@.fraud_flag) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, @extschema@, pg_temp
RETURN CASE WHEN f.state = 'confirmed'
            THEN pg_catalog.format('confirmed: %s points reversed', f.points_reversed)
            ELSE f.state END;
COMMENT ON FUNCTION @extschema@.review_result(@extschema@.fraud_flag) IS
    'The result review_flag returns for a decided flag: "confirmed: N points reversed" or "dismissed"';

-- Reverses the flag's evidence: its orders (reverse_order) and credits
-- (take_back, ref fraud:<flag>:<ledger id>), the member's own only.
-- A credit already taken back by another confirmed flag (the same credit
-- is the evidence of two earn_burn flags, or of earn_burn and
-- referral_ring) is not taken back again; the member's row is locked
-- before the credits are read, so two reviews of such flags take turns.  Returns the points
-- reversed.
CREATE FUNCTION @extschema@.reverse_flag_evidence(f @extschema@.fraud_flag) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    reason text := 'fraud flag ' || f.id;
    reversed bigint := 0;
    o text;
    c record;
BEGIN
    FOR o IN SELECT e.order_id FROM loyalty.order_earning e
              WHERE e.program = f.program AND e.member_id = f.member_id
                AND e.order_id IN (SELECT jsonb_array_elements_text(coalesce(f.evidence -> 'orders', '[]')))
              ORDER BY e.order_id LOOP
        reversed := reversed + loyalty.reverse_order(f.program, o, reason);
    END LOOP;
    -- After the orders (reverse_order locks the order, then the member, as
    -- a refund does): the credits below are read once the member is ours.
    PERFORM FROM loyalty.member m WHERE m.program = f.program AND m.member_id = f.member_id FOR UPDATE;
    FOR c IN SELECT g.id, g.points FROM loyalty.ledger g
              WHERE g.program = f.program AND g.member_id = f.member_id AND g.points > 0
                AND g.id IN (SELECT x::bigint FROM jsonb_array_elements_text(coalesce(f.evidence -> 'ledger', '[]')) x)
                AND NOT EXISTS (SELECT FROM loyalty.ledger r
                                 WHERE r.program = f.program AND r.member_id = f.member_id AND r.kind = 'reverse'
                                   AND r.ref LIKE 'fraud:%' AND split_part(r.ref, ':', 3) = g.id::text)
              ORDER BY g.id LOOP
        reversed := reversed + loyalty.take_back(f.program, f.member_id, c.points,
                                                 pg_catalog.format('fraud:%s:%s', f.id, c.id), reason, now());
    END LOOP;
    RETURN reversed;
END
$$;
COMMENT ON FUNCTION @extschema@.reverse_flag_evidence(@extschema@.fraud_flag) IS
    'Reverses what a flag''s evidence earned: its orders (reverse_order) and credits (take_back, ref fraud:<flag>:<ledger id>), reason "fraud flag <id>"; returns the points reversed';

CREATE FUNCTION @extschema@.review_flag(flag_id bigint, decision text, note text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    f loyalty.fraud_flag;
    new_state text;
    risk numeric;
    threshold numeric;
BEGIN
    IF flag_id IS NULL THEN
        RAISE EXCEPTION 'flag_id must not be null' USING ERRCODE = '22004';
    END IF;
    IF decision IS NULL THEN
        RAISE EXCEPTION 'decision must not be null' USING ERRCODE = '22004', HINT = 'Use confirm or dismiss.';
    END IF;
    new_state := CASE decision WHEN 'confirm' THEN 'confirmed' WHEN 'dismiss' THEN 'dismissed' END;
    IF new_state IS NULL THEN
        RAISE EXCEPTION 'unknown decision "%"', decision USING ERRCODE = '22023', HINT = 'Use confirm or dismiss.';
    END IF;
    -- Reviewers of one flag take turns; the second sees the first's decision.
    SELECT * INTO f FROM loyalty.fraud_flag x WHERE x.id = flag_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'fraud flag % does not exist', flag_id USING ERRCODE = '42704';
    END IF;
    IF f.state <> 'open' THEN
        IF f.state = new_state THEN
            RETURN loyalty.review_result(f);       -- a replay: the first result
        END IF;
        RAISE EXCEPTION 'fraud flag % is already %', flag_id, f.state
            USING ERRCODE = 'LY040',
                  DETAIL = pg_catalog.format('It was %s at %s by %s.', f.state, f.decided_at, f.decided_by),
                  HINT = 'A decision is final; a confirmed flag''s reversals stay in the ledger.';
    END IF;
    UPDATE loyalty.fraud_flag x
       SET state = new_state, decided_at = now(), decided_by = loyalty.calling_role()::text, note = review_flag.note,
           points_reversed = CASE WHEN new_state = 'confirmed' THEN loyalty.reverse_flag_evidence(f) ELSE 0 END
     WHERE x.id = f.id
    RETURNING * INTO f;
    -- A fraud hold (never a manual one) ends when the risk falls below the
    -- threshold.  The member is locked first, so the risk read below counts
    -- the flags of a fraud_check that has just held it (its hold step locks
    -- the member too).
    PERFORM FROM loyalty.member m WHERE m.program = f.program AND m.member_id = f.member_id FOR UPDATE;
    IF EXISTS (SELECT 1 FROM loyalty.member_hold h
                WHERE h.program = f.program AND h.member_id = f.member_id
                  AND h.released_at IS NULL AND h.source = 'fraud') THEN
        risk := loyalty.member_risk(f.program, f.member_id);
        threshold := loyalty.hold_threshold_of(f.program);
        IF risk < threshold THEN
            PERFORM loyalty.release_member(f.program, f.member_id,
                pg_catalog.format('fraud risk %s below the hold threshold %s after review of fraud flag %s',
                                  risk, threshold, f.id));
        END IF;
    END IF;
    RETURN loyalty.review_result(f);
END
$$;
COMMENT ON FUNCTION @extschema@.review_flag(bigint, text, text) IS
    'Decides an open fraud flag: confirm reverses its evidence through the ledger (reason "fraud flag <id>"), dismiss reverses nothing; releases the member''s fraud hold when its risk falls below the threshold; a replay returns the first result, another decision is LY040';

-- What the fraud checks said of a referral: 'confirmed' when a
-- referral_ring flag of it was confirmed (the referral is void), 'open'
-- while one awaits review (it waits, unpaid), NULL when none or all were
-- dismissed.  A ring found before the rewards are paid has no reward to
-- take back: this keeps them from being paid.
-- PL/pgSQL: Citus cannot plan a SQL function's parameters on a cluster.
CREATE FUNCTION @extschema@.referral_ring_state(program text, referee text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN (SELECT f.state FROM loyalty.fraud_flag f
             WHERE f.program = referral_ring_state.program AND f.rule = 'referral_ring'
               AND f.subject = 'referral:' || referee AND f.state <> 'dismissed'
             ORDER BY f.state = 'confirmed' DESC LIMIT 1);
END
$$;
COMMENT ON FUNCTION @extschema@.referral_ring_state(text, text) IS
    'confirmed, open or NULL: whether a referral_ring flag of the referral was confirmed or awaits review; internal';
