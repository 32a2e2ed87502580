-- 0.1.0 -> 0.2.0, src/sql/80_coupon_rule.sql is new in 0.2.0: its objects as a fresh install makes them.

-- Coupons: the loyalty.coupon_rule type, ISO 4217 minor units and the pure
-- cart evaluator (docs/coupons.md).  Reads no table.

CREATE OR REPLACE FUNCTION @extschema@.currency_minor_unit(code text) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'currency_minor_unit';

COMMENT ON FUNCTION @extschema@.currency_minor_unit(text) IS
    'The minor unit (decimals) of an active ISO 4217 currency code, any case (USD 2, VND 0, KWD 3); NULL for a code that is not one';

CREATE TYPE @extschema@.coupon_rule;

CREATE OR REPLACE FUNCTION @extschema@.coupon_rule_in(cstring) RETURNS @extschema@.coupon_rule
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_rule_in';

CREATE OR REPLACE FUNCTION @extschema@.coupon_rule_out(@extschema@.coupon_rule) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_rule_out';

CREATE OR REPLACE FUNCTION @extschema@.coupon_rule_recv(internal) RETURNS @extschema@.coupon_rule
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_rule_recv';

CREATE OR REPLACE FUNCTION @extschema@.coupon_rule_send(@extschema@.coupon_rule) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_rule_send';

CREATE TYPE @extschema@.coupon_rule (
    INPUT = @extschema@.coupon_rule_in,
    OUTPUT = @extschema@.coupon_rule_out,
    RECEIVE = @extschema@.coupon_rule_recv,
    SEND = @extschema@.coupon_rule_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);

COMMENT ON TYPE @extschema@.coupon_rule IS
    'A coupon rule: options (first_order, min_items, lifecycle, categories, exclude_categories, countries, tiers, segments, valid, stack), then |-separated steps [spend AMOUNT CUR get] REWARD; e.g. ''spend 100 USD get 10 USD off | spend 200 USD get 25 USD off''; grammar in docs/coupons.md';

COMMENT ON FUNCTION @extschema@.coupon_rule_in(cstring) IS 'coupon_rule input: options, then steps, checked';

COMMENT ON FUNCTION @extschema@.coupon_rule_out(@extschema@.coupon_rule) IS 'coupon_rule output: the canonical text form';

COMMENT ON FUNCTION @extschema@.coupon_rule_recv(internal) IS 'coupon_rule binary input (version byte and text), checked like the text input';

COMMENT ON FUNCTION @extschema@.coupon_rule_send(@extschema@.coupon_rule) IS 'coupon_rule binary output (version byte and canonical text)';

CREATE OR REPLACE FUNCTION @extschema@.coupon_rule_eq(@extschema@.coupon_rule, @extschema@.coupon_rule) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_rule_eq';

CREATE OR REPLACE FUNCTION @extschema@.coupon_rule_ne(@extschema@.coupon_rule, @extschema@.coupon_rule) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_rule_ne';

COMMENT ON FUNCTION @extschema@.coupon_rule_eq(@extschema@.coupon_rule, @extschema@.coupon_rule) IS
    'The same rule: equal canonical text';

COMMENT ON FUNCTION @extschema@.coupon_rule_ne(@extschema@.coupon_rule, @extschema@.coupon_rule) IS
    'Not the same rule';

CREATE OPERATOR @extschema@.= (
    LEFTARG = @extschema@.coupon_rule, RIGHTARG = @extschema@.coupon_rule,
    FUNCTION = @extschema@.coupon_rule_eq,
    COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel
);

CREATE OPERATOR @extschema@.<> (
    LEFTARG = @extschema@.coupon_rule, RIGHTARG = @extschema@.coupon_rule,
    FUNCTION = @extschema@.coupon_rule_ne,
    COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=),
    RESTRICT = neqsel, JOIN = neqjoinsel
);

COMMENT ON OPERATOR @extschema@.= (@extschema@.coupon_rule, @extschema@.coupon_rule) IS 'equal coupon rules';

COMMENT ON OPERATOR @extschema@.<> (@extschema@.coupon_rule, @extschema@.coupon_rule) IS 'different coupon rules';

CREATE OR REPLACE FUNCTION @extschema@.coupon_rule_stack(rule @extschema@.coupon_rule) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_rule_stack';

COMMENT ON FUNCTION @extschema@.coupon_rule_stack(@extschema@.coupon_rule) IS
    'The stacking of a rule: ''exclusive'', its group name, or NULL (no stack= option: combines with every non-exclusive coupon)';

CREATE OR REPLACE FUNCTION @extschema@.coupon_rule_valid_from(rule @extschema@.coupon_rule) RETURNS date
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_rule_valid_from';

COMMENT ON FUNCTION @extschema@.coupon_rule_valid_from(@extschema@.coupon_rule) IS
    'The first date of the rule''s valid= option (inclusive), NULL without one';

CREATE OR REPLACE FUNCTION @extschema@.coupon_rule_valid_until(rule @extschema@.coupon_rule) RETURNS date
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_rule_valid_until';

COMMENT ON FUNCTION @extschema@.coupon_rule_valid_until(@extschema@.coupon_rule) IS
    'The last date of the rule''s valid= option (inclusive), NULL when open-ended';

CREATE OR REPLACE FUNCTION @extschema@.coupon_rule_first_order(rule @extschema@.coupon_rule) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_rule_first_order';

COMMENT ON FUNCTION @extschema@.coupon_rule_first_order(@extschema@.coupon_rule) IS
    'Whether the rule is for a member''s first order only (the first_order option)';

-- Not strict: a NULL argument is an error naming it (22004), not a
-- silent NULL.  STABLE: valid= dates are read in a time zone, whose rules
-- the tz database may change.
-- OUT parameters, not RETURNS TABLE: one row, usable in WHERE and CASE.
CREATE OR REPLACE FUNCTION @extschema@.coupon_evaluate(rule @extschema@.coupon_rule, cart jsonb,
                                           as_of timestamptz DEFAULT now(), time_zone text DEFAULT 'UTC',
                                           OUT eligible boolean, OUT discount numeric,
                                           OUT shipping_discount numeric, OUT gift text, OUT reason text)
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_evaluate';

COMMENT ON FUNCTION @extschema@.coupon_evaluate(@extschema@.coupon_rule, jsonb, timestamptz, text) IS
    'Evaluates a coupon rule on a cart (reads no table): one row of eligible, discount and shipping_discount (in the cart''s currency, rounded half away from zero to its minor unit), gift SKU, and the reason when not eligible; valid= dates read in time_zone';

CREATE OR REPLACE FUNCTION @extschema@.coupon_discount(rule @extschema@.coupon_rule, cart jsonb,
                                           as_of timestamptz DEFAULT now(), time_zone text DEFAULT 'UTC')
RETURNS numeric
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'coupon_discount';

COMMENT ON FUNCTION @extschema@.coupon_discount(@extschema@.coupon_rule, jsonb, timestamptz, text) IS
    'discount + shipping_discount of coupon_evaluate, 0 when the cart is not eligible';
