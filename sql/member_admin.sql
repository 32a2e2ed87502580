-- Member administration: signed adjustments (admin only, idempotent),
-- profile and consent, the lots of a member, a statement that says what
-- each reversal was, merging two members of one person, and the list of
-- member-id columns merge and forget cover.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SELECT loyalty.create_program('adm', 'USD', 1, pending_days => 10, expire_after => '365 days');
CREATE TABLE adm_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                         at timestamptz DEFAULT now());
SELECT loyalty.attach_orders('adm', 'adm_orders', 'id', 'member', 'amount', NULL, 'status', NULL, 'at');
GRANT SELECT, INSERT, UPDATE, DELETE ON adm_orders TO loyalty_app;
-- ann: 100 (available), 30 (pending); bob: 50 available.
INSERT INTO adm_orders (id, member, amount, at) VALUES
    ('A-1', 'ann', 100, now() - interval '30 days'), ('A-2', 'ann', 30, now() - interval '2 days'),
    ('B-1', 'bob', 50, now() - interval '40 days');

-- 1. adjust: signed, with a reason, admin only, idempotent on ref.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.adjust('adm', 'ann', 5, 'adj-app', 'x')$$);
RESET ROLE;
SET ROLE loyalty_admin;
SELECT loyalty.adjust('adm', 'ann', 25, 'adj-1', 'goodwill') AS credit_id \gset
SELECT loyalty.adjust('adm', 'ann', 25, 'adj-1', 'goodwill') = :credit_id AS replay_same_row;
SELECT sqlstate_of($$SELECT loyalty.adjust('adm', 'ann', 26, 'adj-1', 'goodwill')$$) AS other_points;
SELECT sqlstate_of($$SELECT loyalty.adjust('adm', 'ann', 25, 'adj-1', 'other reason')$$) AS other_reason;
SELECT sqlstate_of($$SELECT loyalty.adjust('adm', 'ann', -25, 'adj-1', 'goodwill')$$) AS other_sign;
-- A debit: soonest-expiring lots first (A-1's), available before pending.
SELECT loyalty.adjust('adm', 'ann', -60, 'adj-2', 'amounts were loaded in cents') AS debit_id \gset
SELECT loyalty.adjust('adm', 'ann', -60, 'adj-2', 'amounts were loaded in cents') = :debit_id AS replay_same_row;
SELECT sqlstate_of($$SELECT loyalty.adjust('adm', 'ann', -61, 'adj-2', 'amounts were loaded in cents')$$) AS other_points;
-- More than the balance: the rest is debt (refund_policy debt).
SELECT loyalty.adjust('adm', 'bob', -70, 'adj-3', 'chargeback') > 0 AS debited;
SELECT member_id, balance, debt, lifetime_earned, lifetime_reversed FROM loyalty.member
 WHERE program = 'adm' ORDER BY 1;
-- Bad input: clear errors, nothing written.
SELECT sqlstate_of($$SELECT loyalty.adjust('adm', 'ann', 0, 'adj-4', 'zero')$$);
SELECT sqlstate_of($$SELECT loyalty.adjust('adm', 'ann', NULL, 'adj-4', 'null')$$);
SELECT sqlstate_of($$SELECT loyalty.adjust('adm', 'ann', 5, NULL, 'null ref')$$);
SELECT sqlstate_of($$SELECT loyalty.adjust('adm', 'ann', 5, 'adj-4', ' ')$$);
SELECT sqlstate_of($$SELECT loyalty.adjust('adm', 'nobody', 5, 'adj-4', 'unknown member')$$);
SELECT sqlstate_of($$SELECT loyalty.adjust('nope', 'ann', 5, 'adj-4', 'unknown program')$$);
RESET ROLE;
SELECT count(*) AS adj4_rows FROM loyalty.ledger WHERE program = 'adm' AND ref = 'adj-4';

-- 2. Profile and consent (the application).
SET ROLE loyalty_app;
SELECT loyalty.update_profile('adm', 'ann', '{"name": "Ann", "email": "Ann@Example.com", "city": "Hue"}');
SELECT loyalty.update_profile('adm', 'ann', '{"city": null, "phone": "+84 90 000 0000"}');
SELECT sqlstate_of($$SELECT loyalty.update_profile('adm', 'ann', '[1]')$$);
SELECT sqlstate_of($$SELECT loyalty.update_profile('adm', 'ann', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.update_profile('adm', 'ann', '{"consent": {"marketing": true}}')$$);
SELECT sqlstate_of($$SELECT loyalty.update_profile('adm', 'zed', '{}')$$);
SELECT loyalty.set_consent('adm', 'ann', 'marketing', false) ->> 'granted' AS marketing;
SELECT loyalty.set_consent('adm', 'ann', 'profiling', true) ->> 'granted' AS profiling;
SELECT sqlstate_of($$SELECT loyalty.set_consent('adm', 'ann', 'spam', true)$$);
SELECT sqlstate_of($$SELECT loyalty.set_consent('adm', 'ann', NULL, true)$$);
SELECT sqlstate_of($$SELECT loyalty.set_consent('adm', 'ann', 'marketing', NULL)$$);
-- A later profile change keeps the consent.
SELECT loyalty.update_profile('adm', 'ann', '{"name": "Ann B."}') -> 'consent' -> 'marketing' ->> 'granted' AS kept;
SELECT sqlstate_of($$SELECT loyalty.set_consent_required('adm', true)$$) AS app_cannot_set_policy;
RESET ROLE;
-- The contact hashes follow the profile.
SELECT kind FROM loyalty.member_contact WHERE program = 'adm' AND member_id = 'ann' ORDER BY kind;
-- Consent: a recorded answer counts; without one, the program's policy.
SELECT loyalty.has_consent('adm', 'ann', 'marketing') AS ann_marketing,
       loyalty.has_consent('adm', 'bob', 'marketing') AS bob_no_answer;
SET ROLE loyalty_admin;
SELECT loyalty.set_consent_required('adm', true);
RESET ROLE;
SELECT loyalty.has_consent('adm', 'bob', 'marketing') AS bob_when_required,
       loyalty.has_consent('adm', 'ann', 'profiling') AS ann_profiling;
-- Honoured by the segment views: only ann (profiling consent) is scored for BI.
SET ROLE loyalty_admin;
SELECT loyalty.score_rfm('adm', now()) >= 0 AS scored;
RESET ROLE;
SET ROLE loyalty_reader;
SELECT member_id FROM loyalty.member_rfm WHERE program = 'adm' ORDER BY 1;
SELECT sum(members) AS scored_members FROM loyalty.segment_summary WHERE program = 'adm';
SELECT member_id, rfm IS NOT NULL AS has_rfm FROM loyalty.member_360 WHERE program = 'adm' ORDER BY 1;
RESET ROLE;
-- ... and by the automatic coupons: neither ann (said no) nor bob (no answer, consent required) gets one.
SET ROLE loyalty_admin;
SELECT loyalty.create_campaign('adm', 'adm_birthday', '10% off');
SELECT loyalty.set_auto_coupon('adm', 'birthday', 'adm_birthday');
RESET ROLE;
UPDATE loyalty.member SET profile = profile || jsonb_build_object('birthday', to_char(now(), 'YYYY-MM-DD'))
 WHERE program = 'adm';
SET ROLE loyalty_admin;
SELECT loyalty.issue_birthday_coupons('adm') AS issued_without_consent;
SELECT loyalty.set_consent_required('adm', false);
SELECT loyalty.issue_birthday_coupons('adm') AS issued_to_bob;
RESET ROLE;
SELECT member_id FROM loyalty.coupon_code WHERE program = 'adm' ORDER BY 1;

-- 3. The lots, for the application.
SET ROLE loyalty_app;
SELECT order_id, earned, remaining, state, expires_at - available_at AS lifetime
  FROM loyalty.member_lots('adm', 'ann') ORDER BY lot_id;
SELECT left(sqlstate_of($$SELECT * FROM loyalty.member_lots('adm', 'ann', now() + interval '1 day')$$), 5) AS future_as_of;
SELECT sqlstate_of($$SELECT * FROM loyalty.member_lots('adm', NULL)$$);
SELECT sqlstate_of($$SELECT * FROM loyalty.member_lots('nope', 'ann')$$);
SELECT count(*) AS unknown_member_lots FROM loyalty.member_lots('adm', 'zed');
RESET ROLE;
-- An admin may look ahead: A-1's lot expired, the others available by then.
SET ROLE loyalty_admin;
SELECT order_id, state FROM loyalty.member_lots('adm', 'ann', now() + interval '340 days') ORDER BY lot_id;
RESET ROLE;

-- 4. The statement says what each reversal was.
INSERT INTO adm_orders (id, member, amount) VALUES ('S-1', 'cat', 10), ('S-2', 'cat', 20), ('S-3', 'cat', 30),
    ('S-4', 'cat', 40), ('S-5', 'cat', 50);
SELECT loyalty.earn('adm', 'cat', 100, 'cat-gift', 'welcome') > 0 AS credited;
SET ROLE loyalty_app;
UPDATE adm_orders SET status = 'refunded' WHERE id = 'S-1';
UPDATE adm_orders SET status = 'cancelled' WHERE id = 'S-2';
DELETE FROM adm_orders WHERE id = 'S-3';
UPDATE adm_orders SET member = 'dan' WHERE id = 'S-4';
UPDATE adm_orders SET amount = 45 WHERE id = 'S-5';
RESET ROLE;
-- (cat's points are pending: an admin redeems as of their end.)
SET ROLE loyalty_admin;
SELECT loyalty.redeem('adm', 'cat', 10, 'cat-r1', as_of => now() + interval '11 days') > 0 AS redeemed;
RESET ROLE;
SET ROLE loyalty_app;
SELECT loyalty.cancel_redemption('adm', 'cat-r1') > 0 AS cancelled;
SELECT label, kind, points, order_id, ref, undoes_ref FROM loyalty.history('adm', 'cat');
RESET ROLE;

-- 5. Merging two members of one person (admin).
SET ROLE loyalty_admin;
SELECT loyalty.set_tier_ladder('adm', 'basis=spend window=365d | Basic 0 x1 | Gold 120 x1');
SELECT members FROM loyalty.recalculate_tiers('adm');
RESET ROLE;
SELECT member_id, tier, balance, debt, lifetime_earned FROM loyalty.member WHERE program = 'adm' ORDER BY 1;
SELECT member_id, orders, net_spend FROM loyalty.activity_total WHERE program = 'adm' ORDER BY 1;
SET ROLE loyalty_admin;
SELECT loyalty.issue_codes('adm', 'adm_birthday', 1, 'bob') IS NOT NULL AS bob_coupon;
SELECT loyalty.merge_members('adm', 'ann', 'bob', 'merge-1') AS merge_id \gset
SELECT loyalty.merge_members('adm', 'ann', 'bob', 'merge-1') = :merge_id AS replay_same_row;
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm', 'cat', 'bob', 'merge-1')$$) AS ref_reused;
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm', 'cat', 'cat', 'merge-2')$$) AS into_itself;
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm', 'ann', 'bob', 'merge-2')$$) AS source_gone;
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm', 'cat', 'zed', 'merge-2')$$) AS unknown_target;
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm', 'cat', 'bob', NULL)$$) AS null_ref;
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm', 'cat', 'bob', 'adj-1')$$) AS ledger_ref_taken;
SELECT loyalty.set_member_status('adm', 'dan', 'held');
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm', 'dan', 'bob', 'merge-2')$$) AS held_source;
SELECT loyalty.set_member_status('adm', 'dan', 'active');
RESET ROLE;
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm', 'cat', 'bob', 'merge-3')$$) AS app_cannot_merge;
RESET ROLE;
-- ann's account is bob's now: figures added, the higher tier, profile key by key (bob's win).
SELECT member_id, tier, balance, debt, lifetime_earned, lifetime_reversed,
       profile ->> 'name' AS name, profile -> 'consent' -> 'marketing' ->> 'granted' AS marketing
  FROM loyalty.member WHERE program = 'adm' ORDER BY 1;
SELECT member_id, orders, net_spend FROM loyalty.activity_total WHERE program = 'adm' ORDER BY 1;
SELECT order_id, member_id FROM loyalty.order_earning WHERE program = 'adm' AND order_id LIKE 'A-%' ORDER BY 1;
SELECT kind FROM loyalty.member_contact WHERE program = 'adm' AND member_id = 'bob' ORDER BY kind;
-- Nothing of ann is left anywhere but the merge's own record.
DO $$
DECLARE
    c record;
    n bigint;
BEGIN
    FOR c IN SELECT table_name, column_name FROM loyalty.member_id_columns()
              WHERE table_name <> 'member_merge' ORDER BY 1, 2 LOOP
        EXECUTE format('SELECT count(*) FROM loyalty.%I WHERE program = $2 AND %I = $1', c.table_name, c.column_name)
           INTO n USING 'ann', 'adm';
        IF n > 0 THEN
            RAISE WARNING 'loyalty.%.% still holds ann (% rows)', c.table_name, c.column_name, n;
        END IF;
    END LOOP;
END
$$;
SELECT label, kind, points, ref FROM loyalty.history('adm', 'bob') WHERE label IN ('merge', 'adjustment', 'taken back', 'credit');
SELECT from_member_id, into_member_id, ref, merged_by FROM loyalty.member_merge WHERE program = 'adm';
-- The application still records ann's orders under her old id: they earn for bob.
SET ROLE loyalty_app;
INSERT INTO adm_orders (id, member, amount) VALUES ('A-3', 'ann', 15);
INSERT INTO adm_orders (id, member, amount) VALUES ('A-4', 'ann', 5), ('A-5', 'eve', 5);
UPDATE adm_orders SET status = 'refunded' WHERE id = 'A-1';
RESET ROLE;
SELECT order_id, member_id, points, closed FROM loyalty.order_earning WHERE program = 'adm' AND order_id LIKE 'A-%' ORDER BY 1;
SELECT count(*) AS ann_rows FROM loyalty.member WHERE program = 'adm' AND member_id = 'ann';
-- A chain: bob into cat; ann's orders now earn for cat.
SET ROLE loyalty_admin;
SELECT loyalty.merge_members('adm', 'bob', 'cat', 'merge-4') > 0 AS merged;
RESET ROLE;
SELECT from_member_id, into_member_id FROM loyalty.member_merge WHERE program = 'adm' ORDER BY 1;
INSERT INTO adm_orders (id, member, amount) VALUES ('A-6', 'ann', 7);
SELECT member_id FROM loyalty.order_earning WHERE program = 'adm' AND order_id = 'A-6';
SELECT check_name, detail FROM loyalty.verify('adm') WHERE NOT ok;

-- 6. Every table column that holds a member id is in member_id_columns()
-- (merge and forget rewrite from it): a new member-holding table that is
-- not added there shows here.  Must return no rows.
SELECT c.relname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped
   AND (a.attname ~ '(^|_)member(_id)?$' OR a.attname ~ '^(referee|referrer)(_id)?$')
EXCEPT SELECT table_name, column_name FROM loyalty.member_id_columns();
-- ... and it names only columns that exist.  Must return no rows.
SELECT table_name, column_name FROM loyalty.member_id_columns()
EXCEPT SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'loyalty'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped;
-- ... and the catalog query finds the member columns it should (it can fail).
SELECT count(*) >= 25 AS member_columns_found
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped
   AND (a.attname ~ '(^|_)member(_id)?$' OR a.attname ~ '^(referee|referrer)(_id)?$');
-- Text columns in the same tables with other names would escape the
-- pattern: the ones that exist are listed here, each a judgement.
SELECT c.relname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid = 'text'::regtype
   AND c.relname IN (SELECT table_name FROM loyalty.member_id_columns())
   AND a.attname NOT IN (SELECT column_name FROM loyalty.member_id_columns() x WHERE x.table_name = c.relname)
   AND a.attname NOT IN ('program', 'order_id', 'first_order_id', 'ref', 'issued_ref', 'order_ref', 'code', 'campaign',
                         'currency', 'kind', 'reason', 'status', 'rule', 'subject', 'state', 'source', 'note',
                         'release_note', 'segment', 'tier', 'from_tier', 'to_tier', 'tier_floor', 'reward', 'event',
                         'sqlstate', 'held_by', 'released_by', 'excluded_by', 'decided_by', 'merged_by',
                         'resolved_by', 'resolution')
 ORDER BY 1, 2;

-- 7. Keys for distribution by member: every table that holds a member id
-- (NOT NULL) has the member id in its primary key and in every unique
-- index, so it can be distributed by member (loyalty.distribute()).  Only
-- these are allowed without it:
--   order_earning, order_signal, dead_letter: their member id is NULL for
--     guests (so the column is nullable and the query below skips them
--     anyway); distribute() re-keys them with member_id;
--   coupon_code (member_id nullable), referral_code, member_merge,
--     forgotten_member: reference tables (PLAN13): codes and merges are
--     looked up by code or ref across members.
-- Must return no rows.
SELECT c.relname, i.indexrelid::regclass AS index_without_member
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'member_id' AND a.attnotnull
  JOIN pg_index i ON i.indrelid = c.oid AND (i.indisunique OR i.indisprimary)
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'p')
   AND NOT (a.attnum = ANY (i.indkey::int2[]))
   AND c.relname NOT IN ('order_earning', 'order_signal', 'dead_letter',
                         'coupon_code', 'referral_code', 'member_merge', 'forgotten_member')
 ORDER BY 1, 2;
-- ... and it can fail: the member-keyed tables it checks (must be many).
SELECT count(DISTINCT c.relname) >= 15 AS member_tables_checked
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'member_id' AND a.attnotnull
  JOIN pg_index i ON i.indrelid = c.oid AND (i.indisunique OR i.indisprimary)
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'p');
-- The keys the plan names, as PostgreSQL names them.
SELECT i.indexrelid::regclass AS key, regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING btree ', '') AS columns
  FROM pg_index i
 WHERE i.indexrelid IN ('loyalty.ledger_pkey'::regclass, 'loyalty.ledger_ref_key'::regclass,
                        'loyalty.ledger_unredeem_key'::regclass, 'loyalty.lot_pkey'::regclass,
                        'loyalty.held_lot_pkey'::regclass, 'loyalty.member_hold_pkey'::regclass,
                        'loyalty.fraud_flag_pkey'::regclass, 'loyalty.tier_history_pkey'::regclass,
                        'loyalty.referral_rejection_pkey'::regclass, 'loyalty.referral_commission_pkey'::regclass)
 ORDER BY i.indexrelid::regclass::text;
-- The tables distribute() re-keys: their only unique index is the primary
-- key, so ON CONFLICT DO NOTHING without a target (the accrual trigger,
-- the signal trigger, backfill) means the same on one node and on a
-- cluster.  Must be 1 each.
SELECT c.relname, count(*) AS unique_indexes
  FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid AND i.indisunique
 WHERE c.relnamespace = 'loyalty'::regnamespace
   AND c.relname IN ('order_earning', 'order_signal', 'dead_letter')
 GROUP BY 1 ORDER BY 1;
-- No unique index on coupon redemptions without the member: the
-- cross-member rule of redeem_coupon is checked under a lock instead.
SELECT count(*) AS coupon_redemption_unique_without_member
  FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = 'member_id'
 WHERE i.indrelid = 'loyalty.coupon_redemption'::regclass AND i.indisunique
   AND NOT (a.attnum = ANY (i.indkey::int2[]));

-- 8. A reference is an idempotency key of the member's account (PLAN13):
-- another member's call with the same ref is a new operation for that
-- member; the same member with other points, sign or reason is LY003.
SELECT loyalty.create_program('adm2', 'USD', 1);
SELECT loyalty.enroll('adm2', m) FROM unnest(ARRAY['kim', 'lee', 'max', 'ned']) m;
SET ROLE loyalty_admin;
SELECT loyalty.adjust('adm2', 'kim', 40, 'gift', 'goodwill') AS kim_gift \gset
SELECT loyalty.adjust('adm2', 'lee', 40, 'gift', 'goodwill') AS lee_gift \gset
SELECT :kim_gift <> :lee_gift AS two_rows,
       loyalty.adjust('adm2', 'kim', 40, 'gift', 'goodwill') = :kim_gift AS kim_replay,
       loyalty.adjust('adm2', 'lee', 40, 'gift', 'goodwill') = :lee_gift AS lee_replay;
SELECT sqlstate_of($$SELECT loyalty.adjust('adm2', 'lee', 41, 'gift', 'goodwill')$$) AS lee_other_points;
SELECT sqlstate_of($$SELECT loyalty.adjust('adm2', 'lee', -40, 'gift', 'goodwill')$$) AS lee_other_sign;
-- A debit under a ref another member credited with: a new operation too.
SELECT loyalty.adjust('adm2', 'max', -5, 'gift', 'goodwill') > 0 AS max_debit;
SELECT loyalty.adjust('adm2', 'max', -5, 'gift', 'goodwill') > 0 AS max_debit_replay;
RESET ROLE;
SELECT member_id, kind, points FROM loyalty.ledger WHERE program = 'adm2' AND ref = 'gift' ORDER BY 1;
SELECT member_id, balance, debt FROM loyalty.member WHERE program = 'adm2' ORDER BY 1;
-- Merging members who both used a reference is refused (LY003): the
-- ledger is append-only and one account cannot hold a ref twice.  Nothing
-- moves.
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm2', 'kim', 'lee', 'merge-kl')$$) AS refs_overlap;
RESET ROLE;
SELECT member_id, count(*) AS ledger_rows FROM loyalty.ledger WHERE program = 'adm2' GROUP BY 1 ORDER BY 1;
SELECT count(*) AS merges FROM loyalty.member_merge WHERE program = 'adm2';
-- A merge ref the target (or the source) already used in its ledger: LY003.
SELECT loyalty.earn('adm2', 'ned', 3, 'used-by-ned') > 0 AS credited;
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm2', 'kim', 'ned', 'used-by-ned')$$) AS merge_ref_in_target;
SELECT sqlstate_of($$SELECT loyalty.merge_members('adm2', 'ned', 'kim', 'used-by-ned')$$) AS merge_ref_in_source;
-- Without a common ref the merge goes through; every row keeps its ref.
SELECT loyalty.merge_members('adm2', 'kim', 'ned', 'merge-kn') > 0 AS merged;
RESET ROLE;
SELECT member_id, ref, points FROM loyalty.ledger WHERE program = 'adm2' AND member_id = 'ned' ORDER BY id;
SELECT check_name, detail FROM loyalty.verify('adm2') WHERE NOT ok;
