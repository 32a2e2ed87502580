-- GDPR / PIPL: export_member (everything held about a member, as JSON),
-- forget_member (profile, contacts and signals erased, the id replaced by a
-- pseudonym in every table, the ledger included, totals kept, verify()
-- clean; later orders under the old id are a guest's and enrol no one),
-- and BI views without profile fields.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SELECT loyalty.create_program('gd', 'USD', 1, expire_after => '365 days');
CREATE TABLE gd_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                        at timestamptz DEFAULT now(), ip text, device text);
SELECT loyalty.attach_orders('gd', 'gd_orders', 'id', 'member', 'amount', NULL, 'status', NULL, 'at',
                             ip => 'ip', device_id => 'device');
GRANT SELECT, INSERT, UPDATE, DELETE ON gd_orders TO loyalty_app;

-- gus: orders, a redemption, a referral (he referred hal), a coupon, a
-- tier, a fraud flag, a hold, contacts and order signals.
SET ROLE loyalty_app;
SELECT loyalty.enroll('gd', 'gus', '{"name": "Gus", "email": "gus@example.com", "phone": "+1 555 0100"}');
SELECT loyalty.enroll('gd', 'hal');
SELECT loyalty.referral_code('gd', 'gus') AS gus_code \gset
SELECT accepted FROM loyalty.refer('gd', 'hal', :'gus_code');
INSERT INTO gd_orders (id, member, amount, at, ip, device) VALUES
    ('G-1', 'gus', 100, now() - interval '20 days', '10.0.0.1', 'dev-gus'),
    ('G-2', 'gus', 60, now() - interval '10 days', '10.0.0.1', 'dev-gus'),
    ('H-1', 'hal', 40, now() - interval '5 days', '10.0.0.1', 'dev-gus');
SELECT loyalty.redeem('gd', 'gus', 30, 'r-100') > 0 AS redeemed;
SELECT loyalty.set_consent('gd', 'gus', 'marketing', true) ->> 'granted' AS consent;
RESET ROLE;
SET ROLE loyalty_admin;
SELECT loyalty.set_tier_ladder('gd', 'basis=spend window=365d | Basic 0 x1 | Gold 150 x1');
SELECT members FROM loyalty.recalculate_tiers('gd');
SELECT loyalty.score_rfm('gd', now()) > 0 AS scored;
SELECT loyalty.create_campaign('gd', 'gd_coupons', '10% off');
SELECT loyalty.issue_codes('gd', 'gd_coupons', 1, 'gus') IS NOT NULL AS coupon;
SELECT loyalty.set_fraud_rule('gd', 'velocity', '{"orders": 2, "minutes": 100000}') ->> 'orders' AS velocity;
SELECT loyalty.fraud_check('gd', now() - interval '30 days', now()) > 0 AS flagged;
SELECT loyalty.set_member_status('gd', 'gus', 'held');
RESET ROLE;
SELECT member_id, status, tier, balance FROM loyalty.member WHERE program = 'gd' ORDER BY 1;
SELECT count(*) AS gus_signals FROM loyalty.order_signal WHERE program = 'gd' AND member_id = 'gus';
SELECT count(*) AS gus_contacts FROM loyalty.member_contact WHERE program = 'gd' AND member_id = 'gus';

-- 1. Export (admin only): every part, the values of this member.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.export_member('gd', 'gus')$$) AS app_cannot_export;
RESET ROLE;
SET ROLE loyalty_admin;
SELECT loyalty.export_member('gd', 'gus') AS export \gset
RESET ROLE;
SELECT k FROM jsonb_object_keys(:'export'::jsonb) k ORDER BY 1;
SELECT e -> 'profile' AS profile, e -> 'consent' -> 'marketing' ->> 'granted' AS marketing, e ->> 'status' AS status,
       e -> 'account' ->> 'balance' AS balance, e -> 'tier' ->> 'tier' AS tier,
       jsonb_array_length(e -> 'ledger') AS ledger_rows, jsonb_array_length(e -> 'lots') AS lots,
       jsonb_array_length(e -> 'orders') AS orders, e -> 'activity' ->> 'orders' AS activity_orders,
       e -> 'rfm' ->> 'rfm' AS rfm, jsonb_array_length(e -> 'coupons') AS coupons,
       e ->> 'referral_code' = :'gus_code' AS own_code,
       jsonb_path_query_array(e -> 'referrals', '$[*].member_id') AS referred,
       jsonb_array_length(e -> 'fraud_flags') > 0 AS flags, jsonb_array_length(e -> 'holds') AS holds
  FROM (SELECT :'export'::jsonb AS e) x;
SELECT h ->> 'label' AS label, h ->> 'points' AS points FROM jsonb_array_elements(:'export'::jsonb -> 'ledger') h;
-- Bad input.
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.export_member('gd', 'nobody')$$);
SELECT sqlstate_of($$SELECT loyalty.export_member('gd', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.export_member('nope', 'gus')$$);
RESET ROLE;

-- 2. Forget (admin only).
SELECT sum(balance) AS balance, sum(debt) AS debt, sum(lifetime_earned) AS earned, sum(lifetime_redeemed) AS redeemed
  FROM loyalty.member WHERE program = 'gd' \gset before_
SELECT count(*) AS ledger_rows FROM loyalty.ledger WHERE program = 'gd' \gset before_
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.forget_member('gd', 'gus')$$) AS app_cannot_forget;
RESET ROLE;
SET ROLE loyalty_admin;
SELECT loyalty.forget_member('gd', 'gus') AS pseudonym \gset
SELECT :'pseudonym' ~ '^forgotten-[0-9a-f]{32}$' AS pseudonym_shape;
-- Idempotent: the same pseudonym again.
SELECT loyalty.forget_member('gd', 'gus') = :'pseudonym' AS same_pseudonym;
SELECT sqlstate_of($$SELECT loyalty.forget_member('gd', 'nobody')$$);
SELECT sqlstate_of($$SELECT loyalty.forget_member('gd', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.forget_member('gd', '')$$);
SELECT sqlstate_of($$SELECT loyalty.forget_member('nope', 'gus')$$);
RESET ROLE;
-- Totals kept, the books clean, the ledger's rows all there.
SELECT sum(balance) = :before_balance AS balance_kept, sum(debt) = :before_debt AS debt_kept,
       sum(lifetime_earned) = :before_earned AS earned_kept, sum(lifetime_redeemed) = :before_redeemed AS redeemed_kept
  FROM loyalty.member WHERE program = 'gd';
SELECT count(*) = :before_ledger_rows AS ledger_rows_kept FROM loyalty.ledger WHERE program = 'gd';
SELECT check_name, detail FROM loyalty.verify('gd') WHERE NOT ok;
-- The member is the pseudonym: forgotten, no profile, no hold, no contacts, signals, score or code.
SELECT status, profile, tier, balance FROM loyalty.member WHERE program = 'gd' AND member_id = :'pseudonym';
SELECT (SELECT count(*) FROM loyalty.member_contact WHERE program = 'gd' AND member_id = :'pseudonym') AS contacts,
       (SELECT count(*) FROM loyalty.order_signal WHERE program = 'gd' AND member_id = :'pseudonym') AS signals,
       (SELECT count(*) FROM loyalty.rfm_score WHERE program = 'gd' AND member_id = :'pseudonym') AS scores,
       (SELECT count(*) FROM loyalty.referral_code WHERE program = 'gd' AND member_id = :'pseudonym') AS codes,
       (SELECT count(*) FROM loyalty.member_hold WHERE program = 'gd' AND member_id = :'pseudonym' AND released_at IS NULL) AS open_holds;
-- The history moved with it: hal's referrer, the ledger, the coupon.
SELECT referrer_id = :'pseudonym' AS hal_referrer_pseudonym FROM loyalty.referral WHERE program = 'gd' AND member_id = 'hal';
SELECT count(*) AS pseudonym_ledger_rows FROM loyalty.ledger WHERE program = 'gd' AND member_id = :'pseudonym';
SELECT count(*) AS pseudonym_coupons FROM loyalty.coupon_code WHERE program = 'gd' AND member_id = :'pseudonym';
-- The old id is nowhere: no text or JSON value of the program's rows in
-- any loyalty table holds "gus" (the tables without a program column hold
-- keys, rates and settings).
DO $$
DECLARE
    c record;
    n bigint;
    total bigint := 0;
BEGIN
    FOR c IN SELECT cl.relname, a.attname
               FROM pg_attribute a JOIN pg_class cl ON cl.oid = a.attrelid
              WHERE cl.relnamespace = 'loyalty'::regnamespace AND cl.relkind = 'r'
                AND a.attnum > 0 AND NOT a.attisdropped
                -- this program's rows (the other regression files have their own gus)
                AND EXISTS (SELECT 1 FROM pg_attribute p WHERE p.attrelid = cl.oid AND p.attname = 'program')
                AND a.atttypid IN ('text'::regtype, 'jsonb'::regtype, 'name'::regtype)
              ORDER BY 1, 2 LOOP
        EXECUTE format('SELECT count(*) FROM loyalty.%I WHERE program = ''gd'' AND %I::text ~ ''\mgus\M''', c.relname, c.attname) INTO n;
        IF n > 0 THEN
            RAISE WARNING 'loyalty.%.% still holds "gus" (% rows)', c.relname, c.attname, n;
        END IF;
        total := total + 1;
    END LOOP;
    RAISE NOTICE 'searched % columns', CASE WHEN total > 100 THEN 'over 100' ELSE total::text END;
END
$$;

-- 3. The member earns no more: a later order under the old id is a
-- guest's and enrols no one; an order placed before is still the
-- pseudonym's and a refund of it reverses from the pseudonym.
SET ROLE loyalty_app;
INSERT INTO gd_orders (id, member, amount) VALUES ('G-3', 'gus', 500);
INSERT INTO gd_orders (id, member, amount) VALUES ('G-4', 'gus', 10), ('H-2', 'hal', 10);
SELECT sqlstate_of($$SELECT loyalty.enroll('gd', 'gus')$$) AS enroll_again;
SELECT sqlstate_of($$SELECT loyalty.update_profile('gd', 'gus', '{}')$$) AS profile_of_old_id;
RESET ROLE;
SELECT order_id, member_id IS NULL AS guest, points FROM loyalty.order_earning
 WHERE program = 'gd' AND order_id IN ('G-3', 'G-4', 'H-2') ORDER BY 1;
SELECT count(*) AS gus_members FROM loyalty.member WHERE program = 'gd' AND member_id = 'gus';
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.export_member('gd', 'gus')$$) AS export_old_id;
SELECT replace(sqlstate_of(format('SELECT loyalty.update_profile(%L, %L, %L)', 'gd', :'pseudonym', '{"name": "x"}')), :'pseudonym', '<pseudonym>') AS profile_of_pseudonym;
SELECT replace(sqlstate_of(format('SELECT loyalty.adjust(%L, %L, 5, %L, %L)', 'gd', :'pseudonym', 'gd-adj', 'x')), :'pseudonym', '<pseudonym>') AS adjust_pseudonym;
SELECT replace(sqlstate_of(format('SELECT loyalty.merge_members(%L, %L, %L, %L)', 'gd', 'hal', :'pseudonym', 'gd-merge')), :'pseudonym', '<pseudonym>') AS merge_into_pseudonym;
RESET ROLE;
SET ROLE loyalty_app;
UPDATE gd_orders SET status = 'refunded' WHERE id = 'G-2';
RESET ROLE;
SELECT order_id, member_id = :'pseudonym' AS pseudonym, closed FROM loyalty.order_earning
 WHERE program = 'gd' AND order_id IN ('G-1', 'G-2') ORDER BY 1;
SELECT check_name, detail FROM loyalty.verify('gd') WHERE NOT ok;
-- set_member_status(..., 'forgotten') forgets too.
SET ROLE loyalty_admin;
SELECT loyalty.set_member_status('gd', 'hal', 'forgotten');
RESET ROLE;
SELECT count(*) AS hal_rows, (SELECT count(*) FROM loyalty.member WHERE program = 'gd' AND status = 'forgotten') AS forgotten
  FROM loyalty.member WHERE program = 'gd' AND member_id = 'hal';
-- A merged id was the same person's: forgetting the member forgets it too.
SET ROLE loyalty_admin;
SELECT loyalty.enroll('gd', 'ivy'), loyalty.enroll('gd', 'ivy-old');
SELECT loyalty.merge_members('gd', 'ivy-old', 'ivy', 'ivy-merge') > 0 AS merged;
SELECT loyalty.forget_member('gd', 'ivy') <> :'pseudonym' AS own_pseudonym;
RESET ROLE;
INSERT INTO gd_orders (id, member, amount) VALUES ('I-1', 'ivy-old', 10), ('I-2', 'ivy', 10);
SELECT order_id, member_id IS NULL AS guest FROM loyalty.order_earning WHERE program = 'gd' AND order_id LIKE 'I-%' ORDER BY 1;
SELECT count(*) AS ivy_merges FROM loyalty.member_merge WHERE program = 'gd';
-- The hashes survive a key rotation: forgotten ids stay forgotten.
SET ROLE loyalty_admin;
SELECT loyalty.rotate_signal_key() > 1 AS rotated;
RESET ROLE;
INSERT INTO gd_orders (id, member, amount) VALUES ('G-5', 'gus', 10);
SELECT member_id IS NULL AS guest FROM loyalty.order_earning WHERE program = 'gd' AND order_id = 'G-5';
-- Only a keyed hash is kept: not the id, nor a plain hash of it.
SELECT count(*) AS plain_hashes FROM loyalty.forgotten_member f
 WHERE f.id_hash IN (sha256('gus'::bytea), substr(sha256('gus'::bytea), 1, 16),
                     substr(sha256(convert_to('gd' || chr(31) || 'gus', 'UTF8')), 1, 16));
SELECT count(*) AS forgotten_rows, count(DISTINCT pseudonym) AS pseudonyms FROM loyalty.forgotten_member WHERE program = 'gd';
SELECT check_name, detail FROM loyalty.verify('gd') WHERE NOT ok;

-- 4. The ledger stays append-only for everything else.
SELECT sqlstate_of($$UPDATE loyalty.ledger SET points = points WHERE program = 'gd'$$) AS update_refused;
-- A rewrite named in the setting may change the member id and nothing else.
SELECT set_config('loyalty.member_rewrite', 'gd' || chr(31) || :'pseudonym' || chr(31) || 'zz', false) IS NOT NULL AS set;
SELECT sqlstate_of(format('UPDATE loyalty.ledger SET member_id = %L, points = points + 1 WHERE program = %L AND member_id = %L',
                          'zz', 'gd', :'pseudonym')) AS forged_rewrite_refused;
SELECT sqlstate_of(format('UPDATE loyalty.ledger SET member_id = %L WHERE program = %L AND member_id = %L',
                          'other', 'gd', :'pseudonym')) AS other_id_refused;
RESET loyalty.member_rewrite;

-- 5. BI views expose no profile fields: no view or table loyalty_reader
-- may read has a column that could hold one.  Must return no rows.
SELECT c.relname, a.attname
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
   AND (has_table_privilege('loyalty_reader', c.oid, 'SELECT')
        OR has_column_privilege('loyalty_reader', c.oid, a.attnum, 'SELECT'))
   AND a.attname ~ '(^|_)(profile|email|phone|name|birthday|address|consent|contact|ip|device)(_|$)';
-- ... and the reader does read views (the query above can find something).
SELECT count(*) > 5 AS reader_views
  FROM pg_class c WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind = 'v'
   AND has_table_privilege('loyalty_reader', c.oid, 'SELECT');
-- ... and cannot read the member table or call export.
SET ROLE loyalty_reader;
SELECT sqlstate_of($$SELECT profile FROM loyalty.member$$) AS member_table;
SELECT sqlstate_of($$SELECT loyalty.export_member('gd', 'hal')$$) AS export;
-- The forgotten member shows in member_360 as its pseudonym.
SELECT member_id = :'pseudonym' AS pseudonym, status FROM loyalty.member_360
 WHERE program = 'gd' AND member_id = :'pseudonym';
RESET ROLE;

-- 6. A forgotten member is profiled no more: scored again, it is left out
-- of member_rfm (and so of the segment views), while the others stay.
SELECT loyalty.score_rfm('gd', now() + interval '1 second', lookback => '3650 days') >= 0 AS scored;
SELECT count(*) AS scored_rows FROM loyalty.rfm_score WHERE program = 'gd';
SET ROLE loyalty_reader;
SELECT count(*) AS forgotten_in_rfm FROM loyalty.member_rfm WHERE program = 'gd' AND member_id LIKE 'forgotten-%';
RESET ROLE;

-- 7. A back-fill never brings a forgotten member back: an order of the
-- old id already in a table attached later earns nothing and enrols no one.
SELECT loyalty.create_program('gdb', 'USD');
SELECT loyalty.enroll('gdb', 'zoe');
SELECT loyalty.earn('gdb', 'zoe', 5, 'gdb-welcome', 'welcome') > 0 AS credited;
SELECT loyalty.forget_member('gdb', 'zoe') LIKE 'forgotten-%' AS forgotten;
CREATE TABLE gdb_orders (id text PRIMARY KEY, member text, amount numeric, created_at timestamptz);
INSERT INTO gdb_orders VALUES ('Z-1', 'zoe', 40, '2024-01-01'), ('Y-1', 'yan', 30, '2024-01-02');
SET client_min_messages = error;
SELECT loyalty.attach_orders('gdb', 'gdb_orders', 'id', 'member', 'amount', created_at => 'created_at');
RESET client_min_messages;
SELECT loyalty.backfill_orders_chunk('gdb', 'gdb_orders') AS rows_read;
SELECT CASE WHEN member_id LIKE 'forgotten-%' THEN 'forgotten-...' ELSE member_id END AS member, balance
  FROM loyalty.member WHERE program = 'gdb' ORDER BY member_id LIKE 'forgotten-%', member_id;
SELECT order_id, member_id IS NULL AS guest, points FROM loyalty.order_earning WHERE program = 'gdb' ORDER BY order_id;
SELECT count(*) AS failed_checks FROM loyalty.verify('gdb') WHERE NOT ok;
