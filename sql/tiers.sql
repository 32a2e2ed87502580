-- The loyalty.tier_ladder type: text syntax, canonical output, every rule
-- checked with an error that points at the bad part, binary round trip,
-- tier_of at the boundaries, a program's ladder and its view.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

-- The example of the issue, and its canonical form (every option written).
SELECT 'basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2'::loyalty.tier_ladder;
-- Options are optional and in any order; names may have several words;
-- thresholds and multipliers keep their decimals and lose trailing zeros.
SELECT 'Basic 0 x1 | Gold Plus 99.50 x1.500'::loyalty.tier_ladder;
SELECT 'downgrade=drop basis=orders window=90d | New 0 x1 | Regular 3 x1.1 | VIP 12 x1.333'::loyalty.tier_ladder;
SELECT 'basis=points window=730 grace=0d|Blue 0 x1|Red 1000 x2'::loyalty.tier_ladder;
-- Output reads back as the same ladder.
SELECT l::text::loyalty.tier_ladder::text = l::text AS round_trip
  FROM (SELECT 'basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25'::loyalty.tier_ladder AS l) s;

-- Every rule, and the part it points at.
SELECT ''::loyalty.tier_ladder;
SELECT 'basis=spend window=365d'::loyalty.tier_ladder;
SELECT 'Member 10 x1 | Silver 500 x1.25'::loyalty.tier_ladder;
SELECT 'Member 0 x1 | Silver 500 x1.25 | Gold 500 x1.5'::loyalty.tier_ladder;
SELECT 'Member 0 x1 | Silver 500 x1.25 | Gold 400 x1.5'::loyalty.tier_ladder;
SELECT 'Member 0 x1 | Silver 500 x1.25 | silver 900 x1.5'::loyalty.tier_ladder;
SELECT 'Member 0 x0 | Silver 500 x1.25'::loyalty.tier_ladder;
SELECT 'Member 0 x1 | Silver 500 x101'::loyalty.tier_ladder;
SELECT 'Member 0 x1 | Silver 500 1.25'::loyalty.tier_ladder;
SELECT 'Member 0 x1 | Silver -500 x1.25'::loyalty.tier_ladder;
SELECT 'Member 0 x1 | Silver 500.12345 x1.25'::loyalty.tier_ladder;
SELECT 'Member 0 x1 | Silver x1.25'::loyalty.tier_ladder;
SELECT 'basis=revenue | Member 0 x1'::loyalty.tier_ladder;
SELECT 'window=0d | Member 0 x1'::loyalty.tier_ladder;
SELECT 'window=soon | Member 0 x1'::loyalty.tier_ladder;
SELECT 'grace=-5d | Member 0 x1'::loyalty.tier_ladder;
SELECT 'downgrade=never | Member 0 x1'::loyalty.tier_ladder;
SELECT 'colour=gold | Member 0 x1'::loyalty.tier_ladder;
SELECT 'basis=spend basis=orders | Member 0 x1'::loyalty.tier_ladder;
SELECT 'window | Member 0 x1'::loyalty.tier_ladder;
SELECT (SELECT string_agg('L' || i || ' ' || i * 10 || ' x1', ' | ') FROM generate_series(0, 16) i)::loyalty.tier_ladder;
SELECT ('A' || repeat('b', 63) || ' 0 x1')::loyalty.tier_ladder;

-- tier_of: the highest level the value reaches; below every threshold, the first.
SELECT v, loyalty.tier_of('Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2', v)
  FROM unnest(ARRAY[-1, 0, 499.9999, 500, 1999.99, 2000, 9999.99, 10000, 1e12, 'NaN']::numeric[]) v;
SELECT loyalty.tier_of('Member 0 x1', NULL) IS NULL AS null_in_null_out;

-- The levels and options as rows.
SELECT * FROM loyalty.tier_levels('basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000.5 x1.5 | Platinum 10000 x2');
SELECT * FROM loyalty.tier_ladder_options('downgrade=drop basis=orders window=90d grace=14d | New 0 x1');

-- Binary send and receive, through COPY.
CREATE TABLE ladders (l loyalty.tier_ladder);
INSERT INTO ladders VALUES
    ('basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2'),
    ('downgrade=drop basis=orders window=90d | Nouveau 0 x1 | Habitué 3 x1.1'),
    (NULL);
SELECT current_setting('data_directory') || '/loyalty_ladders.bin' AS ladder_file \gset
COPY ladders TO :'ladder_file' (FORMAT binary);
CREATE TABLE ladders_back (l loyalty.tier_ladder);
COPY ladders_back FROM :'ladder_file' (FORMAT binary);
SELECT l FROM ladders_back;
SELECT (SELECT array_agg(l::text ORDER BY l::text) FROM ladders) = (SELECT array_agg(l::text ORDER BY l::text) FROM ladders_back) AS same;
DROP TABLE ladders, ladders_back;

-- A program's ladder, as rows in loyalty.program_tier.
SELECT loyalty.create_program('tiered', 'EUR', 1);
SELECT loyalty.set_tier_ladder('tiered', 'basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2');
SELECT * FROM loyalty.program_tier WHERE program = 'tiered' ORDER BY level;
SELECT loyalty.set_tier_ladder('tiered', NULL);
SELECT count(*) FROM loyalty.program_tier WHERE program = 'tiered';
SELECT loyalty.set_tier_ladder('nope', 'Member 0 x1');

-- Tiers at work.  Spend over 365 days; Silver from 500 (x1.25), Gold from
-- 2000 (x1.5); a 30-day grace before a downgrade, one level at a time.
SELECT loyalty.create_program('tier_shop', 'USD', 1);
SELECT loyalty.set_tier_ladder('tier_shop', 'basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2');
CREATE TABLE tier_orders (id text, member text, amount numeric, status text DEFAULT 'paid',
                          refunded numeric DEFAULT 0, at timestamptz);
SELECT loyalty.attach_orders('tier_shop', 'tier_orders', 'id', 'member', 'amount', status => 'status',
                             refunded_amount => 'refunded', created_at => 'at');
-- 400 at x1; 200 more reaches 600: Silver at once (that order still earns at x1);
-- the next order earns at x1.25.
INSERT INTO tier_orders (id, member, amount, at) VALUES ('T-1', 'tess', 400, '2024-01-10');
INSERT INTO tier_orders (id, member, amount, at) VALUES ('T-2', 'tess', 200, '2024-02-10');
INSERT INTO tier_orders (id, member, amount, at) VALUES ('T-3', 'tess', 100, '2024-03-10');
-- A bulk insert in a tiered program prices each order at its member's tier too.
INSERT INTO tier_orders (id, member, amount, at) VALUES
    ('T-4', 'tess', 1500, '2024-04-10'),    -- x1.25 = 1875, and reaches Gold (2200)
    ('T-5', 'ugo', 100, '2024-04-10');      -- a new member: x1
INSERT INTO tier_orders (id, member, amount, at) VALUES ('T-6', 'tess', 100, '2024-04-11');  -- x1.5
SELECT order_id, member_id, points, multiplier FROM loyalty.order_earning WHERE program = 'tier_shop' ORDER BY order_id;
SELECT member_id, tier, tier_since FROM loyalty.member WHERE program = 'tier_shop' ORDER BY 1;
SELECT member_id, from_tier, to_tier, reason, basis_value, changed_at FROM loyalty.tier_history
 WHERE program = 'tier_shop' ORDER BY id;
-- A partial refund takes back at the multiplier the order earned at.
UPDATE tier_orders SET refunded = 50 WHERE id = 'T-3';      -- half of 125
SELECT order_id, points, reversed_target FROM loyalty.order_earning WHERE order_id = 'T-3';

-- Recalculation.  On 2024-12-01 tess still has 2250 in the window: Gold stays.
SELECT * FROM loyalty.recalculate_tiers('tier_shop', '2024-12-01');
-- On 2025-04-12 no order is left in the window: below Gold, the grace starts.
SELECT * FROM loyalty.recalculate_tiers('tier_shop', '2025-04-12');
SELECT member_id, tier, tier_below_since FROM loyalty.member WHERE program = 'tier_shop' ORDER BY 1;
-- Within the grace nothing moves; after it, one level down (step); after
-- another grace, one more.
SELECT * FROM loyalty.recalculate_tiers('tier_shop', '2025-05-01');
SELECT * FROM loyalty.recalculate_tiers('tier_shop', '2025-05-13');
SELECT member_id, tier, tier_below_since FROM loyalty.member WHERE member_id = 'tess';
SELECT * FROM loyalty.recalculate_tiers('tier_shop', '2025-06-13');
SELECT member_id, tier, tier_below_since FROM loyalty.member WHERE member_id = 'tess';
-- ugo's order of 600 reaches Silver at once.
INSERT INTO tier_orders (id, member, amount, at) VALUES ('T-7', 'ugo', 600, '2025-06-14');
SELECT member_id, tier FROM loyalty.member WHERE program = 'tier_shop' ORDER BY 1;

-- A floor from support.  Gold for ugo until 2030: raised at once.
SELECT loyalty.set_tier_floor('tier_shop', 'ugo', 'Gold', '2030-01-01');
SELECT member_id, tier, tier_floor, tier_floor_until FROM loyalty.member WHERE member_id = 'ugo';
-- Gold for tess until 2025-09-01 (already past today, so nothing moves now):
-- recalculations at dates before its end raise her, after it the grace applies.
SELECT loyalty.set_tier_floor('tier_shop', 'tess', 'Gold', '2025-09-01');
SELECT member_id, tier, tier_floor, tier_floor_until FROM loyalty.member WHERE member_id = 'tess';
SELECT * FROM loyalty.recalculate_tiers('tier_shop', '2025-08-01');
SELECT * FROM loyalty.recalculate_tiers('tier_shop', '2025-09-02');
SELECT * FROM loyalty.recalculate_tiers('tier_shop', '2025-10-03');
SELECT member_id, tier FROM loyalty.member WHERE member_id = 'tess';
SELECT from_tier, to_tier, reason, changed_at::date FROM loyalty.tier_history
 WHERE member_id = 'tess' ORDER BY id;
SELECT * FROM loyalty.tier_distribution WHERE program = 'tier_shop' ORDER BY level;
SELECT member_id, tier, lifetime_earned FROM loyalty.member_360 WHERE program = 'tier_shop' ORDER BY 1;

-- downgrade=drop goes straight to the qualifying level; basis=orders counts orders.
SELECT loyalty.create_program('tier_drop', 'USD', 1);
SELECT loyalty.set_tier_ladder('tier_drop', 'basis=orders window=30d grace=0d downgrade=drop | New 0 x1 | Regular 2 x1.5 | VIP 3 x2');
CREATE TABLE drop_orders (id text, member text, amount numeric, at timestamptz);
SELECT loyalty.attach_orders('tier_drop', 'drop_orders', 'id', 'member', 'amount', created_at => 'at');
INSERT INTO drop_orders VALUES ('D-1', 'vic', 10, '2024-01-01'), ('D-2', 'vic', 10, '2024-01-02'),
                               ('D-3', 'vic', 10, '2024-01-03'), ('D-4', 'vic', 10, '2024-01-04');
SELECT order_id, points FROM loyalty.order_earning WHERE program = 'tier_drop' ORDER BY 1;
SELECT * FROM loyalty.recalculate_tiers('tier_drop', '2024-03-01');   -- grace 0: the clock starts
SELECT * FROM loyalty.recalculate_tiers('tier_drop', '2024-03-02');   -- straight to New
SELECT from_tier, to_tier, reason FROM loyalty.tier_history WHERE program = 'tier_drop' ORDER BY id;

-- In committed chunks: the same result as one pass.  Two programs get the
-- same orders; one is recalculated at once, the other two members at a time.
SELECT loyalty.create_program(p, 'USD', 1) FROM unnest(ARRAY['tier_one', 'tier_chunked']) p;
SELECT loyalty.set_tier_ladder(p, 'basis=spend window=365d grace=0d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5')
  FROM unnest(ARRAY['tier_one', 'tier_chunked']) p;
CREATE TABLE one_orders (id text, member text, amount numeric, at timestamptz);
CREATE TABLE chunked_orders (LIKE one_orders);
SELECT loyalty.attach_orders('tier_one', 'one_orders', 'id', 'member', 'amount', created_at => 'at');
SELECT loyalty.attach_orders('tier_chunked', 'chunked_orders', 'id', 'member', 'amount', created_at => 'at');
INSERT INTO one_orders SELECT 'c' || g, 'k' || (g % 5), 150 * (g % 5 + 1), '2024-01-01'::timestamptz + g * interval '1 day'
  FROM generate_series(1, 20) g;
INSERT INTO chunked_orders SELECT * FROM one_orders;
SELECT * FROM loyalty.recalculate_tiers('tier_one', '2025-01-10');
CALL loyalty.recalculate_tiers_batched('tier_chunked', '2025-01-10', 2);
SELECT (SELECT array_agg(member_id || ':' || coalesce(tier, '-') || ':' || coalesce(tier_below_since::text, '-') ORDER BY member_id)
          FROM loyalty.member WHERE program = 'tier_one') =
       (SELECT array_agg(member_id || ':' || coalesce(tier, '-') || ':' || coalesce(tier_below_since::text, '-') ORDER BY member_id)
          FROM loyalty.member WHERE program = 'tier_chunked') AS same_tiers;
SELECT member_id, tier, tier_below_since FROM loyalty.member WHERE program = 'tier_chunked' ORDER BY 1;
-- The chunk function itself: after the last member there is nothing left.
SELECT * FROM loyalty.recalculate_tiers_chunk('tier_chunked', '2025-01-10', 'k4', 2);
SELECT * FROM loyalty.recalculate_tiers_chunk('tier_chunked', '2025-01-10', NULL, 0);

-- Bad input.
SELECT loyalty.recalculate_tiers('tiered', '2024-01-01');
SELECT loyalty.recalculate_tiers('nope', '2024-01-01');
SELECT loyalty.recalculate_tiers('tier_shop', NULL);
SELECT loyalty.set_tier_floor('tier_shop', 'tess', 'Diamond', '2030-01-01');
SELECT loyalty.set_tier_floor('tier_shop', 'tess', NULL, '2030-01-01');
SELECT loyalty.set_tier_floor('tiered', 'tess', 'Gold', '2030-01-01');
SELECT check_name, ok FROM loyalty.verify('tier_shop');
