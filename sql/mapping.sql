-- Mapping options of attach_orders: amounts in minor units (integer
-- cents), the time zone of a timestamp column, closing statuses per table,
-- and the warnings (rows already there; a second table of a program).
-- Attached as loyalty_admin, a member of the tables' owner role.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mapping_dba;
DROP ROLE IF EXISTS regress_mapping_app;
RESET client_min_messages;
CREATE ROLE regress_mapping_dba IN ROLE loyalty_admin;
CREATE ROLE regress_mapping_app IN ROLE loyalty_app;

SELECT loyalty.create_program('cents', 'USD', 1);
SELECT loyalty.create_program('dollars', 'USD', 1);
SELECT loyalty.set_fx_rate('JPY', 'USD', 0.0065, now());
SELECT loyalty.set_fx_rate('BHD', 'USD', 2.65, now());
SELECT loyalty.currency_minor_unit('usd') AS usd, loyalty.currency_minor_unit('JPY') AS jpy,
       loyalty.currency_minor_unit('BHD') AS bhd, loyalty.currency_minor_unit('ZZZ') AS zzz;

-- The same orders, in cents (yen for JPY, fils for BHD) and in major units.
CREATE TABLE shop_cents (id int PRIMARY KEY, customer text, total_cents bigint, currency text,
                         status text, refunded_cents integer);
CREATE TABLE shop_dollars (id int PRIMARY KEY, customer text, total numeric, currency text,
                           status text, refunded numeric);
ALTER TABLE shop_cents OWNER TO regress_mapping_dba;
ALTER TABLE shop_dollars OWNER TO regress_mapping_dba;
GRANT SELECT, INSERT, UPDATE, DELETE ON shop_cents, shop_dollars TO regress_mapping_app;

SET ROLE regress_mapping_dba;
SELECT loyalty.attach_orders('cents', 'shop_cents', 'id', 'customer', 'total_cents', 'currency', 'status',
                             'refunded_cents', amount_unit => 'minor');
SELECT loyalty.attach_orders('dollars', 'shop_dollars', 'id', 'customer', 'total', 'currency', 'status',
                             'refunded');
SELECT program, amount_unit, timestamp_timezone, closing_statuses FROM loyalty.order_source WHERE program IN ('cents', 'dollars') ORDER BY 1;
RESET ROLE;

SET ROLE regress_mapping_app;
INSERT INTO shop_cents VALUES (1, 'ann', 12999, 'USD', 'paid', 0), (2, 'ann', 5000, NULL, 'paid', 0),
                              (3, 'bob', 150000, 'JPY', 'paid', 0), (4, 'bob', 12345, 'BHD', 'paid', 0);
INSERT INTO shop_dollars VALUES (1, 'ann', 129.99, 'USD', 'paid', 0), (2, 'ann', 50.00, NULL, 'paid', 0),
                                (3, 'bob', 150000, 'JPY', 'paid', 0), (4, 'bob', 12.345, 'BHD', 'paid', 0);
-- One row at a time too (the one-row path).
INSERT INTO shop_cents VALUES (5, 'cat', 999, 'usd', 'paid', 0);
INSERT INTO shop_dollars VALUES (5, 'cat', 9.99, 'usd', 'paid', 0);
-- A refund in cents takes back the same share.
UPDATE shop_cents SET refunded_cents = 2999 WHERE id = 1;
UPDATE shop_dollars SET refunded = 29.99 WHERE id = 1;
RESET ROLE;
-- Amounts are kept in major units: both programs hold the same figures.
SELECT c.order_id, c.amount, d.amount AS dollars_amount, c.refunded_amount, c.points, d.points AS dollars_points
  FROM loyalty.order_earning c JOIN loyalty.order_earning d ON d.order_id = c.order_id AND d.program = 'dollars'
 WHERE c.program = 'cents' ORDER BY 1;
SELECT c.member_id, c.balance, d.balance AS dollars_balance, c.lifetime_reversed
  FROM loyalty.member c JOIN loyalty.member d ON d.member_id = c.member_id AND d.program = 'dollars'
 WHERE c.program = 'cents' ORDER BY 1;

-- A currency without a known minor unit cannot be read: a dead letter
-- that keeps no amount (a replay must never read cents as dollars).
SET ROLE regress_mapping_app;
INSERT INTO shop_cents VALUES (6, 'ann', 1000, 'ZZZ', 'paid', 0);
RESET ROLE;
SELECT order_id, amount, currency, reason, sqlstate FROM loyalty.dead_letter WHERE program = 'cents';

-- Bad options: clear errors, nothing attached.
CREATE TABLE shop_bad (id int, customer text, total bigint, placed_at timestamptz, placed_local timestamp);
ALTER TABLE shop_bad OWNER TO regress_mapping_dba;
SET ROLE regress_mapping_dba;
SELECT loyalty.attach_orders('cents', 'shop_bad', 'id', 'customer', 'total', amount_unit => 'cents');
SELECT loyalty.attach_orders('cents', 'shop_bad', 'id', 'customer', 'total', amount_unit => NULL);
SELECT loyalty.attach_orders('cents', 'shop_bad', 'id', 'customer', 'total', created_at => 'placed_at',
                             timestamp_timezone => 'UTC');
SELECT loyalty.attach_orders('cents', 'shop_bad', 'id', 'customer', 'total', created_at => 'placed_local',
                             timestamp_timezone => 'Mars/Olympus_Mons');
SELECT loyalty.attach_orders('cents', 'shop_bad', 'id', 'customer', 'total', timestamp_timezone => 'UTC');
SELECT loyalty.attach_orders('cents', 'shop_bad', 'id', 'customer', 'total', closing_statuses => ARRAY['void', NULL]);
SELECT loyalty.attach_orders('cents', 'shop_bad', 'id', 'customer', 'total', closing_statuses => ARRAY['  ']);
RESET ROLE;
SELECT loyalty.create_program('tokens', 'TKN', 1);
SET ROLE regress_mapping_dba;
SELECT loyalty.attach_orders('tokens', 'shop_bad', 'id', 'customer', 'total', amount_unit => 'minor');
RESET ROLE;
SELECT count(*) AS attached FROM loyalty.order_source WHERE orders = 'shop_bad'::regclass;

-- timestamp_timezone: a timestamp column holding UTC (Rails, Django) in a
-- program whose shop is in Tokyo.  Without the option it is read as Tokyo
-- time, nine hours off; with it, as UTC.  A date column reads as midnight
-- of the zone given.
SELECT loyalty.create_program('tokyo_utc', 'JPY', 1, 0, NULL, 'debt', 'Asia/Tokyo');
SELECT loyalty.create_program('tokyo_local', 'JPY', 1, 0, NULL, 'debt', 'Asia/Tokyo');
SELECT loyalty.create_program('tokyo_date', 'JPY', 1, 0, NULL, 'debt', 'Asia/Tokyo');
CREATE TABLE rails_orders (id int, customer text, total int, created_at timestamp);
CREATE TABLE local_orders (LIKE rails_orders);
CREATE TABLE dated_orders (id int, customer text, total int, created_on date);
ALTER TABLE rails_orders OWNER TO regress_mapping_dba;
ALTER TABLE local_orders OWNER TO regress_mapping_dba;
ALTER TABLE dated_orders OWNER TO regress_mapping_dba;
SET ROLE regress_mapping_dba;
SELECT loyalty.attach_orders('tokyo_utc', 'rails_orders', 'id', 'customer', 'total', created_at => 'created_at',
                             timestamp_timezone => 'UTC');
SELECT loyalty.attach_orders('tokyo_local', 'local_orders', 'id', 'customer', 'total', created_at => 'created_at');
SELECT loyalty.attach_orders('tokyo_date', 'dated_orders', 'id', 'customer', 'total', created_at => 'created_on',
                             timestamp_timezone => 'America/New_York');
INSERT INTO rails_orders VALUES (1, 'kei', 1000, '2024-05-01 12:00:00');
INSERT INTO local_orders VALUES (1, 'kei', 1000, '2024-05-01 12:00:00');
INSERT INTO dated_orders VALUES (1, 'kei', 1000, '2024-05-01');
RESET ROLE;
SELECT program, ordered_at FROM loyalty.order_earning WHERE program LIKE 'tokyo%' ORDER BY 1;

-- Closing statuses per table: the program's for one table, the table's
-- own for another (trimmed, lower case, each once).
SELECT loyalty.create_program('two', 'USD', 1);
CREATE TABLE web_orders (id text, customer text, total numeric, status text);
CREATE TABLE pos_orders (LIKE web_orders);
ALTER TABLE web_orders OWNER TO regress_mapping_dba;
ALTER TABLE pos_orders OWNER TO regress_mapping_dba;
GRANT SELECT, INSERT, UPDATE, DELETE ON web_orders, pos_orders TO regress_mapping_app;
INSERT INTO pos_orders VALUES ('pos-0', 'dan', 10, 'paid'), ('pos-00', 'dan', 10, ' VOIDED');
SET ROLE regress_mapping_dba;
SELECT loyalty.attach_orders('two', 'web_orders', 'id', 'customer', 'total', status => 'status');
-- Rows already there, and a second table of the program: two WARNINGs.
SELECT loyalty.attach_orders('two', 'pos_orders', 'id', 'customer', 'total', status => 'status',
                             closing_statuses => ARRAY[' VOIDED ', 'voided', 'Returned']);
SELECT orders, closing_statuses FROM loyalty.order_source WHERE program = 'two' ORDER BY 1;
RESET ROLE;
SET ROLE regress_mapping_app;
INSERT INTO web_orders VALUES ('web-1', 'dan', 100, 'paid'), ('web-2', 'dan', 100, 'paid');
INSERT INTO pos_orders VALUES ('pos-1', 'dan', 100, 'paid'), ('pos-2', 'dan', 100, 'paid');
-- 'cancelled' closes a web order (the program's list), not a POS one;
-- 'Voided' closes a POS order, not a web one.
UPDATE web_orders SET status = 'cancelled' WHERE id = 'web-1';
UPDATE pos_orders SET status = 'cancelled' WHERE id = 'pos-1';
UPDATE web_orders SET status = 'Voided' WHERE id = 'web-2';
UPDATE pos_orders SET status = 'Voided' WHERE id = 'pos-2';
RESET ROLE;
SELECT order_id, points, closed FROM loyalty.order_earning WHERE program = 'two' ORDER BY 1;

-- The back-fill reads through the same mapping: of the POS rows there
-- before attaching, the paid one earns and the voided one is closed.
SET ROLE regress_mapping_dba;
SET client_min_messages = warning;
CALL loyalty.backfill_orders('two', 'pos_orders');
RESET client_min_messages;
RESET ROLE;
SELECT order_id, points, closed FROM loyalty.order_earning WHERE program = 'two' AND order_id IN ('pos-0', 'pos-00') ORDER BY 1;

-- A partitioned table in cents: rows inserted through the parent land in
-- partitions, which read through the parent's mapping.
SELECT loyalty.create_program('parts', 'USD', 1);
CREATE TABLE map_part_orders (id int, customer text, total_cents int, region text) PARTITION BY LIST (region);
CREATE TABLE map_part_orders_eu PARTITION OF map_part_orders FOR VALUES IN ('eu');
CREATE TABLE map_part_orders_us PARTITION OF map_part_orders FOR VALUES IN ('us');
SET client_min_messages = warning;
SELECT loyalty.attach_orders('parts', 'map_part_orders', 'id', 'customer', 'total_cents', amount_unit => 'minor');
RESET client_min_messages;
INSERT INTO map_part_orders VALUES (1, 'eve', 2550, 'eu'), (2, 'eve', 1000, 'us');
INSERT INTO map_part_orders_us VALUES (3, 'eve', 499, 'us');
SELECT order_id, amount, points FROM loyalty.order_earning WHERE program = 'parts' ORDER BY 1;

-- The application cannot change a mapping.
SET ROLE regress_mapping_app;
UPDATE loyalty.order_source SET amount_unit = 'major';
SELECT loyalty.attach_orders('two', 'web_orders', 'id', 'customer', 'total', amount_unit => 'minor');
RESET ROLE;
SELECT check_name FROM loyalty.verify() WHERE NOT ok;
