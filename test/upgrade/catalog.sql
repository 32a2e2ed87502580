-- The catalog of the loyalty extension as lines "kind | object | detail",
-- one fact a line, sorted: run in two databases and compare the outputs
-- (test/upgrade/run.sh).  Every object is named by pg_identify_object, so
-- a difference names the object.  Sequence values, statistics and other
-- data-dependent facts are left out.  Column positions are reported apart
-- ("column order"): ALTER TABLE ADD COLUMN appends, so an updated table may
-- list its columns in another order than a fresh one.
\set QUIET on
\pset format unaligned
\pset tuples_only on
\pset footer off
SET search_path = pg_catalog;

WITH ext AS (
    SELECT oid FROM pg_extension WHERE extname = 'loyalty'
), member AS (
    SELECT d.classid, d.objid, d.objsubid,
           i.type, i.identity
    FROM pg_depend d, ext,
         LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) i
    WHERE d.refclassid = 'pg_extension'::regclass
      AND d.refobjid = ext.oid AND d.deptype = 'e'
), rel AS (
    SELECT c.oid, m.identity
    FROM member m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
), fn AS (
    SELECT m.identity, p.*
    FROM member m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
), acl AS (
    -- One line per (object, grantee, privilege): aclitem order is no fact.
    SELECT m.type, m.identity, a.grantee, a.privilege_type, a.is_grantable, a.grantor
    FROM member m
    CROSS JOIN LATERAL (
        -- A NULL acl means the defaults (PUBLIC may execute a function).
        SELECT coalesce(relacl, acldefault((CASE WHEN relkind = 'S' THEN 's' ELSE 'r' END)::"char", relowner)) AS acl
        FROM pg_class WHERE m.classid = 'pg_class'::regclass AND oid = m.objid
        UNION ALL SELECT coalesce(proacl, acldefault('f', proowner)) FROM pg_proc WHERE m.classid = 'pg_proc'::regclass AND oid = m.objid
        UNION ALL SELECT coalesce(typacl, acldefault('T', typowner)) FROM pg_type WHERE m.classid = 'pg_type'::regclass AND oid = m.objid
        UNION ALL SELECT coalesce(nspacl, acldefault('n', nspowner)) FROM pg_namespace WHERE m.classid = 'pg_namespace'::regclass AND oid = m.objid
    ) o
    CROSS JOIN LATERAL aclexplode(o.acl) a
    UNION ALL
    SELECT 'column', r.identity || '.' || quote_ident(att.attname), a.grantee, a.privilege_type, a.is_grantable, a.grantor
    FROM rel r JOIN pg_attribute att ON att.attrelid = r.oid AND att.attnum > 0 AND NOT att.attisdropped
    CROSS JOIN LATERAL aclexplode(att.attacl) a
    UNION ALL
    SELECT 'schema', quote_ident(n.nspname), a.grantee, a.privilege_type, a.is_grantable, a.grantor
    FROM pg_namespace n CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
    WHERE n.nspname = 'loyalty'
), fact(kind, object, detail) AS (
    -- Every member of the extension.
    SELECT 'member', type || ' ' || identity, '' FROM member
    -- Objects in the schema that are not members (made at run time or forgotten).
    UNION ALL
    SELECT 'not a member', i.type || ' ' || i.identity, ''
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
         LATERAL pg_identify_object('pg_class'::regclass, c.oid, 0) i
    WHERE n.nspname = 'loyalty' AND c.relkind IN ('r', 'v', 'm', 'S', 'f', 'p')
      AND NOT EXISTS (SELECT 1 FROM member m WHERE m.classid = 'pg_class'::regclass AND m.objid = c.oid)
    UNION ALL
    SELECT 'not a member', i.type || ' ' || i.identity, ''
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
         LATERAL pg_identify_object('pg_proc'::regclass, p.oid, 0) i
    WHERE n.nspname = 'loyalty'
      AND NOT EXISTS (SELECT 1 FROM member m WHERE m.classid = 'pg_proc'::regclass AND m.objid = p.oid)
    -- Relations.
    UNION ALL
    SELECT 'relation', r.identity,
           format('kind=%s persistence=%s owner=%s rls=%s force_rls=%s options=%s partkey=%s parent=%s',
                  c.relkind, c.relpersistence, c.relowner::regrole, c.relrowsecurity, c.relforcerowsecurity,
                  c.reloptions, pg_get_partkeydef(c.oid),
                  (SELECT string_agg(inhparent::regclass::text, ',' ORDER BY inhseqno) FROM pg_inherits WHERE inhrelid = c.oid))
    FROM rel r JOIN pg_class c ON c.oid = r.oid
    UNION ALL
    SELECT 'column', r.identity || '.' || quote_ident(a.attname),
           format('type=%s notnull=%s default=%s collation=%s identity=%s generated=%s',
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(ad.adbin, ad.adrelid),
                  CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,
                  nullif(a.attidentity, ''), nullif(a.attgenerated, ''))
    FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'column order', r.identity,
           (SELECT string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum)
            FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped)
    FROM rel r
    UNION ALL
    SELECT 'view', r.identity, md5(pg_get_viewdef(r.oid))
    FROM rel r JOIN pg_class c ON c.oid = r.oid WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'sequence', r.identity,
           format('type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s owned_by=%s',
                  s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                  (SELECT d.refobjid::regclass || '.' || d.refobjsubid FROM pg_depend d
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
    FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid
    UNION ALL
    SELECT 'constraint', r.identity || ' ' || quote_ident(k.conname),
           format('%s deferrable=%s deferred=%s validated=%s', pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred, k.convalidated)
    FROM rel r JOIN pg_constraint k ON k.conrelid = r.oid
    UNION ALL
    SELECT 'index', r.identity || ' ' || quote_ident(ic.relname),
           format('%s clustered=%s', pg_get_indexdef(x.indexrelid), x.indisclustered)
    FROM rel r JOIN pg_index x ON x.indrelid = r.oid JOIN pg_class ic ON ic.oid = x.indexrelid
    UNION ALL
    SELECT 'trigger', r.identity || ' ' || quote_ident(t.tgname),
           format('%s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
    FROM rel r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'policy', r.identity || ' ' || quote_ident(p.polname),
           format('cmd=%s permissive=%s roles=%s using=%s check=%s', p.polcmd, p.polpermissive,
                  (SELECT string_agg(CASE WHEN x = 0 THEN 'public' ELSE x::regrole::text END, ',' ORDER BY 1)
                   FROM unnest(p.polroles) x),
                  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM rel r JOIN pg_policy p ON p.polrelid = r.oid
    -- Routines: attributes on one line, the body as a hash (the test prints
    -- the two definitions of a routine whose body differs).
    UNION ALL
    SELECT 'routine', f.identity,
           format('kind=%s lang=%s returns=%s args=%s volatility=%s strict=%s security_definer=%s parallel=%s leakproof=%s cost=%s rows=%s config=%s owner=%s',
                  f.prokind, (SELECT lanname FROM pg_language WHERE oid = f.prolang),
                  CASE WHEN f.prokind <> 'p' THEN pg_get_function_result(f.oid) END,
                  pg_get_function_arguments(f.oid), f.provolatile, f.proisstrict, f.prosecdef,
                  f.proparallel, f.proleakproof, f.procost, f.prorows, f.proconfig, f.proowner::regrole)
    FROM fn f
    UNION ALL
    SELECT 'routine body', f.identity, md5(coalesce(f.prosrc, '') || '|' || coalesce(f.probin, '') || '|' || coalesce(pg_get_function_sqlbody(f.oid), ''))
    FROM fn f
    UNION ALL
    SELECT 'aggregate', f.identity,
           format('sfunc=%s stype=%s final=%s combine=%s init=%s', a.aggtransfn, a.aggtranstype::regtype,
                  a.aggfinalfn, a.aggcombinefn, a.agginitval)
    FROM fn f JOIN pg_aggregate a ON a.aggfnoid = f.oid
    -- Types.
    UNION ALL
    SELECT 'type', m.identity,
           format('typtype=%s owner=%s input=%s output=%s receive=%s send=%s len=%s byval=%s align=%s storage=%s category=%s basetype=%s notnull=%s default=%s',
                  t.typtype, t.typowner::regrole, t.typinput, t.typoutput, t.typreceive, t.typsend,
                  t.typlen, t.typbyval, t.typalign, t.typstorage, t.typcategory,
                  CASE WHEN t.typbasetype <> 0 THEN format_type(t.typbasetype, t.typtypmod) END,
                  t.typnotnull, t.typdefault)
    FROM member m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
    UNION ALL
    SELECT 'enum labels', m.identity,
           (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = m.objid)
    FROM member m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid AND t.typtype = 'e'
    UNION ALL
    SELECT 'constraint', m.identity || ' ' || quote_ident(k.conname), pg_get_constraintdef(k.oid)
    FROM member m JOIN pg_constraint k ON m.classid = 'pg_type'::regclass AND k.contypid = m.objid
    -- Operators, operator classes and families.
    UNION ALL
    SELECT 'operator', m.identity,
           format('code=%s commutator=%s negator=%s restrict=%s join=%s hashes=%s merges=%s',
                  o.oprcode, o.oprcom::regoperator, o.oprnegate::regoperator, o.oprrest, o.oprjoin, o.oprcanhash, o.oprcanmerge)
    FROM member m JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid
    UNION ALL
    SELECT 'operator class', m.identity,
           format('default=%s family=%s', oc.opcdefault, (SELECT opfname FROM pg_opfamily WHERE oid = oc.opcfamily))
    FROM member m JOIN pg_opclass oc ON m.classid = 'pg_opclass'::regclass AND oc.oid = m.objid
    UNION ALL
    SELECT 'operator family member', m.identity,
           (SELECT string_agg(x, '; ' ORDER BY x) FROM (
                SELECT format('op %s %s', ao.amopstrategy, ao.amopopr::regoperator) FROM pg_amop ao WHERE ao.amopfamily = f.oid
                UNION ALL
                SELECT format('proc %s %s', ap.amprocnum, ap.amproc::regprocedure) FROM pg_amproc ap WHERE ap.amprocfamily = f.oid
            ) s(x))
    FROM member m JOIN pg_opfamily f ON m.classid = 'pg_opfamily'::regclass AND f.oid = m.objid
    UNION ALL
    SELECT 'event trigger', m.identity,
           format('event=%s function=%s enabled=%s tags=%s', e.evtevent, e.evtfoid::regprocedure, e.evtenabled, e.evttags)
    FROM member m JOIN pg_event_trigger e ON m.classid = 'pg_event_trigger'::regclass AND e.oid = m.objid
    -- Grants.
    UNION ALL
    SELECT 'grant', type || ' ' || identity,
           format('%s %s%s', CASE WHEN grantee = 0 THEN 'public' ELSE grantee::regrole::text END,
                  privilege_type, CASE WHEN is_grantable THEN ' with grant option' ELSE '' END)
    FROM acl
    -- Comments of the members and of what hangs on them (columns,
    -- constraints, triggers, policies, indexes).
    UNION ALL
    SELECT 'comment', i.type || ' ' || i.identity, replace(d.description, E'\n', '\n')
    FROM pg_description d,
         LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) i
    WHERE EXISTS (SELECT 1 FROM member m WHERE m.classid = d.classoid AND m.objid = d.objoid)
       OR (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT oid FROM rel))
       OR i.schema = 'loyalty'
    -- What pg_dump dumps of the configuration tables.
    UNION ALL
    SELECT 'config dump', c.oid::regclass::text, coalesce(x.cond, '')
    FROM pg_extension e
    CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) x(tab, cond)
    JOIN pg_class c ON c.oid = x.tab
    WHERE e.extname = 'loyalty'
    -- The triggers attach_orders() put on the application's tables (run.sh
    -- attaches the same tables in the fresh database).
    UNION ALL
    SELECT 'attached table trigger', t.tgrelid::regclass::text || ' ' || quote_ident(t.tgname),
           format('%s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
    FROM pg_trigger t
    WHERE NOT t.tgisinternal
      AND t.tgfoid IN (SELECT f.oid FROM fn f)
      AND t.tgrelid NOT IN (SELECT r.oid FROM rel r)
    UNION ALL
    SELECT 'extension', extname, format('version=%s schema=%s relocatable=%s owner=%s', extversion, extnamespace::regnamespace, extrelocatable, extowner::regrole)
    FROM pg_extension WHERE extname = 'loyalty'
)
SELECT line FROM (SELECT kind || ' | ' || object || ' | ' || coalesce(detail, '') AS line FROM fact) l
ORDER BY line COLLATE "C";
