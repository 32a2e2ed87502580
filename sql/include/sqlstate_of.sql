-- Test helper, included by the regression files that need it (each runs
-- alone): the SQLSTATE and message a statement fails with, or 'ok'.
CREATE OR REPLACE FUNCTION public.sqlstate_of(statement text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
