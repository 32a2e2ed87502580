-- Every SQL block of docs/scale-out.md, verbatim and in order
-- (scripts/check_doc_blocks.pl checks that each is here), on the cluster and
-- on a single node.  The Citus steps (nodes, distribute(), distributing the
-- orders table) run on the cluster only, output discarded: the harness has
-- set the cluster up already, so they must succeed as repeats, and psql
-- echoes them the same way on both sides.  What follows them must give the
-- same answers on both.
SET client_min_messages = warning;
SELECT loyalty.distributed() AS cluster \gset

SELECT layout, count(*) AS tables, string_agg(table_name, ', ' ORDER BY table_name) AS names
  FROM loyalty.cluster_layout() GROUP BY layout ORDER BY layout;

SELECT * FROM loyalty.cluster_rekeyed();
SELECT fn FROM loyalty.cluster_delegated() ORDER BY fn::text;

\if :cluster
SELECT nodename AS coordinator_host, nodeport AS coordinator_port FROM pg_dist_node WHERE groupid = 0 \gset
SELECT nodename AS worker_host, nodeport AS worker_port FROM pg_dist_node WHERE groupid = 1 \gset
\o /dev/null
CREATE EXTENSION IF NOT EXISTS citus;
SELECT citus_set_coordinator_host(:'coordinator_host', :coordinator_port);
SELECT citus_add_node(:'worker_host', :worker_port);

CREATE EXTENSION IF NOT EXISTS loyalty;
SELECT * FROM loyalty.distribute();
SELECT loyalty.distributed() AS distributed, loyalty.on_worker() AS on_worker;
\o
-- The repeats changed nothing: still three nodes, loyalty distributed.
SELECT count(*) = 3 AND loyalty.distributed() AND NOT loyalty.on_worker() AS cluster_as_set_up
  FROM pg_dist_node \gset
\else
\set cluster_as_set_up t
\endif
SELECT :'cluster_as_set_up' AS cluster_as_set_up;

CREATE TABLE shop_orders (id bigint, customer_id text NOT NULL, total numeric(12, 2),
                          currency text DEFAULT 'EUR', status text DEFAULT 'paid',
                          refunded numeric(12, 2) DEFAULT 0, placed_at timestamptz DEFAULT now(),
                          PRIMARY KEY (id, customer_id));
\if :cluster
\o /dev/null
SELECT create_distributed_table('shop_orders', 'customer_id', colocate_with => 'loyalty.member');
\o
-- Colocated with the members: an order's shard is its customer's node.
SELECT count(*) = 1 AS orders_colocated
  FROM pg_dist_partition o JOIN pg_dist_partition m ON m.colocationid = o.colocationid
 WHERE o.logicalrelid = 'shop_orders'::regclass AND m.logicalrelid = 'loyalty.member'::regclass \gset
\else
\set orders_colocated t
\endif
SELECT :'orders_colocated' AS orders_colocated;

SELECT loyalty.create_program('shop', base_currency => 'EUR', earn_rate => 1);
SELECT loyalty.attach_orders('shop', 'shop_orders', 'id', 'customer_id', 'total',
                             currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at');

CREATE ROLE shop_web LOGIN IN ROLE loyalty_app;
GRANT SELECT, INSERT, UPDATE ON shop_orders TO shop_web;

-- The application's calls, as the application's login role.
SET ROLE shop_web;
INSERT INTO shop_orders (id, customer_id, total) VALUES (1, 'ana', 80), (2, 'bo', 45.5), (3, 'ana', 20);
UPDATE shop_orders SET refunded = 20 WHERE id = 3;
SELECT * FROM loyalty.balance('shop', 'ana');
SELECT loyalty.redeem('shop', 'ana', 30, 'checkout-9001') > 0 AS redeemed;
SELECT kind, points, order_id FROM loyalty.history('shop', 'ana') ORDER BY kind, order_id;
-- A replay of the redemption is answered, not paid twice; bo's balance is his.
SELECT loyalty.redeem('shop', 'ana', 30, 'checkout-9001') = loyalty.redeem('shop', 'ana', 30, 'checkout-9001') AS replayed;
SELECT available FROM loyalty.balance('shop', 'ana');
SELECT available FROM loyalty.balance('shop', 'bo');
RESET ROLE;

SELECT loyalty.set_tier_ladder('shop', 'basis=spend window=365d grace=30d | Member 0 x1 | Silver 100 x1.25 | Gold 1000 x1.5');
SELECT loyalty.expire_points('shop') AS expired;
SELECT loyalty.score_rfm('shop') AS scored;
SELECT * FROM loyalty.recalculate_tiers('shop');
SELECT loyalty.fraud_check('shop', now() - interval '1 day') AS new_flags;
SELECT check_name, ok FROM loyalty.verify('shop') ORDER BY check_name;
