-- Roles: the application role uses loyalty only through its functions;
-- the ledger and accounts are not writable by it; BI reads, admins configure.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_loyalty_app;
DROP ROLE IF EXISTS regress_loyalty_bi;
DROP ROLE IF EXISTS regress_loyalty_admin;
DROP ROLE IF EXISTS regress_loyalty_nobody;
RESET client_min_messages;
CREATE ROLE regress_loyalty_app IN ROLE loyalty_app;
CREATE ROLE regress_loyalty_bi IN ROLE loyalty_reader;
CREATE ROLE regress_loyalty_admin IN ROLE loyalty_admin;
CREATE ROLE regress_loyalty_nobody;

SELECT loyalty.create_program('perm', 'USD', 1);
CREATE TABLE perm_orders (id int, member text, amount numeric);
GRANT SELECT, INSERT, UPDATE, DELETE ON perm_orders TO regress_loyalty_app, regress_loyalty_nobody;
SELECT loyalty.attach_orders('perm', 'perm_orders', 'id', 'member', 'amount');

-- The application: inserts orders (the trigger earns for it), reads balances, redeems.
SET ROLE regress_loyalty_app;
INSERT INTO perm_orders VALUES (1, 'pat', 100);
SELECT available FROM loyalty.balance('perm', 'pat');
SELECT loyalty.redeem('perm', 'pat', 10, 'perm-r1') > 0 AS redeemed;
SELECT loyalty.enroll('perm', 'newbie');
SELECT count(*) FROM loyalty.history('perm', 'pat');
SELECT loyalty.fx_rate_at('USD', 'USD', now());
-- ... and nothing else.
INSERT INTO loyalty.ledger (program, member_id, kind, points, occurred_at) VALUES ('perm', 'pat', 'adjust', 1000, now());
UPDATE loyalty.member SET balance = 1000000 WHERE member_id = 'pat';
UPDATE loyalty.lot SET remaining = 1000000;
SELECT count(*) FROM loyalty.ledger;
SELECT loyalty.create_program('evil');
SELECT loyalty.expire_points();
SELECT loyalty.set_fx_rate('USD', 'EUR', 100);
SELECT loyalty.attach_orders('perm', 'perm_orders', 'id', 'member', 'amount');
-- Crediting points is a back-office act: earn() is the admins'.
SELECT loyalty.earn('perm', 'pat', 1000, 'perm-gift');
RESET ROLE;

-- BI: reads configuration, cannot change balances.
SET ROLE regress_loyalty_bi;
SELECT code FROM loyalty.program WHERE code = 'perm';
SELECT loyalty.redeem('perm', 'pat', 1, 'bi-r1');
SELECT count(*) FROM loyalty.member;
RESET ROLE;

-- Admin: configures and checks the books.
SET ROLE regress_loyalty_admin;
SELECT loyalty.create_program('admin_made', 'EUR');
SELECT count(*) FROM loyalty.verify() WHERE ok;
SELECT loyalty.expire_points('perm');
SELECT loyalty.earn('perm', 'pat', 5, 'perm-goodwill') > 0 AS credited;
RESET ROLE;

-- A role outside the loyalty roles can still insert orders (the insert is
-- sacred) but cannot call loyalty.
SET ROLE regress_loyalty_nobody;
INSERT INTO perm_orders VALUES (2, 'pat', 50);
SELECT * FROM loyalty.balance('perm', 'pat');
RESET ROLE;
SELECT available FROM loyalty.balance('perm', 'pat');

-- Every function callable by the application pins its search_path, and those
-- that touch balances run as the extension owner.  fx_quote and the
-- integer-member-id twins (balance(text, bigint, ...) and the others) are
-- the exception on purpose: fully qualified and without SET, so they can be
-- inlined; the twins call the text function, which runs as the owner.
SELECT p.proname, p.prosecdef, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'loyalty'::regnamespace
   AND has_function_privilege('loyalty_app', p.oid, 'EXECUTE')
   AND NOT has_function_privilege('public', p.oid, 'EXECUTE')   -- type support functions are public
 ORDER BY 1, 2;

DROP TABLE perm_orders;
DROP ROLE regress_loyalty_app, regress_loyalty_bi, regress_loyalty_admin, regress_loyalty_nobody;
