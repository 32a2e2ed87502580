-- The installed extension (pg_regress --load-extension=loyalty creates it
-- in each test database): version, schema, and a comment on every object.
SELECT extname, extversion, extrelocatable, n.nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'loyalty';

-- The roles exist and cannot log in.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'loyalty\_%' ORDER BY 1;

-- Every table, view, sequence and function of the extension has a comment
-- (sequences owned by a column excepted): this query must return no rows.
SELECT c.relname
  FROM pg_class c
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'v', 'm')
   AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT p.oid::regprocedure
  FROM pg_proc p
 WHERE p.pronamespace = 'loyalty'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;

-- Every user-data table is kept by pg_dump, but the four activity tables:
-- restoring loyalty.order_earning fires the trigger that builds them again;
-- member_contact is hashed again from the restored profiles and key.
SELECT c.relname
  FROM pg_class c
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind = 'r'
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'loyalty')::oid[])
 ORDER BY 1;

-- Functions declare volatility honestly: the writers are volatile, the readers stable.
SELECT p.proname, p.provolatile, p.prosecdef, p.proisstrict
  FROM pg_proc p
 WHERE p.pronamespace = 'loyalty'::regnamespace
 ORDER BY 1, p.oid::regprocedure::text;

\i sql/include/sqlstate_of.sql
