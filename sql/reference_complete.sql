-- docs/reference.md names every function, procedure, table, view and type
-- of the extension (the functions behind a type's input, output and
-- operators are documented with their type).  The file is read as lines,
-- from the directory pg_regress runs in (the project's root).
CREATE TEMP TABLE reference_line (line text);
\copy reference_line FROM 'docs/reference.md' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')
SELECT count(*) > 1000 AS reference_read FROM reference_line;

WITH support AS (
    SELECT typinput::oid AS fn FROM pg_type WHERE typnamespace = 'loyalty'::regnamespace
    UNION SELECT typoutput FROM pg_type WHERE typnamespace = 'loyalty'::regnamespace
    UNION SELECT typreceive FROM pg_type WHERE typnamespace = 'loyalty'::regnamespace
    UNION SELECT typsend FROM pg_type WHERE typnamespace = 'loyalty'::regnamespace
    UNION SELECT oprcode FROM pg_operator WHERE oprnamespace = 'loyalty'::regnamespace
    UNION SELECT amproc FROM pg_amproc ap JOIN pg_opfamily f ON f.oid = ap.amprocfamily
                       WHERE f.opfnamespace = 'loyalty'::regnamespace
), object AS (
    SELECT 'function' AS kind, p.proname::text AS name
      FROM pg_proc p
     WHERE p.pronamespace = 'loyalty'::regnamespace AND p.oid NOT IN (SELECT fn FROM support)
    UNION
    SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END, c.relname
      FROM pg_class c
     WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'v', 'p')
    UNION
    SELECT 'type', t.typname
      FROM pg_type t
     WHERE t.typnamespace = 'loyalty'::regnamespace AND t.typtype IN ('b', 'e', 'd') AND t.typcategory <> 'A'
)
SELECT o.kind, o.name AS undocumented
  FROM object o
 WHERE NOT EXISTS (SELECT 1 FROM reference_line r WHERE r.line ~ ('\m' || o.name || '\M'))
 ORDER BY 1, 2;
