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
SET search_path = pg_catalog, @extschema@
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

REVOKE ALL ON FUNCTION @extschema@.set_tier_ladder(text, @extschema@.tier_ladder) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.set_tier_ladder(text, @extschema@.tier_ladder) TO loyalty_admin;
GRANT SELECT ON @extschema@.program_tier TO loyalty_admin, loyalty_app, loyalty_reader;
