-- Member tiers: the loyalty.tier_ladder type and a program's ladder.

CREATE TYPE @extschema@.tier_ladder;

CREATE FUNCTION @extschema@.tier_ladder_in(cstring) RETURNS @extschema@.tier_ladder
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_ladder_in';
CREATE FUNCTION @extschema@.tier_ladder_out(@extschema@.tier_ladder) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_ladder_out';
CREATE FUNCTION @extschema@.tier_ladder_recv(internal) RETURNS @extschema@.tier_ladder
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_ladder_recv';
CREATE FUNCTION @extschema@.tier_ladder_send(@extschema@.tier_ladder) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_ladder_send';

CREATE TYPE @extschema@.tier_ladder (
    INPUT = @extschema@.tier_ladder_in,
    OUTPUT = @extschema@.tier_ladder_out,
    RECEIVE = @extschema@.tier_ladder_recv,
    SEND = @extschema@.tier_ladder_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);
COMMENT ON TYPE @extschema@.tier_ladder IS
    'A member tier ladder: basis (spend, points, orders), rolling window, downgrade grace and policy, and levels with threshold and point multiplier; e.g. ''basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2''';
COMMENT ON FUNCTION @extschema@.tier_ladder_in(cstring) IS 'tier_ladder input: options, then levels from the lowest, checked';
COMMENT ON FUNCTION @extschema@.tier_ladder_out(@extschema@.tier_ladder) IS 'tier_ladder output: the canonical text form with every option';
COMMENT ON FUNCTION @extschema@.tier_ladder_recv(internal) IS 'tier_ladder binary input, checked like the text input';
COMMENT ON FUNCTION @extschema@.tier_ladder_send(@extschema@.tier_ladder) IS 'tier_ladder binary output';

CREATE FUNCTION @extschema@.tier_of(ladder @extschema@.tier_ladder, value numeric) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_of';
COMMENT ON FUNCTION @extschema@.tier_of(@extschema@.tier_ladder, numeric) IS
    'The name of the highest level whose threshold value reaches (the first level below every threshold)';

CREATE FUNCTION @extschema@.tier_levels(ladder @extschema@.tier_ladder,
                                       OUT level integer, OUT tier text, OUT threshold numeric,
                                       OUT multiplier numeric)
RETURNS SETOF record
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_levels';
COMMENT ON FUNCTION @extschema@.tier_levels(@extschema@.tier_ladder) IS
    'The levels of a ladder, lowest first: level number, name, threshold, point multiplier';

CREATE FUNCTION @extschema@.tier_ladder_options(ladder @extschema@.tier_ladder,
                                               OUT basis text, OUT window_days integer,
                                               OUT grace_days integer, OUT downgrade text)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_ladder_options';
COMMENT ON FUNCTION @extschema@.tier_ladder_options(@extschema@.tier_ladder) IS
    'A ladder''s options: basis, rolling window and downgrade grace in days, downgrade policy (step: one level at a time; drop: straight to the qualifying level)';

ALTER TABLE @extschema@.program ADD COLUMN tier_ladder @extschema@.tier_ladder;
COMMENT ON COLUMN @extschema@.program.tier_ladder IS 'The program''s member tier ladder; NULL: no tiers';

CREATE FUNCTION @extschema@.set_tier_ladder(program text, ladder @extschema@.tier_ladder)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    UPDATE loyalty.program p SET tier_ladder = set_tier_ladder.ladder WHERE p.code = set_tier_ladder.program;
END
$$;
COMMENT ON FUNCTION @extschema@.set_tier_ladder(text, @extschema@.tier_ladder) IS
    'Sets (or, with NULL, removes) a program''s tier ladder';

CREATE VIEW @extschema@.program_tier AS
    SELECT p.code AS program, l.level, l.tier, l.threshold, l.multiplier,
           o.basis, o.window_days, o.grace_days, o.downgrade
      FROM @extschema@.program p
     CROSS JOIN LATERAL @extschema@.tier_levels(p.tier_ladder) l
     CROSS JOIN LATERAL @extschema@.tier_ladder_options(p.tier_ladder) o;
COMMENT ON VIEW @extschema@.program_tier IS 'Every program''s tier ladder, one row per level';
COMMENT ON COLUMN @extschema@.program_tier.program IS 'Program code';
COMMENT ON COLUMN @extschema@.program_tier.level IS 'Level number, 1 the lowest';
COMMENT ON COLUMN @extschema@.program_tier.tier IS 'Level name';
COMMENT ON COLUMN @extschema@.program_tier.threshold IS 'Basis value from which a member reaches the level';
COMMENT ON COLUMN @extschema@.program_tier.multiplier IS 'Points multiplier of the level';
COMMENT ON COLUMN @extschema@.program_tier.basis IS 'What the thresholds measure: spend (net, base currency), points or orders';
COMMENT ON COLUMN @extschema@.program_tier.window_days IS 'Rolling window the basis is measured over, in days';
COMMENT ON COLUMN @extschema@.program_tier.grace_days IS 'Days a member keeps a level after falling below it';
COMMENT ON COLUMN @extschema@.program_tier.downgrade IS 'step: one level at a time; drop: straight to the qualifying level';

-- A member's tier: the level it holds, since when, when it fell below it
-- (grace running), and a floor support can guarantee until a date.
ALTER TABLE @extschema@.member
    ADD COLUMN tier text,
    ADD COLUMN tier_since timestamptz,
    ADD COLUMN tier_below_since timestamptz,
    ADD COLUMN tier_floor text,
    ADD COLUMN tier_floor_until timestamptz;
COMMENT ON COLUMN @extschema@.member.tier IS 'Tier held (a level name of the program''s ladder); NULL: the first level';
COMMENT ON COLUMN @extschema@.member.tier_since IS 'When the member reached its tier';
COMMENT ON COLUMN @extschema@.member.tier_below_since IS 'When the member fell below its tier''s threshold: the downgrade grace runs from here';
COMMENT ON COLUMN @extschema@.member.tier_floor IS 'A tier guaranteed by loyalty.set_tier_floor() until tier_floor_until';
COMMENT ON COLUMN @extschema@.member.tier_floor_until IS 'End of the guaranteed tier';

ALTER TABLE @extschema@.order_earning ADD COLUMN multiplier numeric NOT NULL DEFAULT 1;
-- A member's orders in a window: tier basis values, lifecycle.
CREATE INDEX order_earning_member_idx ON @extschema@.order_earning (program, member_id, ordered_at);
COMMENT ON COLUMN @extschema@.order_earning.multiplier IS 'Tier multiplier the current generation earned at (kept for refunds)';

CREATE SEQUENCE @extschema@.tier_history_id_seq;
CREATE TABLE @extschema@.tier_history (
    id          bigint NOT NULL DEFAULT nextval('@extschema@.tier_history_id_seq'),
    program     text NOT NULL,
    member_id   text NOT NULL,
    from_tier   text,
    to_tier     text NOT NULL,
    reason      text NOT NULL CHECK (reason IN ('upgrade', 'downgrade', 'floor')),
    basis_value numeric,
    changed_at  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, member_id)
);
ALTER SEQUENCE @extschema@.tier_history_id_seq OWNED BY @extschema@.tier_history.id;
CREATE INDEX tier_history_member_idx ON @extschema@.tier_history (program, member_id, id);
COMMENT ON TABLE @extschema@.tier_history IS
    'Every tier change: from and to, why (upgrade, downgrade after the grace, floor), the basis value then, when';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tier_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tier_history_id_seq', '');

-- Not STRICT: NULL arguments are errors.
CREATE FUNCTION @extschema@.recalculate_tiers(program text, as_of timestamptz DEFAULT now(),
                                             OUT members bigint, OUT upgraded bigint, OUT downgraded bigint,
                                             OUT grace_started bigint, OUT unchanged bigint)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
-- JIT compiling the pass's million-row queries costs more than it saves.
SET jit = off
AS 'MODULE_PATHNAME', 'loyalty_recalculate_tiers';
COMMENT ON FUNCTION @extschema@.recalculate_tiers(text, timestamptz) IS
    'Recomputes every member''s tier on the ladder''s rolling window at as_of: upgrades at once, downgrades after the grace (one level, or straight down with downgrade=drop), floors respected; returns a summary';

CREATE FUNCTION @extschema@.set_tier_floor(program text, member_id text, tier text, "until" timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    floor_level integer;
    current_level integer;
    m loyalty.member;
BEGIN
    IF p.tier_ladder IS NULL THEN
        RAISE EXCEPTION 'program "%" has no tier ladder', program
            USING ERRCODE = '55000', HINT = 'Set one with loyalty.set_tier_ladder().';
    END IF;
    IF member_id IS NULL OR tier IS NULL OR "until" IS NULL THEN
        RAISE EXCEPTION 'member_id, tier and until must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT l.level INTO floor_level FROM loyalty.tier_levels(p.tier_ladder) l WHERE l.tier = set_tier_floor.tier;
    IF floor_level IS NULL THEN
        RAISE EXCEPTION 'tier "%" is not a level of program "%"', tier, program
            USING ERRCODE = '22023',
                  HINT = pg_catalog.format('Levels: %s.', (SELECT string_agg(l.tier, ', ' ORDER BY l.level)
                                                          FROM loyalty.tier_levels(p.tier_ladder) l));
    END IF;
    PERFORM loyalty.enroll(program, member_id);
    SELECT * INTO m FROM loyalty.member x
     WHERE x.program = set_tier_floor.program AND x.member_id = set_tier_floor.member_id FOR UPDATE;
    SELECT coalesce((SELECT l.level FROM loyalty.tier_levels(p.tier_ladder) l WHERE l.tier = m.tier), 1)
      INTO current_level;
    UPDATE loyalty.member x SET tier_floor = set_tier_floor.tier, tier_floor_until = set_tier_floor."until"
     WHERE x.program = set_tier_floor.program AND x.member_id = set_tier_floor.member_id;
    IF floor_level > current_level AND "until" > now() THEN
        UPDATE loyalty.member x SET tier = set_tier_floor.tier, tier_since = now(), tier_below_since = NULL
         WHERE x.program = set_tier_floor.program AND x.member_id = set_tier_floor.member_id;
        INSERT INTO loyalty.tier_history (program, member_id, from_tier, to_tier, reason, changed_at)
        VALUES (program, member_id, m.tier, tier, 'floor', now());
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.set_tier_floor(text, text, text, timestamptz) IS
    'Guarantees a member at least a tier until a time (support override); raises the member to it now if below';

CREATE VIEW @extschema@.tier_distribution AS
    SELECT m.program, coalesce(m.tier, l.tier) AS tier, l.level, count(*) AS members,
           round(count(*) / sum(count(*)) OVER (PARTITION BY m.program), 4) AS member_share
      FROM @extschema@.member m
      JOIN @extschema@.program p ON p.code = m.program AND p.tier_ladder IS NOT NULL
      JOIN LATERAL @extschema@.tier_levels(p.tier_ladder) l ON l.tier = coalesce(m.tier, (SELECT f.tier FROM @extschema@.tier_levels(p.tier_ladder) f WHERE f.level = 1))
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = m.program AND x.member_id = m.member_id)
     GROUP BY m.program, coalesce(m.tier, l.tier), l.level;
COMMENT ON VIEW @extschema@.tier_distribution IS 'Members per tier of each program with a ladder (members without a tier count in the first level; excluded members left out)';
COMMENT ON COLUMN @extschema@.tier_distribution.program IS 'Program code';
COMMENT ON COLUMN @extschema@.tier_distribution.tier IS 'Level name';
COMMENT ON COLUMN @extschema@.tier_distribution.level IS 'Level number, 1 the lowest';
COMMENT ON COLUMN @extschema@.tier_distribution.members IS 'Members holding the tier';
COMMENT ON COLUMN @extschema@.tier_distribution.member_share IS 'Share of the program''s members, 0 to 1';

-- For very large programs: recalculation in chunks of members, each committed.
CREATE FUNCTION @extschema@.recalculate_tiers_chunk(program text, as_of timestamptz, after_member text,
                                                   max_members integer,
                                                   OUT last_member text, OUT members bigint, OUT upgraded bigint,
                                                   OUT downgraded bigint, OUT grace_started bigint,
                                                   OUT unchanged bigint)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_recalculate_tiers_chunk';
COMMENT ON FUNCTION @extschema@.recalculate_tiers_chunk(text, timestamptz, text, integer) IS
    'recalculate_tiers for at most max_members members after after_member (in member id order; NULL: from the start); returns the last member done and the counts';

-- A procedure that commits can be neither SECURITY DEFINER nor carry a SET
-- clause: it runs as the caller, names everything in full.
CREATE PROCEDURE @extschema@.recalculate_tiers_batched(program text, as_of timestamptz DEFAULT now(),
                                                      chunk_members integer DEFAULT 10000)
LANGUAGE plpgsql
AS $$
DECLARE
    chunk record;
    after pg_catalog.text;
    done bigint := 0;
    up bigint := 0;
    down bigint := 0;
    run bigint := loyalty.job_run_begin('recalculate_tiers_batched', program);  -- loyalty.health
BEGIN
    LOOP
        SELECT * INTO chunk FROM loyalty.recalculate_tiers_chunk(program, as_of, after, chunk_members);
        EXIT WHEN chunk.members = 0;
        after := chunk.last_member;
        done := done + chunk.members;
        up := up + chunk.upgraded;
        down := down + chunk.downgraded;
        RAISE NOTICE 'loyalty: recalculate_tiers %: % members done, % upgraded, % downgraded',
            program, done, up, down;
        COMMIT;
    END LOOP;
    PERFORM loyalty.job_run_end(run, done, pg_catalog.format('as_of %s: %s members, %s upgraded, %s downgraded',
                                                            as_of, done, up, down));
END
$$;
COMMENT ON PROCEDURE @extschema@.recalculate_tiers_batched(text, timestamptz, integer) IS
    'Runs loyalty.recalculate_tiers in chunks of chunk_members members, committing after each, with a NOTICE of progress; the run is recorded in loyalty.job_run';

-- verify() recounts the tier basis over the ladder's window.
CREATE OR REPLACE FUNCTION @extschema@.basis_window_days(program text) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce((SELECT o.window_days FROM loyalty.program p
                      CROSS JOIN LATERAL loyalty.tier_ladder_options(p.tier_ladder) o
                      WHERE p.code OPERATOR(pg_catalog.=) basis_window_days.program), 365)
$$;
