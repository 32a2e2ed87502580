-- 0.1.0 -> 0.2.0, src/sql/05_caller.sql is new in 0.2.0: its objects as a fresh install makes them.

-- Who called a SECURITY DEFINER function, and what that caller may do
-- (caller.c).  Inside such a function current_user is the extension owner
-- and session_user ignores SET ROLE: these read the role the session acts
-- as.  Not granted to anyone: the extension's functions call them as owner.

CREATE OR REPLACE FUNCTION @extschema@.calling_role() RETURNS regrole
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'loyalty_calling_role';

COMMENT ON FUNCTION @extschema@.calling_role() IS
    'The role the session acts as (the login, or the role of SET ROLE), also inside SECURITY DEFINER functions';

-- Not STRICT: a NULL as_of is an error.  Volatile: it reads the clock.
CREATE OR REPLACE FUNCTION @extschema@.check_as_of(as_of timestamptz) RETURNS timestamptz
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'loyalty_check_as_of';

COMMENT ON FUNCTION @extschema@.check_as_of(timestamptz) IS
    'Returns as_of, or raises LY007 when it is more than 5 seconds ahead of the clock and the caller is not a member of loyalty_admin';

-- Raises 42501 unless the caller has the privileges of the table's owner
-- (is the owner, or an inheriting member of the owner role).
CREATE OR REPLACE FUNCTION @extschema@.require_table_owner(orders regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    owner pg_catalog.oid;
BEGIN
    IF orders IS NULL THEN
        RAISE EXCEPTION 'orders table must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT c.relowner INTO owner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) orders;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', orders::pg_catalog.oid USING ERRCODE = '42P01';
    END IF;
    IF NOT pg_catalog.pg_has_role(@extschema@.calling_role(), owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', orders
            USING ERRCODE = '42501',
                  DETAIL = pg_catalog.format('Role %s does not have the privileges of %s, the owner.',
                                             @extschema@.calling_role(), owner::pg_catalog.regrole),
                  HINT = 'Attach a table as its owner, or as a member of the role that owns it.';
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.require_table_owner(regclass) IS
    'Raises 42501 unless the calling role has the privileges of the table''s owner';
