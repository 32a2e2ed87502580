-- A program's terms over time: what an order earns and how its points live
-- and are taken back is decided by the terms in force at its ordered_at.
-- create_program writes the first terms (effective from -infinity);
-- change_program (12_program_admin.sql) adds terms from a date on.  The
-- program row's columns show the newest terms (the latest effective_from).
CREATE TABLE @extschema@.program_terms (
    program         text NOT NULL REFERENCES @extschema@.program (code) ON DELETE CASCADE,
    effective_from  timestamptz NOT NULL,
    earn_rate       numeric NOT NULL CHECK (earn_rate >= 0 AND earn_rate < 'Infinity'),
    pending_days    integer NOT NULL CHECK (pending_days >= 0),
    expire_after    interval CHECK (expire_after > interval '0'),
    refund_policy   text NOT NULL CHECK (refund_policy IN ('debt', 'within_balance')),
    timezone        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program, effective_from),
    CONSTRAINT program_terms_effective_finite CHECK (effective_from < 'infinity')
);
COMMENT ON TABLE @extschema@.program_terms IS
    'A program''s terms from effective_from on (the first from -infinity): orders are priced, made pending, given their expiry and refunded by the terms of their ordered_at';
COMMENT ON COLUMN @extschema@.program_terms.effective_from IS
    'The terms apply to orders (and credits) from this time on, until the next row''s effective_from';
COMMENT ON COLUMN @extschema@.program_terms.timezone IS
    'The program''s time zone from this row on (a time zone change applies from the moment it is made: see change_program)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.program_terms', '');
CREATE TRIGGER program_terms_cache_invalidation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.program_terms FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_program_cache();

-- The terms in force at a time; no row when the program does not exist
-- (or at is NULL).  Plain SQL (the primary key's index finds the row).
CREATE FUNCTION @extschema@.program_terms_at(program text, at timestamptz)
RETURNS @extschema@.program_terms
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT t.* FROM @extschema@.program_terms t
     WHERE t.program OPERATOR(pg_catalog.=) program_terms_at.program
       AND t.effective_from OPERATOR(pg_catalog.<=) program_terms_at.at
     ORDER BY t.effective_from DESC LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.program_terms_at(text, timestamptz) IS
    'The program''s terms in force at a time (the row with the latest effective_from not after it); NULL when the program does not exist';
