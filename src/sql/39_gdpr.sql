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
