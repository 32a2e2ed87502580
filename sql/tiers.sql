-- The loyalty.tier_ladder type: text syntax, canonical output, every rule
-- checked with an error that points at the bad part, binary round trip,
-- tier_of at the boundaries, a program's ladder and its view.
SET timezone = 'UTC';
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
