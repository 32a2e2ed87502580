-- 0.1.0 -> 0.2.0, src/sql/37_reversal.sql is new in 0.2.0: its objects as a fresh install makes them.

-- Reversals outside the order flow, for the fraud review and referrals
-- (reversal.c).  Internal: the features' own functions call them.

-- Not STRICT: a NULL argument is an error.
CREATE OR REPLACE FUNCTION @extschema@.reverse_order(program text, order_id text, reason text)
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_reverse_order';

COMMENT ON FUNCTION @extschema@.reverse_order(text, text, text) IS
    'Reverses what is left of an order''s points (ledger kind reverse, with reason) so that a later refund, cancel or delete reverses nothing more; idempotent; returns the points reversed; internal';

-- Not STRICT: a NULL argument is an error.
CREATE OR REPLACE FUNCTION @extschema@.take_back(program text, member_id text, points bigint, ref text,
                                     reason text, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_take_back';

COMMENT ON FUNCTION @extschema@.take_back(text, text, bigint, text, text, timestamptz) IS
    'Takes points back from a member (ledger kind reverse, not tied to an order): soonest-expiring lots first, the rest as debt, or not taken under refund_policy within_balance; idempotent on ref (LY003 when reused for another call); returns the points taken back; internal';
