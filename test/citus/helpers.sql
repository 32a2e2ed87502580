-- Test helpers, the same on the cluster and on the single node.
-- test_distribute: distributes an application table by its customer column,
-- colocated with loyalty's members (on the cluster only).
CREATE FUNCTION public.test_distribute(t regclass, col text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF loyalty.distributed() THEN
        EXECUTE format('SELECT create_distributed_table(%L, %L, colocate_with => %L)', t, col, 'loyalty.member');
    END IF;
END
$$;
-- test_mask: the times of the run itself (a reversal's or a redemption's
-- occurred_at is the transaction's) become "recent" in the dump.
CREATE FUNCTION public.test_mask(j jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'string'
                      AND e.value #>> '{}' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d'
                      AND (e.value #>> '{}')::timestamptz > now() - interval '1 day'
                    THEN '"recent"'::jsonb ELSE e.value END), '{}')
      FROM jsonb_each(j) e
$$;
-- test_reinstall: loyalty afresh (distributed again on the cluster), for
-- the teardown of an isolation spec, which drops the extension on one node
-- after its other statements (given).  A procedure: distribute() runs after
-- CREATE EXTENSION has committed.
CREATE PROCEDURE public.test_reinstall(before text DEFAULT '')
LANGUAGE plpgsql AS $$
DECLARE
    distributed boolean := loyalty.distributed();
BEGIN
    SET client_min_messages = warning;
    IF before <> '' THEN
        EXECUTE before;
    END IF;
    DROP EXTENSION loyalty CASCADE;
    CREATE EXTENSION loyalty;
    COMMIT;
    IF distributed THEN
        PERFORM count(*) FROM loyalty.distribute();
    END IF;
    RESET client_min_messages;
END
$$;
