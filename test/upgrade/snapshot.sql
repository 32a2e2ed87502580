-- Before the update (0.1.0): a copy of every table of 0.1.0 and of every
-- member's balance at a fixed time, in schema "before" (check.sql compares).
\set ON_ERROR_STOP on
CREATE SCHEMA before;
CREATE TABLE before.at AS SELECT now() AS at;
CREATE TABLE before.balance AS
SELECT m.program, m.member_id, b.*
  FROM loyalty.member m, before.at, loyalty.balance(m.program, m.member_id, at.at) b;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['program', 'member', 'ledger', 'lot', 'lot_use', 'order_earning', 'fx_rate',
                             'order_source', 'dead_letter', 'activity_total', 'activity_day', 'activity_before',
                             'activity_horizon', 'rfm_segment_rule', 'rfm_score', 'rfm_pass', 'tier_history'] LOOP
        EXECUTE format('CREATE TABLE before.%I AS SELECT * FROM loyalty.%I', t, t);
    END LOOP;
END
$$;
-- check.sql reads the balances as loyalty_admin.
GRANT USAGE ON SCHEMA before TO loyalty_admin, loyalty_app;
GRANT SELECT ON before.balance, before.at TO loyalty_admin;
