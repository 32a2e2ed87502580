-- 0.1.0 -> 0.2.0, what changed in src/sql/60_tiers.sql since 0.1.0: new objects created, changed functions and views replaced, tables altered.

CREATE OR REPLACE FUNCTION @extschema@.set_tier_ladder(program text, ladder @extschema@.tier_ladder)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    UPDATE loyalty.program p SET tier_ladder = set_tier_ladder.ladder WHERE p.code = set_tier_ladder.program;
END
$$;

-- Not STRICT: NULL arguments are errors.
CREATE OR REPLACE FUNCTION @extschema@.recalculate_tiers(program text, as_of timestamptz DEFAULT now(),
                                             OUT members bigint, OUT upgraded bigint, OUT downgraded bigint,
                                             OUT grace_started bigint, OUT unchanged bigint)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
-- JIT compiling the pass's million-row queries costs more than it saves.
SET jit = off
AS 'MODULE_PATHNAME', 'loyalty_recalculate_tiers';

CREATE OR REPLACE FUNCTION @extschema@.set_tier_floor(program text, member_id text, tier text, "until" timestamptz)
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

CREATE OR REPLACE VIEW @extschema@.tier_distribution AS
    SELECT m.program, coalesce(m.tier, l.tier) AS tier, l.level, count(*) AS members,
           round(count(*) / sum(count(*)) OVER (PARTITION BY m.program), 4) AS member_share
      FROM @extschema@.member m
      JOIN @extschema@.program p ON p.code = m.program AND p.tier_ladder IS NOT NULL
      JOIN LATERAL @extschema@.tier_levels(p.tier_ladder) l ON l.tier = coalesce(m.tier, (SELECT f.tier FROM @extschema@.tier_levels(p.tier_ladder) f WHERE f.level = 1))
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = m.program AND x.member_id = m.member_id)
     GROUP BY m.program, coalesce(m.tier, l.tier), l.level;

COMMENT ON VIEW @extschema@.tier_distribution IS 'Members per tier of each program with a ladder (members without a tier count in the first level; excluded members left out)';

-- For very large programs: recalculation in chunks of members, each committed.
CREATE OR REPLACE FUNCTION @extschema@.recalculate_tiers_chunk(program text, as_of timestamptz, after_member text,
                                                   max_members integer,
                                                   OUT last_member text, OUT members bigint, OUT upgraded bigint,
                                                   OUT downgraded bigint, OUT grace_started bigint,
                                                   OUT unchanged bigint)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_recalculate_tiers_chunk';

-- A procedure that commits can be neither SECURITY DEFINER nor carry a SET
-- clause: it runs as the caller, names everything in full.
CREATE OR REPLACE PROCEDURE @extschema@.recalculate_tiers_batched(program text, as_of timestamptz DEFAULT now(),
                                                      chunk_members integer DEFAULT 10000)
LANGUAGE plpgsql
AS $$
DECLARE
    chunk record;
    after pg_catalog.text;
    done bigint := 0;
    up bigint := 0;
    down bigint := 0;
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
END
$$;

-- verify() recounts the tier basis over the ladder's window.
CREATE OR REPLACE FUNCTION @extschema@.basis_window_days(program text) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce((SELECT o.window_days FROM loyalty.program p
                      CROSS JOIN LATERAL loyalty.tier_ladder_options(p.tier_ladder) o
                      WHERE p.code OPERATOR(pg_catalog.=) basis_window_days.program), 365)
$$;
