-- Fraud signals: normal forms, keyed hashes, the signal trigger of
-- attach_orders (plain and partitioned tables, dropped columns, COPY),
-- member contacts from the profile, key rotation and purging.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

-- 1. Normal forms.  Email: case, blanks, googlemail, +tags where the
-- provider ignores them, gmail's dots; other providers keep both.
SELECT v, loyalty.normalize_signal('email', v) AS normal
  FROM unnest(ARRAY['John.Doe@Gmail.com', ' johndoe+shop@gmail.com ', 'j.o.h.n.d.o.e@googlemail.com',
                    'JOHN.DOE+a+b@GOOGLEMAIL.COM', 'john.doe+news@outlook.com', 'John.Doe+news@Yahoo.com',
                    'john.doe@example.com', 'no-at-sign', 'x+y@icloud.com', '+@gmail.com', '   ']) AS v;
-- Phone: digits, a leading + kept; nothing else.
SELECT v, loyalty.normalize_signal('phone', v) AS normal
  FROM unnest(ARRAY['+84 (90) 123-4567', '0084 90 123 4567', '090.123.4567', ' +65 8123 4567 ', 'n/a', '+']) AS v;
-- Countries upper case; addresses lower, punctuation dropped, blanks collapsed.
SELECT loyalty.normalize_signal('billing_country', ' vn ') AS country,
       loyalty.normalize_signal('ip_country', 'Sg') AS ip_country,
       loyalty.normalize_signal('shipping_address', E'  12  Nguyễn Huệ St.,\tDist. 1 ') AS address,
       loyalty.normalize_signal('ip', ' 2001:DB8::1 ') AS ip,
       loyalty.normalize_signal('device_id', ' Dev-ABC ') AS device,
       loyalty.normalize_signal('payment_fingerprint', 'fp_9XyZ') AS card;
SELECT loyalty.normalize_signal('email', NULL) IS NULL AS null_in, loyalty.normalize_signal('phone', '') IS NULL AS empty;
SELECT sqlstate_of($$SELECT loyalty.normalize_signal('mail', 'a@b.c')$$);

-- 2. Keyed hashes: equal for equal normal forms, 16 bytes, the kind
-- counts, NULL when nothing is left.
SELECT loyalty.signal_hash('email', 'John.Doe@Gmail.com') = loyalty.signal_hash('email', 'johndoe+x@googlemail.com') AS same_email,
       loyalty.signal_hash('email', 'john.doe@yahoo.com') = loyalty.signal_hash('email', 'johndoe@yahoo.com') AS yahoo_dots,
       loyalty.signal_hash('device_id', 'X1') = loyalty.signal_hash('payment_fingerprint', 'X1') AS kinds_apart,
       octet_length(loyalty.signal_hash('ip', '10.0.0.1')) AS bytes,
       loyalty.signal_hash('phone', 'none') IS NULL AS nothing_left,
       loyalty.signal_hash('ip', '10.0.0.1') = loyalty.signal_digest(k.key, 'ip', ' 10.0.0.1') AS digest_agrees
  FROM loyalty.signal_key k WHERE k.retired_at IS NULL;
SELECT sqlstate_of($$SELECT loyalty.signal_hash('cookie', 'a')$$);
SELECT sqlstate_of($$SELECT loyalty.signal_digest('\x00'::bytea, 'ip', '1')$$);

-- 3. Member contacts follow the profile.
SELECT loyalty.create_program('sig', 'USD', 1, timezone => 'Asia/Ho_Chi_Minh');
SELECT loyalty.enroll('sig', 'ann', '{"email": "Ann.Lee@gmail.com", "phone": "+84 90 111 2222"}');
SELECT loyalty.enroll('sig', 'bo', '{"email": "annlee+promo@googlemail.com"}');
SELECT loyalty.enroll('sig', 'cy', '{"country": "VN"}');
SELECT member_id, kind, key_id = (SELECT id FROM loyalty.signal_key WHERE retired_at IS NULL) AS current_key,
       hash = loyalty.signal_hash(kind, CASE kind WHEN 'email' THEN 'annlee@gmail.com'
                                                                       ELSE '+84901112222' END) AS expected_hash
  FROM loyalty.member_contact WHERE program = 'sig' ORDER BY 1, 2;
-- Two accounts, one mailbox: the hashes match.
SELECT a.member_id, b.member_id AS shares_email_with
  FROM loyalty.member_contact a JOIN loyalty.member_contact b
    ON b.program = a.program AND b.kind = a.kind AND b.hash = a.hash AND b.member_id > a.member_id
 WHERE a.program = 'sig';
-- A changed profile changes the hashes; a contact taken out goes.
UPDATE loyalty.member SET profile = '{"email": "ann@example.com"}' WHERE program = 'sig' AND member_id = 'ann';
UPDATE loyalty.member SET profile = profile || '{"phone": "090-333-4444"}' WHERE program = 'sig' AND member_id = 'cy';
SELECT member_id, kind, hash = loyalty.signal_hash(kind, CASE member_id WHEN 'ann' THEN 'ann@example.com'
                                                                        WHEN 'cy' THEN '0903334444'
                                                                        ELSE 'annlee@gmail.com' END) AS expected_hash
  FROM loyalty.member_contact WHERE program = 'sig' ORDER BY 1, 2;
-- The member upsert of every credit does not touch them.
SELECT loyalty.earn('sig', 'dan', 5, 'dan-1', 'gift') > 0 AS earned;
SELECT count(*) AS contacts FROM loyalty.member_contact WHERE program = 'sig';

-- 4. An orders table attached with signal columns of several types,
-- written by the application's role (a plain writer of its table).
CREATE TABLE sig_orders (id bigint PRIMARY KEY, member text, amount numeric, at timestamp,
                         client_ip inet, device text, card_fp varchar(40), ship_to text,
                         bill_cc char(2), geo_cc text, note text);
SELECT loyalty.attach_orders('sig', 'sig_orders', 'id', 'member', 'amount', created_at => 'at',
                             ip => 'client_ip', device_id => 'device', payment_fingerprint => 'card_fp',
                             shipping_address => 'ship_to', billing_country => 'bill_cc', ip_country => 'geo_cc');
SELECT ip_column, device_id_column, payment_fingerprint_column, shipping_address_column,
       billing_country_column, ip_country_column FROM loyalty.order_source WHERE program = 'sig';
SELECT tgname FROM pg_trigger WHERE tgrelid = 'sig_orders'::regclass ORDER BY 1;
GRANT SELECT, INSERT, UPDATE ON sig_orders TO loyalty_app;
SET ROLE loyalty_app;
INSERT INTO sig_orders VALUES
    (1, 'ann', 10, '2024-05-01 09:00', '10.1.2.3', 'DEV-1', 'fp1', '12 Lê Lợi, Q.1', 'vn', 'VN', 'first'),
    (2, 'bo', 20, '2024-05-01 09:05', '10.1.2.3/32', ' DEV-1 ', 'FP1', '12 lê lợi q1', 'VN', 'us', NULL),
    (3, NULL, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'guest, nothing mapped filled');
INSERT INTO sig_orders (id, member, amount, at, device) VALUES (4, 'cy', 7, '2024-05-02', 'dev-2');
-- A second insert of an id, and an UPDATE of a signal column: signals are
-- taken once, when the order is inserted.
INSERT INTO sig_orders (id, member, amount, device) VALUES (1, 'ann', 10, 'other') ON CONFLICT DO NOTHING;
UPDATE sig_orders SET device = 'changed', bill_cc = 'FR' WHERE id = 2;
RESET ROLE;
SELECT order_id, member_id, CASE WHEN order_id <> '3' THEN ordered_at END AS ordered_at, key_id = (SELECT id FROM loyalty.signal_key WHERE retired_at IS NULL) AS current_key,
       ip IS NOT NULL AS ip, device_id IS NOT NULL AS device, payment_fingerprint IS NOT NULL AS card,
       shipping_address IS NOT NULL AS address, billing_country IS NOT NULL AS bill, ip_country IS NOT NULL AS geo
  FROM loyalty.order_signal WHERE program = 'sig' ORDER BY order_id;
-- Orders 1 and 2: the same ip (inet prints 10.1.2.3 for both), device,
-- address (case and punctuation apart) and billing country; the card
-- differs in case (kept: fingerprints are case-sensitive), the ip country
-- differs.  Order 2's device is as inserted, not as updated.
SELECT a.ip = b.ip AS ip, a.device_id = b.device_id AS device, a.payment_fingerprint = b.payment_fingerprint AS card,
       a.shipping_address = b.shipping_address AS address, a.billing_country = b.billing_country AS bill,
       a.ip_country = b.ip_country AS geo, b.device_id = loyalty.signal_hash('device_id', 'DEV-1') AS as_inserted,
       a.billing_country = a.ip_country AS same_country_of_order_1
  FROM loyalty.order_signal a, loyalty.order_signal b
 WHERE a.program = 'sig' AND b.program = 'sig' AND a.order_id = '1' AND b.order_id = '2';
-- The order time as the accrual trigger reads it (the program's zone;
-- the transaction's start without a time).
SELECT s.order_id, s.ordered_at = e.ordered_at AS same_time
  FROM loyalty.order_signal s JOIN loyalty.order_earning e USING (program, order_id)
 WHERE s.program = 'sig' AND s.order_id IN ('1', '2', '3', '4') ORDER BY 1;

-- COPY, and an INSERT ... SELECT: one signal row each.
COPY sig_orders (id, member, amount, device) FROM stdin;
5	ann	1	dev-5
6	bo	1	dev-6
\.
INSERT INTO sig_orders (id, member, amount, device)
SELECT 7, 'cy', 1, 'dev-7' UNION ALL SELECT 8, 'cy', 1, 'dev-8';
SELECT count(*) AS signals FROM loyalty.order_signal WHERE program = 'sig';

-- A mapped column dropped or renamed later: the order goes in, that
-- signal is NULL; the others are kept.
ALTER TABLE sig_orders DROP COLUMN card_fp;
ALTER TABLE sig_orders RENAME COLUMN ship_to TO shipping;
INSERT INTO sig_orders (id, member, amount, device, shipping) VALUES (9, 'ann', 3, 'dev-9', 'somewhere');
SELECT order_id, device_id IS NOT NULL AS device, payment_fingerprint IS NULL AS card_gone,
       shipping_address IS NULL AS address_gone
  FROM loyalty.order_signal WHERE program = 'sig' AND order_id = '9';
SELECT order_id, points FROM loyalty.order_earning WHERE program = 'sig' AND order_id = '9';
-- A column's type changed in the same session: the kept statement is made
-- again for the new layout.
ALTER TABLE sig_orders ALTER COLUMN device TYPE integer USING 0;
INSERT INTO sig_orders (id, member, amount, device) VALUES (11, 'ann', 3, 42);
SELECT device_id = loyalty.signal_hash('device_id', '42') AS hashed_as_integer
  FROM loyalty.order_signal WHERE program = 'sig' AND order_id = '11';

-- Bad signal columns are refused when attaching.
CREATE TABLE sig_bad (id int, member text, amount numeric);
SELECT sqlstate_of($$SELECT loyalty.attach_orders('sig', 'sig_bad', 'id', 'member', 'amount', ip => 'nope')$$);
SELECT sqlstate_of($$SELECT loyalty.attach_orders('sig', 'sig_bad', 'id', 'member', 'amount', device_id => '')$$);
-- Without signal columns: no signal trigger, no signals.
SELECT loyalty.attach_orders('sig', 'sig_bad', 'id', 'member', 'amount');
INSERT INTO sig_bad VALUES (100, 'ann', 1);
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'sig_bad'::regclass AND tgname LIKE 'loyalty_signal%';
SELECT count(*) AS signals FROM loyalty.order_signal WHERE program = 'sig' AND order_id = '100';

-- detach_orders removes the signal trigger.
SELECT loyalty.detach_orders('sig', 'sig_orders');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'sig_orders'::regclass;
INSERT INTO sig_orders (id, member, amount, device) VALUES (10, 'ann', 1, 10);
SELECT count(*) AS signals FROM loyalty.order_signal WHERE program = 'sig' AND order_id = '10';

-- 5. A partitioned orders table: every partition, at every level, gets the
-- signal trigger (an INSERT may name any); a partition created later too;
-- a detached one loses it.
SELECT loyalty.create_program('sig_part', 'USD', 1);
CREATE TABLE sig_part (id int, member text, amount numeric, device text, region text) PARTITION BY LIST (region);
CREATE TABLE sig_part_eu PARTITION OF sig_part FOR VALUES IN ('eu');
CREATE TABLE sig_part_asia PARTITION OF sig_part FOR VALUES IN ('asia') PARTITION BY RANGE (id);
CREATE TABLE sig_part_asia_1 PARTITION OF sig_part_asia FOR VALUES FROM (0) TO (1000);
SELECT loyalty.attach_orders('sig_part', 'sig_part', 'id', 'member', 'amount', device_id => 'device');
CREATE TABLE sig_part_us PARTITION OF sig_part FOR VALUES IN ('us');
SELECT tgrelid::regclass AS rel, tgname FROM pg_trigger
 WHERE tgname = 'loyalty_signal_sig_part' ORDER BY tgrelid::regclass::text COLLATE "C";
INSERT INTO sig_part VALUES (1, 'ann', 1, 'd1', 'eu'), (2, 'bo', 1, 'd2', 'asia'), (3, 'cy', 1, 'd3', 'us');
INSERT INTO sig_part_asia_1 VALUES (4, 'ann', 1, 'd4', 'asia');
INSERT INTO sig_part_asia VALUES (5, 'ann', 1, 'd5', 'asia');
SELECT order_id, device_id = loyalty.signal_hash('device_id', 'd' || order_id) AS hashed
  FROM loyalty.order_signal WHERE program = 'sig_part' ORDER BY 1;
ALTER TABLE sig_part DETACH PARTITION sig_part_us;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'sig_part_us'::regclass;
SELECT loyalty.detach_orders('sig_part', 'sig_part');
SELECT count(*) AS signal_triggers FROM pg_trigger WHERE tgname = 'loyalty_signal_sig_part';

-- 6. Key rotation (admin): a new current key, the old one kept retired;
-- contacts hashed again at once; new orders under the new key, which
-- never match the same value hashed under the old one.
SELECT loyalty.create_program('sig_rot', 'USD', 1);
CREATE TABLE sig_rot_orders (id int, member text, amount numeric, device text);
SELECT loyalty.attach_orders('sig_rot', 'sig_rot_orders', 'id', 'member', 'amount', device_id => 'device');
INSERT INTO sig_rot_orders VALUES (1, 'ann', 1, 'same-device');
CREATE TEMP TABLE before_rotation AS SELECT program, member_id, kind, key_id, hash FROM loyalty.member_contact;
SELECT max(id) AS old_key FROM loyalty.signal_key \gset
SET ROLE loyalty_admin;
SELECT loyalty.rotate_signal_key() = :old_key + 1 AS new_key;
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.signal_key$$);
SELECT sqlstate_of($$SELECT loyalty.signal_hash('ip', '1.2.3.4')$$);
RESET ROLE;
SELECT id = :old_key AS old, retired_at IS NOT NULL AS retired FROM loyalty.signal_key WHERE id >= :old_key ORDER BY id;
SELECT count(*) AS contacts, count(*) FILTER (WHERE c.key_id = :old_key + 1) AS under_new_key,
       count(*) FILTER (WHERE c.hash = b.hash) AS unchanged_hashes
  FROM loyalty.member_contact c JOIN before_rotation b USING (program, member_id, kind);
INSERT INTO sig_rot_orders VALUES (2, 'bo', 1, 'same-device');
SELECT order_id, key_id - :old_key AS key_generation FROM loyalty.order_signal WHERE program = 'sig_rot' ORDER BY 1;
SELECT count(DISTINCT device_id) AS distinct_hashes_of_one_device FROM loyalty.order_signal WHERE program = 'sig_rot';
-- The key id of every signal resolves.
SELECT count(*) AS unresolved FROM loyalty.order_signal s
 WHERE NOT EXISTS (SELECT 1 FROM loyalty.signal_key k WHERE k.id = s.key_id);

-- Without a current key the orders still earn; their signals are not
-- kept (a WARNING); signal_hash refuses (55000).
BEGIN;
UPDATE loyalty.signal_key SET retired_at = now() WHERE retired_at IS NULL;
INSERT INTO sig_rot_orders VALUES (3, 'cy', 4, 'same-device');
SELECT (SELECT points FROM loyalty.order_earning WHERE program = 'sig_rot' AND order_id = '3') AS earned,
       (SELECT count(*) FROM loyalty.order_signal WHERE program = 'sig_rot' AND order_id = '3') AS signals;
SELECT sqlstate_of($$SELECT loyalty.signal_hash('ip', '1.2.3.4')$$);
ROLLBACK;

-- 7. Purging old order signals (admin).
SET ROLE loyalty_admin;
SELECT loyalty.purge_order_signals('sig', '2024-05-01 12:00+07');
SELECT sqlstate_of($$SELECT loyalty.purge_order_signals('sig', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.purge_order_signals('nope', now())$$);
RESET ROLE;
SELECT order_id FROM loyalty.order_signal WHERE program = 'sig' ORDER BY 1;

-- 8. Only the owner hashes; the key is nobody's to read.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.signal_hash('ip', '1.2.3.4')$$);
SELECT sqlstate_of($$SELECT loyalty.normalize_signal('ip', '1.2.3.4')$$);
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.order_signal$$);
RESET ROLE;
SET ROLE loyalty_reader;
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.member_contact$$);
RESET ROLE;
SELECT * FROM loyalty.verify() WHERE NOT ok;

-- The two countries are hashed in one domain: the same country has the
-- same hash as billing and as IP country (geo_mismatch compares them),
-- while other kinds spelled alike do not match.
SELECT loyalty.signal_hash('billing_country', 'fr') = loyalty.signal_hash('ip_country', ' FR ') AS countries_match,
       loyalty.signal_hash('billing_country', 'FR') <> loyalty.signal_hash('ip_country', 'DE') AS other_country_differs,
       loyalty.signal_hash('device_id', 'FR') <> loyalty.signal_hash('ip_country', 'FR') AS device_differs;
