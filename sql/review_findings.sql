-- Findings of a review as an ETL job, an attacker and a DBA: each block
-- failed before its fix.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- 1. loyalty_admin to superuser: truncated_orders() casts another attached
-- table's order id with ::pg_catalog.text, which runs a user-defined cast
-- as the extension owner (the TRUNCATE trigger is SECURITY DEFINER).
DROP ROLE IF EXISTS regress_rev_eve;
CREATE ROLE regress_rev_eve IN ROLE loyalty_admin;
GRANT CREATE ON SCHEMA public TO regress_rev_eve;
SET ROLE regress_rev_eve;
CREATE TYPE rev_id AS ENUM ('o1', 'o2');
CREATE FUNCTION rev_evil(rev_id) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'ALTER ROLE regress_rev_eve SUPERUSER';
  END IF;
  RETURN pg_catalog.format('%s', $1);
END$$;
CREATE CAST (rev_id AS text) WITH FUNCTION rev_evil(rev_id);
CREATE TABLE rev_ea (id rev_id, cust text, total numeric);
CREATE TABLE rev_eb (id bigint, cust text, total numeric);
SELECT loyalty.create_program('rev_evp', 'USD', 1);
-- attach_orders should refuse an order id of a type with user code (or
-- truncated_orders should not run it); either way eve stays unprivileged.
SELECT loyalty.attach_orders('rev_evp', 'rev_ea', 'id', 'cust', 'total') IS NOT NULL AS attached_a;
SELECT loyalty.attach_orders('rev_evp', 'rev_eb', 'id', 'cust', 'total') IS NOT NULL AS attached_b;
INSERT INTO rev_ea VALUES ('o1', 'm', 10);
INSERT INTO rev_eb VALUES (1, 'm', 10);
TRUNCATE rev_eb;
RESET ROLE;
SELECT rolsuper AS eve_is_superuser FROM pg_roles WHERE rolname = 'regress_rev_eve';
ALTER ROLE regress_rev_eve NOSUPERUSER;

-- 6. The amount column's type changed after attach_orders (to a domain
-- over numeric): orders were recorded with no amount and earned 0, with no
-- dead letter and no WARNING.  A domain is read as its base type; a type
-- loyalty cannot read at all keeps the event in the dead letters (42804).
SELECT loyalty.create_program('rev_dom', 'USD', 1);
CREATE DOMAIN rev_amount AS numeric(12, 2) CHECK (VALUE >= 0);
CREATE TABLE rev_dom_orders (id bigint PRIMARY KEY, customer text, total numeric(12, 2));
SELECT loyalty.attach_orders('rev_dom', 'rev_dom_orders', 'id', 'customer', 'total') IS NOT NULL AS attached;
ALTER TABLE rev_dom_orders ALTER COLUMN total TYPE rev_amount;
SET client_min_messages = error;
INSERT INTO rev_dom_orders VALUES (1, 'a', 20), (2, 'a', 30);
SET client_min_messages = warning;
SELECT (SELECT count(*) FROM loyalty.dead_letter WHERE program = 'rev_dom') AS letters,
       (SELECT count(*) FROM loyalty.order_earning WHERE program = 'rev_dom' AND amount IS NULL) AS recorded_without_amount;
SELECT member_id, balance FROM loyalty.member WHERE program = 'rev_dom';
ALTER TABLE rev_dom_orders ALTER COLUMN total TYPE text;
SET client_min_messages = error;
INSERT INTO rev_dom_orders VALUES (3, 'a', '40');
SET client_min_messages = warning;
SELECT order_id, sqlstate, reason FROM loyalty.dead_letter WHERE program = 'rev_dom';

-- 7. Closing statuses are stored lower-cased by SQL lower() (Unicode) but
-- compared in C with pg_strncasecmp (ASCII only): the very status the
-- admin configured, 'ANNULÉ' or 'Отменён', does not close the order.
SELECT loyalty.create_program('rev_intl', 'USD', 1, closing_statuses => ARRAY['ANNULÉ', 'Отменён']) IS NOT NULL AS created;
CREATE TABLE rev_intl_orders (id bigint PRIMARY KEY, customer text, total numeric, status text);
SELECT loyalty.attach_orders('rev_intl', 'rev_intl_orders', 'id', 'customer', 'total', status => 'status') IS NOT NULL AS attached;
INSERT INTO rev_intl_orders VALUES (1, 'a', 10, 'payé'), (2, 'a', 10, 'оплачен');
UPDATE rev_intl_orders SET status = 'ANNULÉ' WHERE id = 1;
UPDATE rev_intl_orders SET status = 'Отменён' WHERE id = 2;
SELECT order_id, closed FROM loyalty.order_earning WHERE program = 'rev_intl' ORDER BY 1;

-- 8. Two attached tables with char(n) order ids: the trigger reads an id
-- by its output function (padded), truncated_orders() compared it with a
-- cast to text (padding stripped), so a TRUNCATE of one table closed the
-- orders the other still holds.
SELECT loyalty.create_program('rev_chr', 'USD', 1) IS NOT NULL AS created;
CREATE TABLE rev_chr_a (id char(8) PRIMARY KEY, customer text, total numeric);
CREATE TABLE rev_chr_b (id char(8) PRIMARY KEY, customer text, total numeric);
SELECT loyalty.attach_orders('rev_chr', 'rev_chr_a', 'id', 'customer', 'total') IS NOT NULL AS attached_a;
SELECT loyalty.attach_orders('rev_chr', 'rev_chr_b', 'id', 'customer', 'total') IS NOT NULL AS attached_b;
INSERT INTO rev_chr_a VALUES ('A1', 'a', 10);
INSERT INTO rev_chr_b VALUES ('A1', 'a', 10);
TRUNCATE rev_chr_a;
SELECT order_id, closed FROM loyalty.order_earning WHERE program = 'rev_chr';

-- 9. A stale dead letter replayed over a later event: the INSERT waits
-- (no FX rate), so does the DELETE behind it; the order is re-loaded once
-- the rate exists and earns.  retry_dead_letters replayed the old DELETE
-- and closed the order the table holds.  An applied INSERT (one row or a
-- batch) supersedes the order's open letters, as UPDATE and DELETE do.
SELECT loyalty.create_program('rev_dl', 'USD', 1) IS NOT NULL AS created;
CREATE TABLE rev_dl_orders (id bigint PRIMARY KEY, customer text, total numeric, cur text);
SELECT loyalty.attach_orders('rev_dl', 'rev_dl_orders', 'id', 'customer', 'total', currency => 'cur') IS NOT NULL AS attached;
SET client_min_messages = error;
INSERT INTO rev_dl_orders VALUES (1, 'a', 10, 'ISK');
DELETE FROM rev_dl_orders WHERE id = 1;
SELECT loyalty.set_fx_rate('ISK', 'USD', 1);
INSERT INTO rev_dl_orders VALUES (1, 'a', 10, 'ISK');
SELECT loyalty.retry_dead_letters('rev_dl') >= 0 AS retried;
SET client_min_messages = warning;
SELECT order_id, closed FROM loyalty.order_earning WHERE program = 'rev_dl';
SELECT member_id, balance FROM loyalty.member WHERE program = 'rev_dl';
-- The same through the batch path (a multi-row INSERT).
SET client_min_messages = error;
INSERT INTO rev_dl_orders VALUES (2, 'b', 10, 'HUF');
DELETE FROM rev_dl_orders WHERE id = 2;
SELECT loyalty.set_fx_rate('HUF', 'USD', 1);
INSERT INTO rev_dl_orders VALUES (2, 'b', 10, 'HUF'), (3, 'b', 5, 'USD');
SELECT loyalty.retry_dead_letters('rev_dl') >= 0 AS retried;
SET client_min_messages = warning;
SELECT order_id, closed FROM loyalty.order_earning WHERE program = 'rev_dl' ORDER BY 1;
SELECT member_id, balance FROM loyalty.member WHERE program = 'rev_dl' ORDER BY 1;
SELECT count(*) AS open_letters FROM loyalty.dead_letter WHERE program = 'rev_dl' AND resolved_at IS NULL;

-- 10. refund_policy within_balance: a reversal that finds the points
-- spent takes back nothing, and then a new generation earned in full: a
-- one-unit price correction, or a DELETE + re-insert of an unchanged
-- order, credited the spent points again.  A new generation for the same
-- member now earns only beyond what its member kept; another member earns
-- in full (the first keeps what it spent).
SELECT loyalty.create_program('rev_wb', 'USD', 1, 0, NULL, 'within_balance', 'UTC') IS NOT NULL AS created;
CREATE TABLE rev_wb_orders (id bigint PRIMARY KEY, customer text, total numeric);
SELECT loyalty.attach_orders('rev_wb', 'rev_wb_orders', 'id', 'customer', 'total') IS NOT NULL AS attached;
INSERT INTO rev_wb_orders VALUES (1, 'a', 100), (2, 'b', 100), (3, 'c', 100);
SELECT loyalty.redeem('rev_wb', 'a', 100, 'rev-spend-a') > 0 AS spent_a;
SELECT loyalty.redeem('rev_wb', 'b', 100, 'rev-spend-b') > 0 AS spent_b;
SELECT loyalty.redeem('rev_wb', 'c', 60, 'rev-spend-c') > 0 AS spent_c;
UPDATE rev_wb_orders SET total = 101 WHERE id = 1;
BEGIN;
DELETE FROM rev_wb_orders WHERE id = 2;
INSERT INTO rev_wb_orders VALUES (2, 'b', 100);
COMMIT;
UPDATE rev_wb_orders SET customer = 'd' WHERE id = 3;   -- c spent 60: the reversal takes back 40
-- a: one order of 101, spent 100; b: one of 100, spent 100; c spent 60 of
-- an order now d's, which earns it in full.
SELECT member_id, balance, lifetime_earned - lifetime_reversed AS net_earned
  FROM loyalty.member WHERE program = 'rev_wb' ORDER BY 1;
SELECT order_id, member_id, points, generation, earned_total, reversed_total
  FROM loyalty.order_earning WHERE program = 'rev_wb' ORDER BY 1;
SELECT check_name FROM loyalty.verify('rev_wb') WHERE NOT ok;

-- 11. An order moved between two attached tables of one program, in the
-- order the docs advise for TRUNCATE (insert into the new table first):
-- the DELETE from the old table closed the order the new table holds.  A
-- DELETE, like truncated_orders(), leaves open an order another attached
-- table of the program still holds; a DELETE from the last one closes it.
SELECT loyalty.create_program('rev_move', 'USD', 1) IS NOT NULL AS created;
CREATE TABLE rev_move_current (id bigint PRIMARY KEY, customer text, total numeric);
CREATE TABLE rev_move_archive (id bigint PRIMARY KEY, customer text, total numeric);
SELECT loyalty.attach_orders('rev_move', 'rev_move_current', 'id', 'customer', 'total') IS NOT NULL AS attached_current;
SELECT loyalty.attach_orders('rev_move', 'rev_move_archive', 'id', 'customer', 'total') IS NOT NULL AS attached_archive;
INSERT INTO rev_move_current VALUES (1, 'a', 100), (2, 'a', 10);
BEGIN;
INSERT INTO rev_move_archive SELECT * FROM rev_move_current WHERE id = 1;
DELETE FROM rev_move_current WHERE id = 1;
COMMIT;
DELETE FROM rev_move_current WHERE id = 2;
SELECT order_id, closed FROM loyalty.order_earning WHERE program = 'rev_move' ORDER BY 1;
SELECT member_id, balance FROM loyalty.member WHERE program = 'rev_move';
DELETE FROM rev_move_archive WHERE id = 1;
SELECT order_id, closed FROM loyalty.order_earning WHERE program = 'rev_move' ORDER BY 1;
SELECT check_name FROM loyalty.verify('rev_move') WHERE NOT ok;

-- Clean up the roles this file made (objects first).
SELECT loyalty.detach_orders('rev_evp', 'rev_ea'), loyalty.detach_orders('rev_evp', 'rev_eb');
DROP OWNED BY regress_rev_eve CASCADE;
DROP ROLE regress_rev_eve;
