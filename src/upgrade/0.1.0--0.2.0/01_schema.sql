-- 0.1.0 -> 0.2.0, what changed in src/sql/00_schema.sql since 0.1.0: new objects created, changed functions and views replaced, tables altered.


-- The roles exist since 0.1.0 (CREATE EXTENSION made them or reused them).
-- 0.2.0 reuses a loyalty role only when it is plain (00_schema.sql says
-- why); the update holds existing roles to the same rule, and makes a role
-- dropped since.  The grants follow in 59_privileges.sql.
DO $roles$
DECLARE
    r pg_catalog.text;
    extra pg_catalog.text;
BEGIN
    FOREACH r IN ARRAY ARRAY['loyalty_admin', 'loyalty_app', 'loyalty_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
            CONTINUE;
        END IF;
        SELECT pg_catalog.concat_ws(', ',
                   CASE WHEN a.rolsuper THEN 'SUPERUSER' END, CASE WHEN a.rolcreaterole THEN 'CREATEROLE' END,
                   CASE WHEN a.rolcreatedb THEN 'CREATEDB' END, CASE WHEN a.rolreplication THEN 'REPLICATION' END,
                   CASE WHEN a.rolbypassrls THEN 'BYPASSRLS' END)
          INTO extra
          FROM pg_catalog.pg_roles a WHERE a.rolname OPERATOR(pg_catalog.=) r;
        IF extra OPERATOR(pg_catalog.<>) '' THEN
            RAISE EXCEPTION 'role "%" exists with %', r, extra
                USING ERRCODE = '55000',
                      DETAIL = 'loyalty 0.2.0 keeps a loyalty role only when it has no attribute beyond LOGIN: its members would hold these too.',
                      HINT = pg_catalog.format('ALTER ROLE %I NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS, then ALTER EXTENSION loyalty UPDATE again.', r);
        END IF;
    END LOOP;
END
$roles$;

-- 0.2.0 refuses infinite rates (the checks below): a 0.1.0 database could
-- hold one.  Stop with the rows to fix rather than fail on a bare check.
DO $finite$
DECLARE
    bad pg_catalog.text;
BEGIN
    SELECT pg_catalog.string_agg(x, '; ') INTO bad FROM (
        SELECT pg_catalog.format('program %s: earn_rate %s', p.code, p.earn_rate) AS x
          FROM @extschema@.program p WHERE p.earn_rate OPERATOR(pg_catalog.>=) 'Infinity'
        UNION ALL
        SELECT pg_catalog.format('program %s: point_value %s', p.code, p.point_value)
          FROM @extschema@.program p WHERE p.point_value OPERATOR(pg_catalog.>=) 'Infinity'
        UNION ALL
        SELECT pg_catalog.format('fx_rate %s to %s from %s: %s', r.from_currency, r.to_currency, r.valid_from, r.rate)
          FROM @extschema@.fx_rate r WHERE r.rate OPERATOR(pg_catalog.>=) 'Infinity') f;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'loyalty 0.2.0 refuses infinite rates: %', bad
            USING ERRCODE = '22023',
                  HINT = 'Set finite values (UPDATE loyalty.program / loyalty.fx_rate), then ALTER EXTENSION loyalty UPDATE again.';
    END IF;
END
$finite$;


-- The business rules every part reads the same way.  SQL, views and the
-- statements the C code runs call these functions instead of repeating the
-- rule (they are inlined by the planner, so indexes still serve them).
CREATE OR REPLACE FUNCTION @extschema@.program_code_valid(code text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN code OPERATOR(pg_catalog.~) '^[A-Za-z0-9_.-]{1,63}$';

COMMENT ON FUNCTION @extschema@.program_code_valid(text) IS
    'Whether a text is a valid program code: 1 to 63 letters, digits, "_", "." or "-"';

CREATE OR REPLACE FUNCTION @extschema@.lot_spendable(available_at timestamptz, expires_at timestamptz,
                                          as_of timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN available_at OPERATOR(pg_catalog.<=) as_of
   AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) as_of);

COMMENT ON FUNCTION @extschema@.lot_spendable(timestamptz, timestamptz, timestamptz) IS
    'Whether a lot''s points may be spent at as_of: its pending time is over and it has not expired';

CREATE OR REPLACE FUNCTION @extschema@.lot_pending(available_at timestamptz, expires_at timestamptz,
                                        as_of timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN available_at OPERATOR(pg_catalog.>) as_of
   AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) as_of);

COMMENT ON FUNCTION @extschema@.lot_pending(timestamptz, timestamptz, timestamptz) IS
    'Whether a lot''s points are still pending at as_of (not spendable yet, not expired)';

CREATE OR REPLACE FUNCTION @extschema@.lot_expired(expires_at timestamptz, as_of timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN expires_at OPERATOR(pg_catalog.<=) as_of;

COMMENT ON FUNCTION @extschema@.lot_expired(timestamptz, timestamptz) IS
    'Whether a lot has expired at as_of (a lot without expiry never does)';

CREATE OR REPLACE FUNCTION @extschema@.ledger_kind_class(kind @extschema@.ledger_kind) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE kind WHEN 'earn' THEN 'earned' WHEN 'adjust' THEN 'earned'
                 WHEN 'redeem' THEN 'redeemed' WHEN 'unredeem' THEN 'redeemed'
                 WHEN 'reverse' THEN 'reversed' WHEN 'expire' THEN 'expired' END;

COMMENT ON FUNCTION @extschema@.ledger_kind_class(@extschema@.ledger_kind) IS
    'The lifetime figure a ledger kind counts in: earned (earn, adjust), redeemed (redeem, unredeem), reversed, expired';


-- A program: the code check calls program_code_valid; rates must be finite;
-- the statuses that close an order are per program.  Programs of 0.1.0 keep
-- the statuses 0.1.0 closed orders on (it did not know 'chargeback'): an
-- update changes no program's behaviour; set_closing_statuses adds it.
ALTER TABLE @extschema@.program
    DROP CONSTRAINT program_code_check,
    ADD CONSTRAINT program_code_check CHECK (@extschema@.program_code_valid(code)),
    DROP CONSTRAINT program_earn_rate_check,
    ADD CONSTRAINT program_earn_rate_check CHECK (earn_rate >= 0 AND earn_rate < 'Infinity'),
    ADD COLUMN closing_statuses text[] NOT NULL DEFAULT '{canceled,cancelled,refunded,returned}'
        CONSTRAINT program_closing_statuses_check CHECK (array_position(closing_statuses, NULL) IS NULL);
ALTER TABLE @extschema@.program
    ALTER COLUMN closing_statuses SET DEFAULT '{refunded,cancelled,canceled,returned,chargeback}';

COMMENT ON COLUMN @extschema@.program.closing_statuses IS
    'Order statuses that close an order (reverse all its points), trimmed and lower case; matched trimmed and case-insensitively';

-- Currency conversion: rates must be finite.
ALTER TABLE @extschema@.fx_rate
    DROP CONSTRAINT fx_rate_rate_check,
    ADD CONSTRAINT fx_rate_rate_check CHECK (rate > 0 AND rate < 'Infinity');
