-- loyalty extension install script.  Built by concatenating src/sql/[0-9]*.sql.
\echo Use "CREATE EXTENSION loyalty" to load this file. \quit

/*
 * Roles are cluster-wide: create them once, keep them on DROP EXTENSION.
 * loyalty_admin configures programs; loyalty_app is what the application
 * connects as (balance, redeem, enroll); loyalty_reader is for BI tools.
 */
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['loyalty_admin', 'loyalty_app', 'loyalty_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;

GRANT USAGE ON SCHEMA @extschema@ TO loyalty_admin, loyalty_app, loyalty_reader;

-- What a ledger row records, and the states of a member.
CREATE TYPE @extschema@.ledger_kind AS ENUM ('earn', 'adjust', 'unredeem', 'redeem', 'reverse', 'expire');
COMMENT ON TYPE @extschema@.ledger_kind IS
    'Ledger row kinds: earn (order or named credit), adjust (manual credit), unredeem (cancelled redemption) add points; redeem, reverse (refund), expire take them';
CREATE TYPE @extschema@.member_status AS ENUM ('active', 'held', 'forgotten');
COMMENT ON TYPE @extschema@.member_status IS
    'active; held: earns but cannot redeem (fraud review); forgotten: erased on request';

-- A program: one loyalty scheme with its own currency, rates and policies.
CREATE TABLE @extschema@.program (
    code            text PRIMARY KEY
                    CHECK (code ~ '^[A-Za-z0-9_.-]{1,63}$'),
    base_currency   text NOT NULL CHECK (base_currency ~ '^[A-Z]{3}$'),
    earn_rate       numeric NOT NULL CHECK (earn_rate >= 0),
    pending_days    integer NOT NULL DEFAULT 0 CHECK (pending_days >= 0),
    expire_after    interval CHECK (expire_after > interval '0'),
    refund_policy   text NOT NULL DEFAULT 'debt'
                    CHECK (refund_policy IN ('debt', 'within_balance')),
    timezone        text NOT NULL DEFAULT 'UTC',
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.program IS
    'Loyalty programs: base currency, earn rate (points per base unit), pending days, expiry, refund policy, time zone';

-- Members, with the cached account figures that loyalty.verify() proves.
CREATE TABLE @extschema@.member (
    program             text NOT NULL REFERENCES @extschema@.program (code),
    member_id           text NOT NULL,
    profile             jsonb NOT NULL DEFAULT '{}',
    status              @extschema@.member_status NOT NULL DEFAULT 'active',
    enrolled_at         timestamptz NOT NULL DEFAULT now(),
    balance             bigint NOT NULL DEFAULT 0,
    debt                bigint NOT NULL DEFAULT 0 CHECK (debt >= 0),
    lifetime_earned     bigint NOT NULL DEFAULT 0,
    lifetime_redeemed   bigint NOT NULL DEFAULT 0,
    lifetime_reversed   bigint NOT NULL DEFAULT 0,
    lifetime_expired    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (program, member_id)
);
COMMENT ON TABLE @extschema@.member IS
    'Members per program: profile, status and cached balances (balance = sum of ledger points = sum of lot remainders - debt)';
COMMENT ON COLUMN @extschema@.member.balance IS 'Cached sum of the member''s ledger points (pending and available, minus debt)';
COMMENT ON COLUMN @extschema@.member.debt IS 'Points reversed beyond what the member''s lots held (refund_policy debt); paid from later points';

-- The append-only ledger: every change of a balance is one row here.
CREATE SEQUENCE @extschema@.ledger_id_seq;
CREATE TABLE @extschema@.ledger (
    id          bigint PRIMARY KEY DEFAULT nextval('@extschema@.ledger_id_seq'),
    program     text NOT NULL,
    member_id   text NOT NULL,
    kind        @extschema@.ledger_kind NOT NULL,
    points      bigint NOT NULL,
    ref         text,
    order_id    text,
    lot_id      bigint,
    related_id  bigint,
    reason      text,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- Credits are positive, debits negative (the enum lists credits first).
    CONSTRAINT ledger_sign CHECK ((points > 0) = (kind < 'redeem'))
);
ALTER SEQUENCE @extschema@.ledger_id_seq OWNED BY @extschema@.ledger.id;
CREATE UNIQUE INDEX ledger_ref_key ON @extschema@.ledger (program, ref) WHERE ref IS NOT NULL;
CREATE UNIQUE INDEX ledger_unredeem_key ON @extschema@.ledger (related_id) WHERE kind = 'unredeem';
CREATE INDEX ledger_member_idx ON @extschema@.ledger (program, member_id, id);
COMMENT ON TABLE @extschema@.ledger IS
    'Append-only points ledger: earn, adjust (manual credit), redeem, unredeem (cancelled redemption), reverse (refund), expire';

-- Earn lots: what is left of each credit, when it becomes available and expires.
CREATE TABLE @extschema@.lot (
    id              bigint PRIMARY KEY,
    program         text NOT NULL,
    member_id       text NOT NULL,
    order_id        text,
    earned          bigint NOT NULL,
    remaining       bigint NOT NULL,
    available_at    timestamptz NOT NULL,
    expires_at      timestamptz,
    CONSTRAINT lot_remaining_range CHECK (remaining BETWEEN 0 AND earned)
);
CREATE INDEX lot_member_idx ON @extschema@.lot (program, member_id);
CREATE INDEX lot_expiry_idx ON @extschema@.lot (expires_at) WHERE expires_at IS NOT NULL;
COMMENT ON TABLE @extschema@.lot IS
    'Earn lots (id = the crediting ledger row): remaining points, available_at (end of pending), expires_at';

-- Which lots each redemption, reversal, expiry or debt settlement touched.
CREATE TABLE @extschema@.lot_use (
    lot_id      bigint NOT NULL,
    ledger_id   bigint,
    program     text NOT NULL,
    member_id   text NOT NULL,
    points      bigint NOT NULL CHECK (points <> 0),
    used_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lot_use_ledger_idx ON @extschema@.lot_use (ledger_id);
COMMENT ON TABLE @extschema@.lot_use IS
    'Points taken from (positive) or given back to (negative) a lot, by ledger row; ledger_id NULL = debt settlement';

-- Per-order loyalty state, so every order earns once and reverses exactly.
CREATE TABLE @extschema@.order_earning (
    program         text NOT NULL,
    order_id        text NOT NULL,
    member_id       text,
    amount          numeric,
    currency        text,
    fx_rate         numeric,
    points          bigint NOT NULL DEFAULT 0,
    generation      integer NOT NULL DEFAULT 1,
    refunded_amount numeric NOT NULL DEFAULT 0,
    reversed_target bigint NOT NULL DEFAULT 0,
    earned_total    bigint NOT NULL DEFAULT 0,
    reversed_total  bigint NOT NULL DEFAULT 0,
    closed          boolean NOT NULL DEFAULT false,
    ordered_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program, order_id),
    CONSTRAINT order_earning_totals CHECK (reversed_target BETWEEN 0 AND points
                                           AND reversed_total BETWEEN 0 AND earned_total)
);
COMMENT ON TABLE @extschema@.order_earning IS
    'One row per order seen by the accrual trigger: member and points of the current generation (a changed amount or member starts a new one), reversal the refunds call for, totals over all generations, closed (cancelled or deleted)';
COMMENT ON COLUMN @extschema@.order_earning.reversed_target IS
    'Points of the current generation that refunds and cancellation call for; with refund_policy within_balance more than was actually reversed';

-- Currency conversion into a program's base currency.
CREATE TABLE @extschema@.fx_rate (
    from_currency   text NOT NULL CHECK (from_currency ~ '^[A-Z]{3}$'),
    to_currency     text NOT NULL CHECK (to_currency ~ '^[A-Z]{3}$'),
    rate            numeric NOT NULL CHECK (rate > 0),
    valid_from      timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (from_currency, to_currency, valid_from),
    CHECK (from_currency <> to_currency)
);
COMMENT ON TABLE @extschema@.fx_rate IS
    'FX rates: 1 from_currency = rate to_currency from valid_from on; the inverse pair is used when only it exists';

-- Which application tables feed which program.
CREATE TABLE @extschema@.order_source (
    program                 text NOT NULL REFERENCES @extschema@.program (code),
    orders                  regclass NOT NULL,
    order_id_column         name NOT NULL,
    member_id_column        name NOT NULL,
    amount_column           name NOT NULL,
    currency_column         name,
    status_column           name,
    refunded_amount_column  name,
    created_at_column       name,
    trigger_name            name NOT NULL,
    reversal_trigger_name   name NOT NULL,
    attached_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program, orders)
);
COMMENT ON TABLE @extschema@.order_source IS
    'Application orders tables attached with loyalty.attach_orders() and their column mapping';

-- Order events the trigger could not process for a configuration reason.
CREATE SEQUENCE @extschema@.dead_letter_id_seq;
CREATE TABLE @extschema@.dead_letter (
    id              bigint PRIMARY KEY DEFAULT nextval('@extschema@.dead_letter_id_seq'),
    program         text NOT NULL,
    event           text NOT NULL CHECK (event IN ('INSERT', 'UPDATE', 'DELETE')),
    order_id        text,
    member_id       text,
    amount          numeric,
    currency        text,
    status          text,
    refunded_amount numeric,
    ordered_at      timestamptz NOT NULL,
    reason          text NOT NULL,
    sqlstate        text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    resolved_at     timestamptz
);
ALTER SEQUENCE @extschema@.dead_letter_id_seq OWNED BY @extschema@.dead_letter.id;
CREATE INDEX dead_letter_open_idx ON @extschema@.dead_letter (program, order_id) WHERE resolved_at IS NULL;
COMMENT ON TABLE @extschema@.dead_letter IS
    'Order events kept aside because of loyalty configuration (unknown currency, missing FX rate); loyalty.retry_dead_letters() replays them';
COMMENT ON COLUMN @extschema@.dead_letter.order_id IS
    'NULL when the orders row had no order id: such a letter is never replayed, a person must look at it';

-- pg_dump must keep the data of every table above.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.program', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.member', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ledger', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ledger_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.lot', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.lot_use', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_earning', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.fx_rate', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_source', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.dead_letter', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.dead_letter_id_seq', '');

-- The ledger is append-only, even for the extension's own functions.
CREATE FUNCTION @extschema@.refuse_ledger_change() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'loyalty.ledger is append-only'
        USING ERRCODE = 'LY004',
              DETAIL = pg_catalog.format('%s on the ledger was refused.', TG_OP),
              HINT = 'Correct a balance with loyalty.earn() or loyalty.redeem(), which add ledger rows.';
END
$$;
COMMENT ON FUNCTION @extschema@.refuse_ledger_change() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE on loyalty.ledger';
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON @extschema@.ledger
    FOR EACH ROW EXECUTE FUNCTION @extschema@.refuse_ledger_change();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON @extschema@.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.refuse_ledger_change();

-- Backends cache the program the accrual trigger reads; any change to
-- programs or attachments tells every backend to drop its copy.
CREATE FUNCTION @extschema@.invalidate_program_cache() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'loyalty_invalidate_program_cache';
COMMENT ON FUNCTION @extschema@.invalidate_program_cache() IS
    'Trigger: a change to loyalty.program or loyalty.order_source invalidates the program cache of every backend';
CREATE TRIGGER program_cache_invalidation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.program FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_program_cache();
CREATE TRIGGER order_source_cache_invalidation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.order_source FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_program_cache();
-- Programs, members and FX rates: configuration, plain SQL.

-- Raises unless code is a well-formed ISO 4217 code; returns it upper-cased.
CREATE FUNCTION @extschema@.check_currency(code text, what text DEFAULT 'currency')
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@
AS $$
BEGIN
    IF code IS NULL THEN
        RAISE EXCEPTION '% must not be null', what USING ERRCODE = '22004';
    END IF;
    IF upper(code) !~ '^[A-Z]{3}$' THEN
        RAISE EXCEPTION 'invalid % code: "%"', what, code
            USING ERRCODE = '22023',
                  DETAIL = 'A currency code is three letters (ISO 4217).',
                  HINT = 'Use a code such as USD, EUR, GBP, VND or IDR.';
    END IF;
    RETURN upper(code);
END
$$;
COMMENT ON FUNCTION @extschema@.check_currency(text, text) IS
    'Validates an ISO 4217 currency code (three letters) and returns it upper-cased';

-- Raises 42704 unless the program exists.
CREATE FUNCTION @extschema@.require_program(program text)
RETURNS @extschema@.program
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@
AS $$
DECLARE
    p loyalty.program;
BEGIN
    IF program IS NULL THEN
        RAISE EXCEPTION 'program must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO p FROM loyalty.program x WHERE x.code = require_program.program;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'program "%" does not exist', program
            USING ERRCODE = '42704',
                  HINT = 'Create it with loyalty.create_program().';
    END IF;
    RETURN p;
END
$$;
COMMENT ON FUNCTION @extschema@.require_program(text) IS 'Returns the program row or raises 42704 when it does not exist';

CREATE FUNCTION @extschema@.create_program(
    code text,
    base_currency text DEFAULT 'USD',
    earn_rate numeric DEFAULT 1,
    pending_days integer DEFAULT 0,
    expire_after interval DEFAULT NULL,
    refund_policy text DEFAULT 'debt',
    timezone text DEFAULT 'UTC')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
DECLARE
    wanted loyalty.program;
    existing loyalty.program;
BEGIN
    IF code IS NULL THEN
        RAISE EXCEPTION 'program code must not be null' USING ERRCODE = '22004';
    END IF;
    IF code !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid program code: "%"', code
            USING ERRCODE = '22023',
                  DETAIL = 'A program code is 1 to 63 letters, digits, "_", "." or "-".';
    END IF;
    IF earn_rate IS NULL OR earn_rate < 0 OR earn_rate = 'NaN' THEN
        RAISE EXCEPTION 'invalid earn_rate: %', coalesce(earn_rate::text, 'NULL')
            USING ERRCODE = '22023',
                  DETAIL = 'earn_rate is the points earned per unit of base currency and must be zero or more.';
    END IF;
    IF pending_days IS NULL OR pending_days < 0 THEN
        RAISE EXCEPTION 'invalid pending_days: %', coalesce(pending_days::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'pending_days must be zero or more.';
    END IF;
    IF expire_after IS NOT NULL AND expire_after <= interval '0' THEN
        RAISE EXCEPTION 'invalid expire_after: %', expire_after
            USING ERRCODE = '22023', DETAIL = 'expire_after must be positive, or NULL for points that never expire.';
    END IF;
    IF refund_policy IS NULL OR refund_policy NOT IN ('debt', 'within_balance') THEN
        RAISE EXCEPTION 'unknown refund_policy: "%"', coalesce(refund_policy, 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Use ''debt'' (a refund may take the balance below zero) or ''within_balance'' (a refund takes at most what is left).';
    END IF;
    IF timezone IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = timezone)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_abbrevs WHERE abbrev = timezone) THEN
        RAISE EXCEPTION 'unknown time zone: "%"', coalesce(timezone, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use a name from pg_timezone_names, such as Europe/London or Asia/Ho_Chi_Minh.';
    END IF;

    wanted.code := code;
    wanted.base_currency := loyalty.check_currency(base_currency, 'base currency');
    wanted.earn_rate := earn_rate;
    wanted.pending_days := pending_days;
    wanted.expire_after := expire_after;
    wanted.refund_policy := refund_policy;
    wanted.timezone := timezone;
    wanted.created_at := now();
    INSERT INTO loyalty.program (code, base_currency, earn_rate, pending_days, expire_after,
                                 refund_policy, timezone, created_at)
    VALUES (wanted.code, wanted.base_currency, wanted.earn_rate, wanted.pending_days,
            wanted.expire_after, wanted.refund_policy, wanted.timezone, wanted.created_at)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        -- Creating the same program twice is fine; creating it differently is not.
        SELECT * INTO existing FROM loyalty.program p WHERE p.code = wanted.code;
        IF (existing.base_currency, existing.earn_rate, existing.pending_days, existing.expire_after,
            existing.refund_policy, existing.timezone)
           IS DISTINCT FROM (wanted.base_currency, wanted.earn_rate, wanted.pending_days, wanted.expire_after,
            wanted.refund_policy, wanted.timezone) THEN
            RAISE EXCEPTION 'program "%" already exists with other settings', code
                USING ERRCODE = '42710',
                      DETAIL = pg_catalog.format('Existing: currency %s, earn_rate %s, pending_days %s, expire_after %s, refund_policy %s, timezone %s.',
                          existing.base_currency, existing.earn_rate, existing.pending_days,
                          coalesce(existing.expire_after::text, 'never'), existing.refund_policy, existing.timezone);
        END IF;
    END IF;
    RETURN code;
END
$$;
COMMENT ON FUNCTION @extschema@.create_program(text, text, numeric, integer, interval, text, text) IS
    'Creates a loyalty program (idempotent for identical settings); returns its code';

CREATE FUNCTION @extschema@.enroll(program text, member_id text, profile jsonb DEFAULT '{}')
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF member_id IS NULL OR member_id = '' THEN
        RAISE EXCEPTION 'member_id must not be null or empty' USING ERRCODE = '22004';
    END IF;
    IF profile IS NULL OR jsonb_typeof(profile) <> 'object' THEN
        RAISE EXCEPTION 'profile must be a JSON object, not %', coalesce(jsonb_typeof(profile), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO loyalty.member AS m (program, member_id, profile)
    VALUES (program, member_id, profile)
    ON CONFLICT ON CONSTRAINT member_pkey DO NOTHING;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION @extschema@.enroll(text, text, jsonb) IS
    'Enrolls a member (idempotent: true when enrolled now, false when already a member; the profile is not changed)';

CREATE FUNCTION @extschema@.set_member_status(program text, member_id text, status text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF status IS NULL OR status NOT IN ('active', 'held', 'forgotten') THEN
        RAISE EXCEPTION 'unknown member status: "%"', coalesce(status, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use active, held or forgotten.';
    END IF;
    UPDATE loyalty.member m SET status = set_member_status.status::loyalty.member_status
     WHERE m.program = set_member_status.program AND m.member_id = set_member_status.member_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'member "%" is not enrolled in program "%"', member_id, program
            USING ERRCODE = '42704';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.set_member_status(text, text, text) IS
    'Sets a member''s status: active, held (earns but cannot redeem) or forgotten';

CREATE FUNCTION @extschema@.set_fx_rate(
    from_currency text, to_currency text, rate numeric,
    valid_from timestamptz DEFAULT '-infinity')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
DECLARE
    f text := loyalty.check_currency(from_currency, 'from currency');
    t text := loyalty.check_currency(to_currency, 'to currency');
BEGIN
    IF f = t THEN
        RAISE EXCEPTION 'cannot set an FX rate from % to itself', f USING ERRCODE = '22023';
    END IF;
    IF rate IS NULL OR rate <= 0 OR rate = 'NaN' THEN
        RAISE EXCEPTION 'invalid FX rate for % to %: %', f, t, coalesce(rate::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'A rate is the amount of to_currency one unit of from_currency buys, and is positive.';
    END IF;
    IF valid_from IS NULL THEN
        RAISE EXCEPTION 'valid_from must not be null' USING ERRCODE = '22004', HINT = 'Use ''-infinity'' for a rate valid for all past orders.';
    END IF;
    INSERT INTO loyalty.fx_rate AS r VALUES (f, t, rate, valid_from)
    ON CONFLICT ON CONSTRAINT fx_rate_pkey DO UPDATE SET rate = excluded.rate;
END
$$;
COMMENT ON FUNCTION @extschema@.set_fx_rate(text, text, numeric, timestamptz) IS
    'Sets the rate of from_currency in to_currency from valid_from on (replaces the rate of the same start)';

-- The newest rate valid at a time: the direct pair, else the reverse pair
-- (inverse = true: divide by rate).  No row when neither exists (NULLs too).
-- Deliberately neither STRICT nor with a SET clause: PostgreSQL then inlines
-- it into the accrual trigger's cached plan instead of planning it per call.
CREATE FUNCTION @extschema@.fx_quote(from_currency text, to_currency text, at timestamptz,
                                     OUT rate numeric, OUT inverse boolean)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.rate, c.inverse FROM (
        SELECT f.rate, f.valid_from, false AS inverse FROM loyalty.fx_rate f
         WHERE f.from_currency OPERATOR(pg_catalog.=) fx_quote.from_currency
           AND f.to_currency OPERATOR(pg_catalog.=) fx_quote.to_currency
           AND f.valid_from OPERATOR(pg_catalog.<=) fx_quote.at
        UNION ALL
        SELECT f.rate, f.valid_from, true FROM loyalty.fx_rate f
         WHERE f.from_currency OPERATOR(pg_catalog.=) fx_quote.to_currency
           AND f.to_currency OPERATOR(pg_catalog.=) fx_quote.from_currency
           AND f.valid_from OPERATOR(pg_catalog.<=) fx_quote.at
    ) c ORDER BY c.valid_from DESC, c.inverse LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.fx_quote(text, text, timestamptz) IS
    'Newest FX rate valid at a time: the direct pair, else the reverse pair with inverse = true; no row when none';

CREATE FUNCTION @extschema@.fx_rate_at(from_currency text, to_currency text, at timestamptz)
RETURNS numeric
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, @extschema@
AS $$
    SELECT CASE WHEN upper(from_currency) = upper(to_currency) THEN 1::numeric
                ELSE (SELECT CASE WHEN q.inverse THEN 1 / q.rate ELSE q.rate END
                        FROM loyalty.fx_quote(upper(from_currency), upper(to_currency), at) q) END
$$;
COMMENT ON FUNCTION @extschema@.fx_rate_at(text, text, timestamptz) IS
    'What one unit of from_currency is worth in to_currency at a time; NULL when no rate is known';
-- Attaching the accrual trigger to the application's own orders table.

-- The C trigger, installed twice by attach_orders(): AFTER INSERT for each
-- statement (new rows earn in batches) and AFTER UPDATE OR DELETE for each
-- row (refunds, cancels, moves).  Arguments: program, then the mapped column
-- names (order id, member id, amount, currency, status, refunded amount,
-- created at; '' where not mapped).  SECURITY DEFINER so the application's
-- role needs no rights on the loyalty tables.
CREATE FUNCTION @extschema@.orders_trigger() RETURNS trigger
LANGUAGE c SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS 'MODULE_PATHNAME', 'loyalty_orders_trigger';
COMMENT ON FUNCTION @extschema@.orders_trigger() IS
    'Accrual trigger installed by loyalty.attach_orders(): earns on INSERT, reverses on refund, cancel and DELETE';

-- Raises unless column exists in orders and has one of the wanted types.
CREATE FUNCTION @extschema@.check_order_column(
    orders regclass, role text, col text, wanted regtype[] DEFAULT NULL)
RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@
AS $$
DECLARE
    coltype regtype;
BEGIN
    IF col IS NULL OR col = '' THEN
        RAISE EXCEPTION '% column must not be null or empty', role USING ERRCODE = '22004';
    END IF;
    SELECT a.atttypid::regtype INTO coltype
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = orders AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, orders
            USING ERRCODE = '42703',
                  DETAIL = pg_catalog.format('It was given as the %s column.', role);
    END IF;
    IF wanted IS NOT NULL AND coltype <> ALL (wanted) THEN
        RAISE EXCEPTION 'column "%" of relation % has type %, which cannot be used as the % column', col, orders, coltype, role
            USING ERRCODE = '42804',
                  HINT = pg_catalog.format('Use a column of type %s.', array_to_string(wanted, ', '));
    END IF;
    RETURN col::name;
END
$$;
COMMENT ON FUNCTION @extschema@.check_order_column(regclass, text, text, regtype[]) IS
    'Validates a column mapping of attach_orders(): the column exists and has a usable type';

CREATE FUNCTION @extschema@.attach_orders(
    program text, orders regclass, order_id text, member_id text, amount text,
    currency text DEFAULT NULL, status text DEFAULT NULL,
    refunded_amount text DEFAULT NULL, created_at text DEFAULT NULL)
RETURNS name
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
DECLARE
    amount_types regtype[] := ARRAY['numeric', 'smallint', 'integer', 'bigint', 'real', 'double precision']::regtype[];
    text_types regtype[] := ARRAY['text', 'character varying', 'character']::regtype[];
    time_types regtype[] := ARRAY['timestamp with time zone', 'timestamp without time zone', 'date']::regtype[];
    src loyalty.order_source;
    tg name;
    tg_reversal name;
    trigger_args text;
BEGIN
    PERFORM loyalty.require_program(program);
    IF orders IS NULL THEN
        RAISE EXCEPTION 'orders table must not be null' USING ERRCODE = '22004';
    END IF;
    IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = orders) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', orders USING ERRCODE = '42809';
    END IF;
    tg := left('loyalty_accrual_' || program, 63);
    tg_reversal := left('loyalty_reversal_' || program, 63);
    src := ROW(program, orders,
        loyalty.check_order_column(orders, 'order_id', order_id),
        loyalty.check_order_column(orders, 'member_id', member_id),
        loyalty.check_order_column(orders, 'amount', amount, amount_types),
        CASE WHEN currency IS NOT NULL THEN loyalty.check_order_column(orders, 'currency', currency, text_types) END,
        CASE WHEN status IS NOT NULL THEN loyalty.check_order_column(orders, 'status', status) END,
        CASE WHEN refunded_amount IS NOT NULL THEN loyalty.check_order_column(orders, 'refunded_amount', refunded_amount, amount_types) END,
        CASE WHEN created_at IS NOT NULL THEN loyalty.check_order_column(orders, 'created_at', created_at, time_types) END,
        tg, tg_reversal, now());

    IF EXISTS (SELECT 1 FROM loyalty.order_source s WHERE s.program = src.program AND s.orders = src.orders) THEN
        RAISE EXCEPTION 'program "%" is already attached to %', program, orders
            USING ERRCODE = '42710', HINT = 'Detach it first with loyalty.detach_orders().';
    END IF;
    INSERT INTO loyalty.order_source VALUES (src.*);
    trigger_args := pg_catalog.format('%L, %L, %L, %L, %L, %L, %L, %L',
        program, src.order_id_column, src.member_id_column, src.amount_column,
        coalesce(src.currency_column, ''), coalesce(src.status_column, ''),
        coalesce(src.refunded_amount_column, ''), coalesce(src.created_at_column, ''));
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS loyalty_new_orders '
        'FOR EACH STATEMENT EXECUTE FUNCTION loyalty.orders_trigger(%s)', tg, orders, trigger_args);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER %I AFTER UPDATE OR DELETE ON %s '
        'FOR EACH ROW EXECUTE FUNCTION loyalty.orders_trigger(%s)', tg_reversal, orders, trigger_args);
    RETURN tg;
END
$$;
COMMENT ON FUNCTION @extschema@.attach_orders(text, regclass, text, text, text, text, text, text, text) IS
    'Installs the accrual triggers on an application orders table (INSERT per statement, UPDATE/DELETE per row), mapping its columns; returns the INSERT trigger''s name';

CREATE FUNCTION @extschema@.detach_orders(program text, orders regclass)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
DECLARE
    tg name;
    tg_reversal name;
BEGIN
    DELETE FROM loyalty.order_source s WHERE s.program = detach_orders.program AND s.orders = detach_orders.orders
    RETURNING s.trigger_name, s.reversal_trigger_name INTO tg, tg_reversal;
    IF tg IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', tg, orders);
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', tg_reversal, orders);
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.detach_orders(text, regclass) IS
    'Removes the accrual trigger of a program from an orders table; false when it was not attached';

CREATE FUNCTION @extschema@.retry_dead_letters(program text)
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS 'MODULE_PATHNAME', 'loyalty_retry_dead_letters';
COMMENT ON FUNCTION @extschema@.retry_dead_letters(text) IS
    'Replays a program''s unresolved dead letters in order; returns how many were resolved now';
-- Per-member order activity, kept by a trigger on loyalty.order_earning so
-- that RFM scoring and tier recalculation read one row per member instead
-- of every order.
--
-- An order counts when it has a member, is not closed, has a positive
-- amount and an FX rate, and something is left after refunds; it counts
-- once, for its net value in base currency rounded to 4 decimals (the
-- figure of loyalty.order_value.net).
--
-- activity_total holds each member's counted orders of all time;
-- activity_day the same per UTC day; activity_before the days up to the
-- program's horizon, folded into one row per member by the batch passes
-- (which then delete those day rows).  The totals of a window (after, upto]
-- are: all time, less the folded days, less the day rows outside the window,
-- less the orders of its edge days that fall outside it, read by time.
--
-- A day row holds the orders of (midnight, next midnight] UTC, closed at
-- its end like the windows, so that a window starting or ending at
-- midnight (a nightly pass) is made of whole days: an order at exactly
-- midnight belongs to the day that ends then.

CREATE TABLE @extschema@.activity_total (
    program         text NOT NULL,
    member_id       text NOT NULL,
    orders          bigint NOT NULL DEFAULT 0,
    net_spend       numeric NOT NULL DEFAULT 0,
    last_order_at   timestamptz,
    PRIMARY KEY (program, member_id)
);
COMMENT ON TABLE @extschema@.activity_total IS
    'Each member''s counted orders of all time (kept by a trigger on loyalty.order_earning)';
COMMENT ON COLUMN @extschema@.activity_total.orders IS 'Orders with a member, not closed, positive amount, something left after refunds';
COMMENT ON COLUMN @extschema@.activity_total.net_spend IS 'Sum of those orders'' net values in base currency, each rounded to 4 decimals';
COMMENT ON COLUMN @extschema@.activity_total.last_order_at IS 'Time of the latest of those orders (NULL when none is left)';

CREATE TABLE @extschema@.activity_day (
    program         text NOT NULL,
    day             date NOT NULL,
    member_id       text NOT NULL,
    orders          integer NOT NULL DEFAULT 0,
    net_spend       numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (program, day, member_id)
);
COMMENT ON TABLE @extschema@.activity_day IS
    'Each member''s counted orders per UTC day after the program''s horizon (and late changes to days before it)';
COMMENT ON COLUMN @extschema@.activity_day.day IS 'UTC day: orders of (its midnight, the next midnight], see loyalty.activity_day_of';

-- The day row of an order time: the UTC day whose (midnight, next midnight]
-- holds it (the C twin is ActivityDayOf in activity.c).
CREATE FUNCTION @extschema@.activity_day_of(t timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT ((t AT TIME ZONE 'UTC') - interval '1 microsecond')::date $$;
COMMENT ON FUNCTION @extschema@.activity_day_of(timestamptz) IS
    'The UTC day of loyalty.activity_day that holds an order time: (midnight, next midnight], closed at the end';

CREATE TABLE @extschema@.activity_before (
    program         text NOT NULL,
    member_id       text NOT NULL,
    orders          bigint NOT NULL DEFAULT 0,
    net_spend       numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (program, member_id)
);
COMMENT ON TABLE @extschema@.activity_before IS
    'Each member''s counted orders of the days up to the program''s horizon, folded by the batch passes';

CREATE TABLE @extschema@.activity_horizon (
    program         text PRIMARY KEY,
    through         date NOT NULL DEFAULT '-infinity'
);
COMMENT ON TABLE @extschema@.activity_horizon IS
    'Per program, the last UTC day folded into loyalty.activity_before';

-- The orders of a time range: the parts of a window's edge days that lie
-- outside it, read by member_activity.
CREATE INDEX order_earning_time_idx ON @extschema@.order_earning (program, ordered_at);

-- Not dumped by pg_dump: restoring loyalty.order_earning runs the trigger
-- below, which builds them again (all days as day rows; the next pass folds).

-- The orders that count, with their net value: the rule above, which the
-- trigger applies row by row in C (CountRow in activity.c).
CREATE VIEW @extschema@.counted_order AS
    SELECT o.program, o.order_id, o.member_id, o.ordered_at,
           round((o.amount - o.refunded_amount) * o.fx_rate, 4) AS net
      FROM @extschema@.order_earning o
     WHERE o.member_id IS NOT NULL AND NOT o.closed AND o.amount > 0
       AND o.refunded_amount < o.amount AND o.fx_rate IS NOT NULL;
COMMENT ON VIEW @extschema@.counted_order IS
    'Orders that count in their member''s activity: a member, not closed, positive amount, an FX rate, something left after refunds';
COMMENT ON COLUMN @extschema@.counted_order.program IS 'Program code';
COMMENT ON COLUMN @extschema@.counted_order.order_id IS 'Order id in the application''s table';
COMMENT ON COLUMN @extschema@.counted_order.member_id IS 'Member of the current generation';
COMMENT ON COLUMN @extschema@.counted_order.ordered_at IS 'The order''s time';
COMMENT ON COLUMN @extschema@.counted_order.net IS 'Amount less refunds in base currency at the order''s FX rate, rounded to 4 decimals';

-- The C trigger keeping the three tables; one per event, since a trigger
-- with transition tables may have only one.
CREATE FUNCTION @extschema@.activity_trigger() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'loyalty_activity_trigger';
COMMENT ON FUNCTION @extschema@.activity_trigger() IS
    'Trigger on loyalty.order_earning: keeps loyalty.activity_total and loyalty.activity_day';
CREATE TRIGGER activity_insert AFTER INSERT ON @extschema@.order_earning
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.activity_trigger();
CREATE TRIGGER activity_update AFTER UPDATE ON @extschema@.order_earning
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.activity_trigger();
CREATE TRIGGER activity_delete AFTER DELETE ON @extschema@.order_earning
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.activity_trigger();

-- Every member's counted orders in (after, upto].  Inlined into the caller's
-- query, so that with known bounds the day rows and the edge-day orders are
-- read by index ranges.  The fast path needs the horizon before the UTC day
-- of after (first) and after < upto; otherwise the orders are read.  last,
-- the day row holding upto, is activity_day_of(upto).  What lies outside the
-- window: the folded days (one row per member), the day rows before first
-- and after last, the orders of day first up to after (none when after is a
-- midnight) and those of day last after upto (none when upto is a
-- midnight), by time (order_earning_time_idx).
CREATE FUNCTION @extschema@.member_activity(program text, after timestamptz, upto timestamptz)
RETURNS TABLE (member_id text, orders bigint, net_spend numeric, last_order_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT t.member_id,
           t.orders - coalesce(b.orders, 0) - coalesce(x.orders, 0),
           t.net_spend - coalesce(b.net_spend, 0) - coalesce(x.net_spend, 0),
           CASE WHEN t.last_order_at <= upto THEN t.last_order_at
                ELSE (SELECT max(o.ordered_at) FROM loyalty.counted_order o
                       WHERE o.program = member_activity.program AND o.member_id = t.member_id
                         AND o.ordered_at <= upto) END
      FROM loyalty.activity_total t
      LEFT JOIN loyalty.activity_before b ON b.program = t.program AND b.member_id = t.member_id
      LEFT JOIN (
        SELECT y.member_id, sum(y.orders) AS orders, sum(y.net_spend) AS net_spend
          FROM (SELECT d.member_id, d.orders, d.net_spend
                  FROM loyalty.activity_day d
                 WHERE d.program = member_activity.program AND d.day < (after AT TIME ZONE 'UTC')::date
                UNION ALL
                SELECT d.member_id, d.orders, d.net_spend
                  FROM loyalty.activity_day d
                 WHERE d.program = member_activity.program AND d.day > loyalty.activity_day_of(upto)
                UNION ALL
                SELECT o.member_id, 1, o.net
                  FROM loyalty.counted_order o
                 WHERE o.program = member_activity.program
                   AND (after AT TIME ZONE 'UTC') > (after AT TIME ZONE 'UTC')::date
                   AND o.ordered_at > ((after AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC')
                   AND o.ordered_at <= after
                UNION ALL
                SELECT o.member_id, 1, o.net
                  FROM loyalty.counted_order o
                 WHERE o.program = member_activity.program
                   AND (upto AT TIME ZONE 'UTC') > (upto AT TIME ZONE 'UTC')::date
                   AND o.ordered_at > upto
                   AND o.ordered_at <= (((upto AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC')
               ) y
         GROUP BY y.member_id
      ) x ON x.member_id = t.member_id
     WHERE t.program = member_activity.program
       AND (SELECT coalesce(max(h.through), '-infinity') FROM loyalty.activity_horizon h
             WHERE h.program = member_activity.program) < (after AT TIME ZONE 'UTC')::date
       AND after < upto
       AND t.orders - coalesce(b.orders, 0) - coalesce(x.orders, 0) > 0
    UNION ALL
    SELECT o.member_id, count(*), sum(o.net), max(o.ordered_at)
      FROM loyalty.counted_order o
     WHERE o.program = member_activity.program
       AND NOT ((SELECT coalesce(max(h.through), '-infinity') FROM loyalty.activity_horizon h
                  WHERE h.program = member_activity.program) < (after AT TIME ZONE 'UTC')::date
                AND after < upto)
       AND o.ordered_at > after AND o.ordered_at <= upto
     GROUP BY o.member_id
$$;
COMMENT ON FUNCTION @extschema@.member_activity(text, timestamptz, timestamptz) IS
    'Every member''s counted orders in (after, upto]: orders, net spend in base currency, last order; from the activity tables';

-- Recomputes a program's activity from its orders (after a restore of
-- order_earning alone, or when loyalty.verify() finds a difference).
CREATE FUNCTION @extschema@.rebuild_activity(program text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
DECLARE
    members bigint;
BEGIN
    PERFORM @extschema@.require_program(program);
    -- No pass folds days, and no order changes, while the tables are rebuilt.
    INSERT INTO @extschema@.activity_horizon (program) VALUES (rebuild_activity.program) ON CONFLICT DO NOTHING;
    UPDATE @extschema@.activity_horizon h SET through = '-infinity' WHERE h.program = rebuild_activity.program;
    LOCK TABLE @extschema@.order_earning IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM @extschema@.activity_total a WHERE a.program = rebuild_activity.program;
    DELETE FROM @extschema@.activity_day a WHERE a.program = rebuild_activity.program;
    DELETE FROM @extschema@.activity_before a WHERE a.program = rebuild_activity.program;
    WITH counted AS MATERIALIZED (
        SELECT o.member_id, @extschema@.activity_day_of(o.ordered_at) AS day, o.ordered_at, o.net
          FROM @extschema@.counted_order o
         WHERE o.program = rebuild_activity.program
    ), days AS (
        INSERT INTO @extschema@.activity_day (program, day, member_id, orders, net_spend)
        SELECT rebuild_activity.program, c.day, c.member_id, count(*), sum(c.net)
          FROM counted c GROUP BY c.day, c.member_id
         ORDER BY c.day, c.member_id    -- stored by day, as the trigger writes them over time
    )
    INSERT INTO @extschema@.activity_total (program, member_id, orders, net_spend, last_order_at)
    SELECT rebuild_activity.program, c.member_id, count(*), sum(c.net), max(c.ordered_at)
      FROM counted c GROUP BY c.member_id;
    GET DIAGNOSTICS members = ROW_COUNT;
    RETURN members;
END
$$;
COMMENT ON FUNCTION @extschema@.rebuild_activity(text) IS
    'Recomputes a program''s activity tables from loyalty.order_earning; returns the members with counted orders';
-- Points: the application's calls (C where it pays) and the read side (SQL).

-- Not STRICT: a NULL argument is an error, never a silently skipped credit.
CREATE FUNCTION @extschema@.earn(
    program text, member_id text, points bigint, ref text,
    reason text DEFAULT 'adjust', as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS 'MODULE_PATHNAME', 'loyalty_earn';
COMMENT ON FUNCTION @extschema@.earn(text, text, bigint, text, text, timestamptz) IS
    'Credits points (ledger kind adjust) under the program''s pending and expiry rules; idempotent on ref; returns the ledger id';

-- Not STRICT: a NULL argument is an error.
CREATE FUNCTION @extschema@.redeem(
    program text, member_id text, points bigint, ref text,
    as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS 'MODULE_PATHNAME', 'loyalty_redeem';
COMMENT ON FUNCTION @extschema@.redeem(text, text, bigint, text, timestamptz) IS
    'Spends available points, soonest-expiring lots first; LY001 when the balance is short; idempotent on ref; returns the ledger id';

-- Not STRICT: a NULL argument is an error.
CREATE FUNCTION @extschema@.cancel_redemption(program text, ref text)
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS 'MODULE_PATHNAME', 'loyalty_cancel_redemption';
COMMENT ON FUNCTION @extschema@.cancel_redemption(text, text) IS
    'Gives a redemption''s points back to the lots they came from (original expiry); idempotent; returns the unredeem ledger id';

-- Not STRICT: NULL program means every program.
CREATE FUNCTION @extschema@.expire_points(program text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS 'MODULE_PATHNAME', 'loyalty_expire_points';
COMMENT ON FUNCTION @extschema@.expire_points(text, timestamptz) IS
    'Expires what is left of lots whose expiry is at or before as_of (all programs when program is NULL); idempotent; returns the points expired';

-- Not STRICT: NULL program means every program.
CREATE FUNCTION @extschema@.expire_points_chunk(program text, as_of timestamptz, max_members integer,
                                               OUT members bigint, OUT points bigint)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS 'MODULE_PATHNAME', 'loyalty_expire_points_chunk';
COMMENT ON FUNCTION @extschema@.expire_points_chunk(text, timestamptz, integer) IS
    'Expires the lots of at most max_members members (the first by program and member id); returns the members done and the points expired';

-- For very large programs: expiry in chunks of members, each committed.
-- A procedure that commits can be neither SECURITY DEFINER nor carry a SET
-- clause: it runs as the caller, names everything in full, and the chunk
-- function does the privileged work.
CREATE PROCEDURE @extschema@.expire_points_batched(program text DEFAULT NULL, as_of timestamptz DEFAULT now(),
                                                  chunk_members integer DEFAULT 10000)
LANGUAGE plpgsql
AS $$
DECLARE
    chunk record;
    members bigint := 0;
    points bigint := 0;
BEGIN
    LOOP
        SELECT * INTO chunk FROM loyalty.expire_points_chunk(program, as_of, chunk_members);
        EXIT WHEN chunk.members = 0;
        members := members + chunk.members;
        points := points + chunk.points;
        RAISE NOTICE 'loyalty: expiry %: % members, % points expired so far',
            coalesce(program, 'all programs'), members, points;
        COMMIT;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE @extschema@.expire_points_batched(text, timestamptz, integer) IS
    'Runs loyalty.expire_points in chunks of chunk_members members, committing after each, with a NOTICE of progress';

CREATE FUNCTION @extschema@.balance(program text, member_id text, as_of timestamptz DEFAULT now())
RETURNS TABLE (available bigint, pending bigint, lifetime_earned bigint, lifetime_redeemed bigint,
               next_expiry timestamptz, next_expiry_points bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF member_id IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'member_id and as_of must not be null' USING ERRCODE = '22004';
    END IF;
    RETURN QUERY
    WITH m AS (
        SELECT coalesce(max(x.debt), 0) AS debt,
               coalesce(max(x.lifetime_earned), 0) AS earned,
               coalesce(max(x.lifetime_redeemed), 0) AS redeemed
          FROM loyalty.member x
         WHERE x.program = balance.program AND x.member_id = balance.member_id
    ), l AS (
        SELECT coalesce(sum(remaining) FILTER (WHERE available_at <= as_of
                        AND (expires_at IS NULL OR expires_at > as_of)), 0)::bigint AS avail,
               coalesce(sum(remaining) FILTER (WHERE available_at > as_of
                        AND (expires_at IS NULL OR expires_at > as_of)), 0)::bigint AS pend,
               min(expires_at) FILTER (WHERE expires_at > as_of) AS next_exp
          FROM loyalty.lot x
         WHERE x.program = balance.program AND x.member_id = balance.member_id AND x.remaining > 0
    )
    SELECT l.avail - m.debt, l.pend, m.earned, m.redeemed, l.next_exp,
           (SELECT sum(x.remaining)::bigint FROM loyalty.lot x
             WHERE x.program = balance.program AND x.member_id = balance.member_id
               AND x.expires_at = l.next_exp)
      FROM m, l;
END
$$;
COMMENT ON FUNCTION @extschema@.balance(text, text, timestamptz) IS
    'A member''s balance at as_of: available (minus debt), pending, lifetime earned and redeemed, next expiry and its points; zero for an unknown member';

CREATE FUNCTION @extschema@.history(program text, member_id text)
RETURNS TABLE (id bigint, kind text, points bigint, balance_after bigint, ref text, order_id text,
               reason text, occurred_at timestamptz, recorded_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
    SELECT l.id, l.kind, l.points,
           (sum(l.points) OVER (ORDER BY l.id))::bigint,
           l.ref, l.order_id, l.reason, l.occurred_at, l.recorded_at
      FROM loyalty.ledger l
     WHERE l.program = history.program AND l.member_id = history.member_id
     ORDER BY l.id
$$;
COMMENT ON FUNCTION @extschema@.history(text, text) IS
    'A member''s statement: every ledger row in order with the running balance';
-- loyalty.verify(): proves the cached figures equal the ledger.

CREATE FUNCTION @extschema@.verify(program text DEFAULT NULL)
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
    WITH led AS (
        SELECT l.program, l.member_id,
               sum(l.points) AS total,
               coalesce(sum(l.points) FILTER (WHERE l.kind IN ('earn', 'adjust')), 0) AS earned,
               coalesce(-sum(l.points) FILTER (WHERE l.kind IN ('redeem', 'unredeem')), 0) AS redeemed,
               coalesce(-sum(l.points) FILTER (WHERE l.kind = 'reverse'), 0) AS reversed,
               coalesce(-sum(l.points) FILTER (WHERE l.kind = 'expire'), 0) AS expired
          FROM loyalty.ledger l
         WHERE verify.program IS NULL OR l.program = verify.program
         GROUP BY 1, 2
    ), mem AS (
        SELECT * FROM loyalty.member m WHERE verify.program IS NULL OR m.program = verify.program
    ), lots AS (
        SELECT l.program, l.member_id, sum(l.remaining) AS remaining
          FROM loyalty.lot l
         WHERE verify.program IS NULL OR l.program = verify.program
         GROUP BY 1, 2
    ), bad_balance AS (
        SELECT coalesce(m.program, d.program) AS program, coalesce(m.member_id, d.member_id) AS member_id,
               m.balance, d.total
          FROM mem m FULL JOIN led d USING (program, member_id)
         WHERE coalesce(m.balance, 0) <> coalesce(d.total, 0)
    ), bad_lifetime AS (
        SELECT m.program, m.member_id
          FROM mem m LEFT JOIN led d USING (program, member_id)
         WHERE (m.lifetime_earned, m.lifetime_redeemed, m.lifetime_reversed, m.lifetime_expired)
               IS DISTINCT FROM (coalesce(d.earned, 0), coalesce(d.redeemed, 0),
                                 coalesce(d.reversed, 0), coalesce(d.expired, 0))
    ), bad_lots_sum AS (
        SELECT m.program, m.member_id
          FROM mem m LEFT JOIN lots s USING (program, member_id)
         WHERE m.balance <> coalesce(s.remaining, 0) - m.debt
    ), bad_lot AS (
        SELECT l.id
          FROM loyalty.lot l
          LEFT JOIN (SELECT u.lot_id, sum(u.points) AS used FROM loyalty.lot_use u GROUP BY 1) u ON u.lot_id = l.id
         WHERE (verify.program IS NULL OR l.program = verify.program)
           AND (l.remaining < 0 OR l.remaining > l.earned
                OR l.earned - l.remaining <> coalesce(u.used, 0))
    ), order_points AS (
        SELECT l.program, l.order_id,
               coalesce(sum(l.points) FILTER (WHERE l.kind = 'earn'), 0) AS earned,
               coalesce(-sum(l.points) FILTER (WHERE l.kind = 'reverse'), 0) AS reversed,
               count(*) FILTER (WHERE l.kind = 'earn') AS earnings
          FROM loyalty.ledger l
         WHERE l.order_id IS NOT NULL AND (verify.program IS NULL OR l.program = verify.program)
         GROUP BY 1, 2
    ), bad_order_twice AS (
        -- At most one earning per generation, and the ledger matches the order's totals.
        SELECT o.program, o.order_id
          FROM loyalty.order_earning o
          LEFT JOIN order_points p USING (program, order_id)
         WHERE (verify.program IS NULL OR o.program = verify.program)
           AND (coalesce(p.earnings, 0) > o.generation
                OR coalesce(p.earned, 0) <> o.earned_total
                OR coalesce(p.reversed, 0) <> o.reversed_total)
    ), bad_reversal AS (
        SELECT p.program, p.order_id FROM order_points p WHERE p.reversed > p.earned
    ), counted AS (
        SELECT o.program, o.member_id, count(*) AS orders, sum(o.net) AS net_spend,
               max(o.ordered_at) AS last_order_at
          FROM loyalty.counted_order o
         WHERE verify.program IS NULL OR o.program = verify.program
         GROUP BY 1, 2
    ), bad_activity AS (
        SELECT coalesce(t.program, c.program) AS program, coalesce(t.member_id, c.member_id) AS member_id
          FROM (SELECT * FROM loyalty.activity_total a
                 WHERE verify.program IS NULL OR a.program = verify.program) t
          FULL JOIN counted c USING (program, member_id)
         WHERE (coalesce(t.orders, 0), coalesce(t.net_spend, 0), t.last_order_at)
               IS DISTINCT FROM (coalesce(c.orders, 0), coalesce(c.net_spend, 0), c.last_order_at)
    ), activity_parts AS (
        SELECT x.program, x.member_id, sum(x.orders) AS orders, sum(x.net_spend) AS net_spend
          FROM (SELECT d.program, d.member_id, d.orders, d.net_spend FROM loyalty.activity_day d
                UNION ALL
                SELECT b.program, b.member_id, b.orders, b.net_spend FROM loyalty.activity_before b) x
         WHERE verify.program IS NULL OR x.program = verify.program
         GROUP BY 1, 2
    ), bad_activity_parts AS (
        SELECT coalesce(t.program, p.program) AS program, coalesce(t.member_id, p.member_id) AS member_id
          FROM (SELECT * FROM loyalty.activity_total a
                 WHERE verify.program IS NULL OR a.program = verify.program) t
          FULL JOIN activity_parts p USING (program, member_id)
         WHERE (coalesce(t.orders, 0), coalesce(t.net_spend, 0))
               IS DISTINCT FROM (coalesce(p.orders, 0), coalesce(p.net_spend, 0))
    )
    SELECT 'balance_equals_ledger', NOT EXISTS (SELECT 1 FROM bad_balance),
           (SELECT pg_catalog.format('%s member(s) differ, e.g. %s/%s cached %s, ledger %s',
                   count(*), min(program), min(member_id), min(balance), min(total)) FROM bad_balance HAVING count(*) > 0)
    UNION ALL
    SELECT 'lifetime_figures_equal_ledger', NOT EXISTS (SELECT 1 FROM bad_lifetime),
           (SELECT pg_catalog.format('%s member(s) differ, e.g. %s/%s', count(*), min(program), min(member_id))
              FROM bad_lifetime HAVING count(*) > 0)
    UNION ALL
    SELECT 'balance_equals_lots_minus_debt', NOT EXISTS (SELECT 1 FROM bad_lots_sum),
           (SELECT pg_catalog.format('%s member(s) differ, e.g. %s/%s', count(*), min(program), min(member_id))
              FROM bad_lots_sum HAVING count(*) > 0)
    UNION ALL
    SELECT 'lot_remainders_consistent', NOT EXISTS (SELECT 1 FROM bad_lot),
           (SELECT pg_catalog.format('%s lot(s) outside [0, earned] or not matching their uses, e.g. lot %s', count(*), min(id))
              FROM bad_lot HAVING count(*) > 0)
    UNION ALL
    SELECT 'no_order_earned_twice', NOT EXISTS (SELECT 1 FROM bad_order_twice),
           (SELECT pg_catalog.format('%s order(s) hold other points than their current earning, e.g. %s/%s',
                   count(*), min(program), min(order_id)) FROM bad_order_twice HAVING count(*) > 0)
    UNION ALL
    SELECT 'no_reversal_above_earning', NOT EXISTS (SELECT 1 FROM bad_reversal),
           (SELECT pg_catalog.format('%s order(s) reversed more than they earned, e.g. %s/%s',
                   count(*), min(program), min(order_id)) FROM bad_reversal HAVING count(*) > 0)
    UNION ALL
    SELECT 'activity_equals_orders', NOT EXISTS (SELECT 1 FROM bad_activity),
           (SELECT pg_catalog.format('%s member(s) whose activity differs from their orders, e.g. %s/%s; run loyalty.rebuild_activity()',
                   count(*), min(program), min(member_id)) FROM bad_activity HAVING count(*) > 0)
    UNION ALL
    SELECT 'activity_days_add_up', NOT EXISTS (SELECT 1 FROM bad_activity_parts),
           (SELECT pg_catalog.format('%s member(s) whose days do not add up to their totals, e.g. %s/%s; run loyalty.rebuild_activity()',
                   count(*), min(program), min(member_id)) FROM bad_activity_parts HAVING count(*) > 0)
$$;
COMMENT ON FUNCTION @extschema@.verify(text) IS
    'Proves the books: cached balances and lifetime figures equal the ledger, lots match their uses, no order earned twice, no reversal above its earning, per-member activity equals the orders';

-- Privileges: nothing is public; each role gets what its job needs.
REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    @extschema@.balance(text, text, timestamptz),
    @extschema@.history(text, text),
    @extschema@.enroll(text, text, jsonb),
    @extschema@.earn(text, text, bigint, text, text, timestamptz),
    @extschema@.redeem(text, text, bigint, text, timestamptz),
    @extschema@.cancel_redemption(text, text)
TO loyalty_app, loyalty_admin;

GRANT EXECUTE ON FUNCTION
    @extschema@.create_program(text, text, numeric, integer, interval, text, text),
    @extschema@.set_member_status(text, text, text),
    @extschema@.set_fx_rate(text, text, numeric, timestamptz),
    @extschema@.attach_orders(text, regclass, text, text, text, text, text, text, text),
    @extschema@.detach_orders(text, regclass),
    @extschema@.retry_dead_letters(text),
    @extschema@.expire_points(text, timestamptz),
    @extschema@.expire_points_chunk(text, timestamptz, integer),
    @extschema@.verify(text),
    @extschema@.member_activity(text, timestamptz, timestamptz),
    @extschema@.rebuild_activity(text)
TO loyalty_admin;
REVOKE ALL ON PROCEDURE @extschema@.expire_points_batched(text, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE @extschema@.expire_points_batched(text, timestamptz, integer) TO loyalty_admin;

-- orders_trigger() stays unexecutable by PUBLIC: only attach_orders() may
-- create triggers with it, and the trigger checks its table is attached.
GRANT EXECUTE ON FUNCTION
    @extschema@.fx_rate_at(text, text, timestamptz),
    @extschema@.fx_quote(text, text, timestamptz)
TO loyalty_admin, loyalty_app, loyalty_reader;

-- Configuration is readable by all three; balances only through functions.
GRANT SELECT ON ALL TABLES IN SCHEMA @extschema@ TO loyalty_admin;
GRANT SELECT ON @extschema@.program, @extschema@.fx_rate TO loyalty_app, loyalty_reader;
-- RFM: the loyalty.rfm type, segments, and scoring.

CREATE TYPE @extschema@.rfm;

CREATE FUNCTION @extschema@.rfm_in(cstring) RETURNS @extschema@.rfm
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_in';
CREATE FUNCTION @extschema@.rfm_out(@extschema@.rfm) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_out';
CREATE FUNCTION @extschema@.rfm_recv(internal) RETURNS @extschema@.rfm
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_recv';
CREATE FUNCTION @extschema@.rfm_send(@extschema@.rfm) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_send';

CREATE TYPE @extschema@.rfm (
    INPUT = @extschema@.rfm_in,
    OUTPUT = @extschema@.rfm_out,
    RECEIVE = @extschema@.rfm_recv,
    SEND = @extschema@.rfm_send,
    INTERNALLENGTH = 2,
    PASSEDBYVALUE,
    ALIGNMENT = int2,
    STORAGE = plain
);
COMMENT ON TYPE @extschema@.rfm IS
    'Recency, frequency and monetary scores from 1 to 5, written as three digits, recency first (''543''); ordered as that number';
COMMENT ON FUNCTION @extschema@.rfm_in(cstring) IS 'rfm input: three digits from 1 to 5';
COMMENT ON FUNCTION @extschema@.rfm_out(@extschema@.rfm) IS 'rfm output: three digits';
COMMENT ON FUNCTION @extschema@.rfm_recv(internal) IS 'rfm binary input: an int2, checked';
COMMENT ON FUNCTION @extschema@.rfm_send(@extschema@.rfm) IS 'rfm binary output: an int2';

CREATE FUNCTION @extschema@.rfm(r integer, f integer, m integer) RETURNS @extschema@.rfm
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_make';
COMMENT ON FUNCTION @extschema@.rfm(integer, integer, integer) IS 'Builds an rfm value from its three scores (each 1 to 5)';
CREATE FUNCTION @extschema@.r(@extschema@.rfm) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_r';
COMMENT ON FUNCTION @extschema@.r(@extschema@.rfm) IS 'The recency score (5: bought most recently)';
CREATE FUNCTION @extschema@.f(@extschema@.rfm) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_f';
COMMENT ON FUNCTION @extschema@.f(@extschema@.rfm) IS 'The frequency score (5: the most orders)';
CREATE FUNCTION @extschema@.m(@extschema@.rfm) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_m';
COMMENT ON FUNCTION @extschema@.m(@extschema@.rfm) IS 'The monetary score (5: the most spend)';

-- Comparison and hashing: an rfm is stored as the int2 r*100+f*10+m, so
-- PostgreSQL's own int2 functions compare and hash it.
CREATE FUNCTION @extschema@.rfm_eq(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2eq';
CREATE FUNCTION @extschema@.rfm_ne(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2ne';
CREATE FUNCTION @extschema@.rfm_lt(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2lt';
CREATE FUNCTION @extschema@.rfm_le(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2le';
CREATE FUNCTION @extschema@.rfm_gt(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2gt';
CREATE FUNCTION @extschema@.rfm_ge(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2ge';
CREATE FUNCTION @extschema@.rfm_cmp(@extschema@.rfm, @extschema@.rfm) RETURNS integer
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'btint2cmp';
CREATE FUNCTION @extschema@.rfm_hash(@extschema@.rfm) RETURNS integer
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'hashint2';
CREATE FUNCTION @extschema@.rfm_hash_extended(@extschema@.rfm, bigint) RETURNS bigint
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'hashint2extended';
COMMENT ON FUNCTION @extschema@.rfm_eq(@extschema@.rfm, @extschema@.rfm) IS 'rfm =';
COMMENT ON FUNCTION @extschema@.rfm_ne(@extschema@.rfm, @extschema@.rfm) IS 'rfm <>';
COMMENT ON FUNCTION @extschema@.rfm_lt(@extschema@.rfm, @extschema@.rfm) IS 'rfm <';
COMMENT ON FUNCTION @extschema@.rfm_le(@extschema@.rfm, @extschema@.rfm) IS 'rfm <=';
COMMENT ON FUNCTION @extschema@.rfm_gt(@extschema@.rfm, @extschema@.rfm) IS 'rfm >';
COMMENT ON FUNCTION @extschema@.rfm_ge(@extschema@.rfm, @extschema@.rfm) IS 'rfm >=';
COMMENT ON FUNCTION @extschema@.rfm_cmp(@extschema@.rfm, @extschema@.rfm) IS 'rfm btree comparison';
COMMENT ON FUNCTION @extschema@.rfm_hash(@extschema@.rfm) IS 'rfm hash';
COMMENT ON FUNCTION @extschema@.rfm_hash_extended(@extschema@.rfm, bigint) IS 'rfm hash with a seed';

CREATE OPERATOR @extschema@.= (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_eq,
    COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR @extschema@.<> (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_ne,
    COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR @extschema@.< (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_lt,
    COMMUTATOR = OPERATOR(@extschema@.>), NEGATOR = OPERATOR(@extschema@.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR @extschema@.<= (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_le,
    COMMUTATOR = OPERATOR(@extschema@.>=), NEGATOR = OPERATOR(@extschema@.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR @extschema@.> (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_gt,
    COMMUTATOR = OPERATOR(@extschema@.<), NEGATOR = OPERATOR(@extschema@.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR @extschema@.>= (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_ge,
    COMMUTATOR = OPERATOR(@extschema@.<=), NEGATOR = OPERATOR(@extschema@.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS @extschema@.rfm_ops DEFAULT FOR TYPE @extschema@.rfm USING btree AS
    OPERATOR 1 @extschema@.<,
    OPERATOR 2 @extschema@.<=,
    OPERATOR 3 @extschema@.=,
    OPERATOR 4 @extschema@.>=,
    OPERATOR 5 @extschema@.>,
    FUNCTION 1 @extschema@.rfm_cmp(@extschema@.rfm, @extschema@.rfm);
CREATE OPERATOR CLASS @extschema@.rfm_hash_ops DEFAULT FOR TYPE @extschema@.rfm USING hash AS
    OPERATOR 1 @extschema@.=,
    FUNCTION 1 @extschema@.rfm_hash(@extschema@.rfm),
    FUNCTION 2 @extschema@.rfm_hash_extended(@extschema@.rfm, bigint);

-- Segments: first matching rule by priority; a program's own rules replace
-- the default map (program NULL) as a whole.
CREATE TABLE @extschema@.rfm_segment_rule (
    program     text REFERENCES @extschema@.program (code),
    priority    integer NOT NULL,
    segment     text NOT NULL,
    r_min       smallint NOT NULL DEFAULT 1,
    r_max       smallint NOT NULL DEFAULT 5,
    f_min       smallint NOT NULL DEFAULT 1,
    f_max       smallint NOT NULL DEFAULT 5,
    m_min       smallint NOT NULL DEFAULT 1,
    m_max       smallint NOT NULL DEFAULT 5,
    CONSTRAINT rfm_segment_rule_ranges CHECK (
        1 <= r_min AND r_min <= r_max AND r_max <= 5 AND
        1 <= f_min AND f_min <= f_max AND f_max <= 5 AND
        1 <= m_min AND m_min <= m_max AND m_max <= 5)
);
CREATE UNIQUE INDEX rfm_segment_rule_key ON @extschema@.rfm_segment_rule (coalesce(program, ''), priority);
COMMENT ON TABLE @extschema@.rfm_segment_rule IS
    'RFM segment map: the first rule (lowest priority number) whose score ranges hold names the segment; program NULL is the default map, a program''s own rules replace it';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rfm_segment_rule', 'WHERE program IS NOT NULL');

-- The default map: the usual recency x frequency grid, with Lost carved out
-- of Hibernating by spend.  It covers every one of the 125 values.
INSERT INTO @extschema@.rfm_segment_rule (program, priority, segment, r_min, r_max, f_min, f_max, m_min, m_max) VALUES
    (NULL,  10, 'Champions',          5, 5, 4, 5, 1, 5),
    (NULL,  20, 'Loyal',              3, 4, 4, 5, 1, 5),
    (NULL,  30, 'Cannot Lose Them',   1, 2, 5, 5, 1, 5),
    (NULL,  40, 'At Risk',            1, 2, 3, 4, 1, 5),
    (NULL,  50, 'Potential Loyalist', 4, 5, 2, 3, 1, 5),
    (NULL,  60, 'New',                5, 5, 1, 1, 1, 5),
    (NULL,  70, 'Promising',          4, 4, 1, 1, 1, 5),
    (NULL,  80, 'Need Attention',     3, 3, 3, 3, 1, 5),
    (NULL,  90, 'About to Sleep',     3, 3, 1, 2, 1, 5),
    (NULL, 100, 'Lost',               1, 1, 1, 2, 1, 2),
    (NULL, 110, 'Hibernating',        1, 2, 1, 2, 1, 5);

CREATE FUNCTION @extschema@.rfm_segment(score @extschema@.rfm, program text DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@
AS $$
    SELECT s.segment
      FROM loyalty.rfm_segment_rule s
     WHERE (s.program = rfm_segment.program
            OR (s.program IS NULL AND NOT EXISTS (SELECT 1 FROM loyalty.rfm_segment_rule o
                                                   WHERE o.program = rfm_segment.program)))
       AND loyalty.r(score) BETWEEN s.r_min AND s.r_max
       AND loyalty.f(score) BETWEEN s.f_min AND s.f_max
       AND loyalty.m(score) BETWEEN s.m_min AND s.m_max
     ORDER BY s.priority
     LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.rfm_segment(@extschema@.rfm, text) IS
    'The segment of an RFM value: the program''s own map when it has one, else the default map (Champions, Loyal, Potential Loyalist, New, Promising, Need Attention, About to Sleep, At Risk, Cannot Lose Them, Hibernating, Lost)';

-- Scores per member, written by loyalty.score_rfm().  A pass rewrites only
-- the members whose figures changed: the scores keep the last order's time,
-- and recency in days is worked out against the pass's time in the view
-- loyalty.member_rfm, so a nightly pass does not touch every row.
CREATE TABLE @extschema@.rfm_score (
    program         text NOT NULL,
    member_id       text NOT NULL,
    last_order_at   timestamptz NOT NULL,
    frequency       integer NOT NULL,
    monetary        numeric NOT NULL,
    rfm             @extschema@.rfm NOT NULL,
    segment         text,
    PRIMARY KEY (program, member_id)
);
CREATE INDEX rfm_score_rfm_idx ON @extschema@.rfm_score (program, rfm);
COMMENT ON TABLE @extschema@.rfm_score IS
    'RFM per member as of the program''s last loyalty.score_rfm() (read it through loyalty.member_rfm)';
COMMENT ON COLUMN @extschema@.rfm_score.last_order_at IS 'Time of the member''s last counted order in the window';

-- The last scoring pass of each program.
CREATE TABLE @extschema@.rfm_pass (
    program         text PRIMARY KEY,
    scored_at       timestamptz NOT NULL,
    "window"        interval NOT NULL,
    members         bigint NOT NULL,
    written         bigint NOT NULL
);
COMMENT ON TABLE @extschema@.rfm_pass IS
    'The last loyalty.score_rfm() pass per program: its as_of, window, members scored and rows written';
COMMENT ON COLUMN @extschema@.rfm_pass.written IS 'Score rows inserted, updated or deleted by the pass';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rfm_score', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rfm_pass', '');

CREATE VIEW @extschema@.member_rfm AS
    SELECT s.program, s.member_id,
           floor(extract(epoch FROM p.scored_at - s.last_order_at) / 86400)::integer AS recency_days,
           s.frequency, s.monetary, s.rfm, s.segment, p.scored_at
      FROM @extschema@.rfm_score s
      JOIN @extschema@.rfm_pass p ON p.program = s.program;
COMMENT ON VIEW @extschema@.member_rfm IS
    'RFM per member as of the last loyalty.score_rfm(): recency in whole days, distinct orders, net spend in base currency, scores and segment';
COMMENT ON COLUMN @extschema@.member_rfm.program IS 'Program code';
COMMENT ON COLUMN @extschema@.member_rfm.member_id IS 'Member id';
COMMENT ON COLUMN @extschema@.member_rfm.recency_days IS 'Whole days from the member''s last order in the window to scored_at';
COMMENT ON COLUMN @extschema@.member_rfm.frequency IS 'Distinct orders in the window with something left after refunds';
COMMENT ON COLUMN @extschema@.member_rfm.monetary IS 'Net spend in the window in the program''s base currency: each order''s amount less refunds at its FX rate, rounded to 4 decimals, summed';
COMMENT ON COLUMN @extschema@.member_rfm.rfm IS 'Recency, frequency and monetary scores, 1-5 each (quintiles, ties sharing a score)';
COMMENT ON COLUMN @extschema@.member_rfm.segment IS 'Segment of the score in the program''s map (empty when no rule matches)';
COMMENT ON COLUMN @extschema@.member_rfm.scored_at IS 'The as_of of the scoring pass';

-- Not STRICT: NULL arguments are errors.
CREATE FUNCTION @extschema@.score_rfm(program text, as_of timestamptz DEFAULT now(),
                                     "window" interval DEFAULT '365 days')
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
-- JIT compiling the pass's million-row queries costs more than it saves.
SET jit = off
AS 'MODULE_PATHNAME', 'loyalty_score_rfm';
COMMENT ON FUNCTION @extschema@.score_rfm(text, timestamptz, interval) IS
    'Scores every member with orders in the window before as_of into loyalty.member_rfm (quintiles, ties sharing a score); returns the members scored';

REVOKE ALL ON FUNCTION @extschema@.score_rfm(text, timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.score_rfm(text, timestamptz, interval) TO loyalty_admin;
GRANT SELECT ON @extschema@.member_rfm, @extschema@.rfm_pass TO loyalty_admin, loyalty_reader;
GRANT SELECT ON @extschema@.rfm_score TO loyalty_admin;
GRANT SELECT ON @extschema@.rfm_segment_rule TO loyalty_admin, loyalty_app, loyalty_reader;
-- Member tiers: the loyalty.tier_ladder type and a program's ladder.

CREATE TYPE @extschema@.tier_ladder;

CREATE FUNCTION @extschema@.tier_ladder_in(cstring) RETURNS @extschema@.tier_ladder
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_ladder_in';
CREATE FUNCTION @extschema@.tier_ladder_out(@extschema@.tier_ladder) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_ladder_out';
CREATE FUNCTION @extschema@.tier_ladder_recv(internal) RETURNS @extschema@.tier_ladder
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_ladder_recv';
CREATE FUNCTION @extschema@.tier_ladder_send(@extschema@.tier_ladder) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_ladder_send';

CREATE TYPE @extschema@.tier_ladder (
    INPUT = @extschema@.tier_ladder_in,
    OUTPUT = @extschema@.tier_ladder_out,
    RECEIVE = @extschema@.tier_ladder_recv,
    SEND = @extschema@.tier_ladder_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);
COMMENT ON TYPE @extschema@.tier_ladder IS
    'A member tier ladder: basis (spend, points, orders), rolling window, downgrade grace and policy, and levels with threshold and point multiplier; e.g. ''basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2''';
COMMENT ON FUNCTION @extschema@.tier_ladder_in(cstring) IS 'tier_ladder input: options, then levels from the lowest, checked';
COMMENT ON FUNCTION @extschema@.tier_ladder_out(@extschema@.tier_ladder) IS 'tier_ladder output: the canonical text form with every option';
COMMENT ON FUNCTION @extschema@.tier_ladder_recv(internal) IS 'tier_ladder binary input, checked like the text input';
COMMENT ON FUNCTION @extschema@.tier_ladder_send(@extschema@.tier_ladder) IS 'tier_ladder binary output';

CREATE FUNCTION @extschema@.tier_of(ladder @extschema@.tier_ladder, value numeric) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_of';
COMMENT ON FUNCTION @extschema@.tier_of(@extschema@.tier_ladder, numeric) IS
    'The name of the highest level whose threshold value reaches (the first level below every threshold)';

CREATE FUNCTION @extschema@.tier_levels(ladder @extschema@.tier_ladder,
                                       OUT level integer, OUT tier text, OUT threshold numeric,
                                       OUT multiplier numeric)
RETURNS SETOF record
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_levels';
COMMENT ON FUNCTION @extschema@.tier_levels(@extschema@.tier_ladder) IS
    'The levels of a ladder, lowest first: level number, name, threshold, point multiplier';

CREATE FUNCTION @extschema@.tier_ladder_options(ladder @extschema@.tier_ladder,
                                               OUT basis text, OUT window_days integer,
                                               OUT grace_days integer, OUT downgrade text)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'tier_ladder_options';
COMMENT ON FUNCTION @extschema@.tier_ladder_options(@extschema@.tier_ladder) IS
    'A ladder''s options: basis, rolling window and downgrade grace in days, downgrade policy (step: one level at a time; drop: straight to the qualifying level)';

ALTER TABLE @extschema@.program ADD COLUMN tier_ladder @extschema@.tier_ladder;
COMMENT ON COLUMN @extschema@.program.tier_ladder IS 'The program''s member tier ladder; NULL: no tiers';

CREATE FUNCTION @extschema@.set_tier_ladder(program text, ladder @extschema@.tier_ladder)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    UPDATE loyalty.program p SET tier_ladder = set_tier_ladder.ladder WHERE p.code = set_tier_ladder.program;
END
$$;
COMMENT ON FUNCTION @extschema@.set_tier_ladder(text, @extschema@.tier_ladder) IS
    'Sets (or, with NULL, removes) a program''s tier ladder';

CREATE VIEW @extschema@.program_tier AS
    SELECT p.code AS program, l.level, l.tier, l.threshold, l.multiplier,
           o.basis, o.window_days, o.grace_days, o.downgrade
      FROM @extschema@.program p
     CROSS JOIN LATERAL @extschema@.tier_levels(p.tier_ladder) l
     CROSS JOIN LATERAL @extschema@.tier_ladder_options(p.tier_ladder) o;
COMMENT ON VIEW @extschema@.program_tier IS 'Every program''s tier ladder, one row per level';
COMMENT ON COLUMN @extschema@.program_tier.program IS 'Program code';
COMMENT ON COLUMN @extschema@.program_tier.level IS 'Level number, 1 the lowest';
COMMENT ON COLUMN @extschema@.program_tier.tier IS 'Level name';
COMMENT ON COLUMN @extschema@.program_tier.threshold IS 'Basis value from which a member reaches the level';
COMMENT ON COLUMN @extschema@.program_tier.multiplier IS 'Points multiplier of the level';
COMMENT ON COLUMN @extschema@.program_tier.basis IS 'What the thresholds measure: spend (net, base currency), points or orders';
COMMENT ON COLUMN @extschema@.program_tier.window_days IS 'Rolling window the basis is measured over, in days';
COMMENT ON COLUMN @extschema@.program_tier.grace_days IS 'Days a member keeps a level after falling below it';
COMMENT ON COLUMN @extschema@.program_tier.downgrade IS 'step: one level at a time; drop: straight to the qualifying level';

REVOKE ALL ON FUNCTION @extschema@.set_tier_ladder(text, @extschema@.tier_ladder) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.set_tier_ladder(text, @extschema@.tier_ladder) TO loyalty_admin;
GRANT SELECT ON @extschema@.program_tier TO loyalty_admin, loyalty_app, loyalty_reader;

-- A member's tier: the level it holds, since when, when it fell below it
-- (grace running), and a floor support can guarantee until a date.
ALTER TABLE @extschema@.member
    ADD COLUMN tier text,
    ADD COLUMN tier_since timestamptz,
    ADD COLUMN tier_below_since timestamptz,
    ADD COLUMN tier_floor text,
    ADD COLUMN tier_floor_until timestamptz;
COMMENT ON COLUMN @extschema@.member.tier IS 'Tier held (a level name of the program''s ladder); NULL: the first level';
COMMENT ON COLUMN @extschema@.member.tier_since IS 'When the member reached its tier';
COMMENT ON COLUMN @extschema@.member.tier_below_since IS 'When the member fell below its tier''s threshold: the downgrade grace runs from here';
COMMENT ON COLUMN @extschema@.member.tier_floor IS 'A tier guaranteed by loyalty.set_tier_floor() until tier_floor_until';
COMMENT ON COLUMN @extschema@.member.tier_floor_until IS 'End of the guaranteed tier';

ALTER TABLE @extschema@.order_earning ADD COLUMN multiplier numeric NOT NULL DEFAULT 1;
-- A member's orders in a window: tier basis values, lifecycle.
CREATE INDEX order_earning_member_idx ON @extschema@.order_earning (program, member_id, ordered_at);
COMMENT ON COLUMN @extschema@.order_earning.multiplier IS 'Tier multiplier the current generation earned at (kept for refunds)';

CREATE SEQUENCE @extschema@.tier_history_id_seq;
CREATE TABLE @extschema@.tier_history (
    id          bigint PRIMARY KEY DEFAULT nextval('@extschema@.tier_history_id_seq'),
    program     text NOT NULL,
    member_id   text NOT NULL,
    from_tier   text,
    to_tier     text NOT NULL,
    reason      text NOT NULL CHECK (reason IN ('upgrade', 'downgrade', 'floor')),
    basis_value numeric,
    changed_at  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE @extschema@.tier_history_id_seq OWNED BY @extschema@.tier_history.id;
CREATE INDEX tier_history_member_idx ON @extschema@.tier_history (program, member_id, id);
COMMENT ON TABLE @extschema@.tier_history IS
    'Every tier change: from and to, why (upgrade, downgrade after the grace, floor), the basis value then, when';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tier_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tier_history_id_seq', '');

-- Not STRICT: NULL arguments are errors.
CREATE FUNCTION @extschema@.recalculate_tiers(program text, as_of timestamptz DEFAULT now(),
                                             OUT members bigint, OUT upgraded bigint, OUT downgraded bigint,
                                             OUT grace_started bigint, OUT unchanged bigint)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
-- JIT compiling the pass's million-row queries costs more than it saves.
SET jit = off
AS 'MODULE_PATHNAME', 'loyalty_recalculate_tiers';
COMMENT ON FUNCTION @extschema@.recalculate_tiers(text, timestamptz) IS
    'Recomputes every member''s tier on the ladder''s rolling window at as_of: upgrades at once, downgrades after the grace (one level, or straight down with downgrade=drop), floors respected; returns a summary';

CREATE FUNCTION @extschema@.set_tier_floor(program text, member_id text, tier text, "until" timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    floor_level integer;
    current_level integer;
    m loyalty.member;
BEGIN
    IF p.tier_ladder IS NULL THEN
        RAISE EXCEPTION 'program "%" has no tier ladder', program
            USING ERRCODE = '55000', HINT = 'Set one with loyalty.set_tier_ladder().';
    END IF;
    IF member_id IS NULL OR tier IS NULL OR "until" IS NULL THEN
        RAISE EXCEPTION 'member_id, tier and until must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT l.level INTO floor_level FROM loyalty.tier_levels(p.tier_ladder) l WHERE l.tier = set_tier_floor.tier;
    IF floor_level IS NULL THEN
        RAISE EXCEPTION 'tier "%" is not a level of program "%"', tier, program
            USING ERRCODE = '22023',
                  HINT = pg_catalog.format('Levels: %s.', (SELECT string_agg(l.tier, ', ' ORDER BY l.level)
                                                          FROM loyalty.tier_levels(p.tier_ladder) l));
    END IF;
    PERFORM loyalty.enroll(program, member_id);
    SELECT * INTO m FROM loyalty.member x
     WHERE x.program = set_tier_floor.program AND x.member_id = set_tier_floor.member_id FOR UPDATE;
    SELECT coalesce((SELECT l.level FROM loyalty.tier_levels(p.tier_ladder) l WHERE l.tier = m.tier), 1)
      INTO current_level;
    UPDATE loyalty.member x SET tier_floor = set_tier_floor.tier, tier_floor_until = set_tier_floor."until"
     WHERE x.program = set_tier_floor.program AND x.member_id = set_tier_floor.member_id;
    IF floor_level > current_level AND "until" > now() THEN
        UPDATE loyalty.member x SET tier = set_tier_floor.tier, tier_since = now(), tier_below_since = NULL
         WHERE x.program = set_tier_floor.program AND x.member_id = set_tier_floor.member_id;
        INSERT INTO loyalty.tier_history (program, member_id, from_tier, to_tier, reason, changed_at)
        VALUES (program, member_id, m.tier, tier, 'floor', now());
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.set_tier_floor(text, text, text, timestamptz) IS
    'Guarantees a member at least a tier until a time (support override); raises the member to it now if below';

CREATE VIEW @extschema@.tier_distribution AS
    SELECT m.program, coalesce(m.tier, l.tier) AS tier, l.level, count(*) AS members,
           round(count(*) / sum(count(*)) OVER (PARTITION BY m.program), 4) AS member_share
      FROM @extschema@.member m
      JOIN @extschema@.program p ON p.code = m.program AND p.tier_ladder IS NOT NULL
      JOIN LATERAL @extschema@.tier_levels(p.tier_ladder) l ON l.tier = coalesce(m.tier, (SELECT f.tier FROM @extschema@.tier_levels(p.tier_ladder) f WHERE f.level = 1))
     GROUP BY m.program, coalesce(m.tier, l.tier), l.level;
COMMENT ON VIEW @extschema@.tier_distribution IS 'Members per tier of each program with a ladder (members without a tier count in the first level)';
COMMENT ON COLUMN @extschema@.tier_distribution.program IS 'Program code';
COMMENT ON COLUMN @extschema@.tier_distribution.tier IS 'Level name';
COMMENT ON COLUMN @extschema@.tier_distribution.level IS 'Level number, 1 the lowest';
COMMENT ON COLUMN @extschema@.tier_distribution.members IS 'Members holding the tier';
COMMENT ON COLUMN @extschema@.tier_distribution.member_share IS 'Share of the program''s members, 0 to 1';

REVOKE ALL ON FUNCTION @extschema@.recalculate_tiers(text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.set_tier_floor(text, text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.recalculate_tiers(text, timestamptz),
                          @extschema@.set_tier_floor(text, text, text, timestamptz) TO loyalty_admin;
GRANT SELECT ON @extschema@.tier_history, @extschema@.tier_distribution TO loyalty_admin, loyalty_reader;

-- For very large programs: recalculation in chunks of members, each committed.
CREATE FUNCTION @extschema@.recalculate_tiers_chunk(program text, as_of timestamptz, after_member text,
                                                   max_members integer,
                                                   OUT last_member text, OUT members bigint, OUT upgraded bigint,
                                                   OUT downgraded bigint, OUT grace_started bigint,
                                                   OUT unchanged bigint)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS 'MODULE_PATHNAME', 'loyalty_recalculate_tiers_chunk';
COMMENT ON FUNCTION @extschema@.recalculate_tiers_chunk(text, timestamptz, text, integer) IS
    'recalculate_tiers for at most max_members members after after_member (in member id order; NULL: from the start); returns the last member done and the counts';

-- A procedure that commits can be neither SECURITY DEFINER nor carry a SET
-- clause: it runs as the caller, names everything in full.
CREATE PROCEDURE @extschema@.recalculate_tiers_batched(program text, as_of timestamptz DEFAULT now(),
                                                      chunk_members integer DEFAULT 10000)
LANGUAGE plpgsql
AS $$
DECLARE
    chunk record;
    after text;
    done bigint := 0;
    up bigint := 0;
    down bigint := 0;
BEGIN
    LOOP
        SELECT * INTO chunk FROM loyalty.recalculate_tiers_chunk(program, as_of, after, chunk_members);
        EXIT WHEN chunk.members = 0;
        after := chunk.last_member;
        done := done + chunk.members;
        up := up + chunk.upgraded;
        down := down + chunk.downgraded;
        RAISE NOTICE 'loyalty: recalculate_tiers %: % members done, % upgraded, % downgraded',
            program, done, up, down;
        COMMIT;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE @extschema@.recalculate_tiers_batched(text, timestamptz, integer) IS
    'Runs loyalty.recalculate_tiers in chunks of chunk_members members, committing after each, with a NOTICE of progress';

REVOKE ALL ON FUNCTION @extschema@.recalculate_tiers_chunk(text, timestamptz, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.recalculate_tiers_chunk(text, timestamptz, text, integer) TO loyalty_admin;
REVOKE ALL ON PROCEDURE @extschema@.recalculate_tiers_batched(text, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE @extschema@.recalculate_tiers_batched(text, timestamptz, integer) TO loyalty_admin;
-- Lifecycle stages and the BI views (readable by loyalty_reader).

ALTER TABLE @extschema@.program
    ADD COLUMN new_days integer NOT NULL DEFAULT 30,
    ADD COLUMN at_risk_days integer NOT NULL DEFAULT 60,
    ADD COLUMN dormant_days integer NOT NULL DEFAULT 120,
    ADD COLUMN churned_days integer NOT NULL DEFAULT 365,
    ADD COLUMN point_value numeric NOT NULL DEFAULT 0.01,
    ADD CONSTRAINT program_lifecycle_days CHECK (
        0 < new_days AND 0 < at_risk_days AND at_risk_days < dormant_days AND dormant_days < churned_days),
    ADD CONSTRAINT program_point_value CHECK (point_value >= 0);
COMMENT ON COLUMN @extschema@.program.new_days IS 'A member is new up to this many days after the first order';
COMMENT ON COLUMN @extschema@.program.at_risk_days IS 'At risk after this many days without an order';
COMMENT ON COLUMN @extschema@.program.dormant_days IS 'Dormant after this many days without an order';
COMMENT ON COLUMN @extschema@.program.churned_days IS 'Churned after this many days without an order';
COMMENT ON COLUMN @extschema@.program.point_value IS 'What one point costs the shop, in base currency: values the points liability';

CREATE FUNCTION @extschema@.set_lifecycle(program text, new_days integer, at_risk_days integer,
                                         dormant_days integer, churned_days integer)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF new_days IS NULL OR at_risk_days IS NULL OR dormant_days IS NULL OR churned_days IS NULL
       OR new_days <= 0 OR at_risk_days <= 0 OR at_risk_days >= dormant_days OR dormant_days >= churned_days THEN
        RAISE EXCEPTION 'invalid lifecycle thresholds: new %, at risk %, dormant %, churned %',
            coalesce(new_days::text, 'NULL'), coalesce(at_risk_days::text, 'NULL'),
            coalesce(dormant_days::text, 'NULL'), coalesce(churned_days::text, 'NULL')
            USING ERRCODE = '22023',
                  DETAIL = 'Each is a number of days: new above 0, and 0 < at risk < dormant < churned.';
    END IF;
    UPDATE loyalty.program p
       SET new_days = set_lifecycle.new_days, at_risk_days = set_lifecycle.at_risk_days,
           dormant_days = set_lifecycle.dormant_days, churned_days = set_lifecycle.churned_days
     WHERE p.code = set_lifecycle.program;
END
$$;
COMMENT ON FUNCTION @extschema@.set_lifecycle(text, integer, integer, integer, integer) IS
    'Sets a program''s lifecycle thresholds in days (defaults: new 30, at risk 60, dormant 120, churned 365)';

CREATE FUNCTION @extschema@.set_point_value(program text, point_value numeric)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF point_value IS NULL OR point_value < 0 OR point_value = 'NaN' THEN
        RAISE EXCEPTION 'invalid point value: %', coalesce(point_value::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'A point value is what one point costs the shop, in base currency, zero or more.';
    END IF;
    UPDATE loyalty.program p SET point_value = set_point_value.point_value WHERE p.code = set_point_value.program;
END
$$;
COMMENT ON FUNCTION @extschema@.set_point_value(text, numeric) IS
    'Sets what one point costs the shop in base currency (default 0.01), used to value the liability';

-- An order's value in base currency: amount (gross) and net of refunds.
-- Orders priced by the trigger carry their rate; guests' orders are
-- converted at the rate valid at the order's time.
CREATE VIEW @extschema@.order_value AS
    SELECT o.program, o.order_id, o.member_id, o.ordered_at, o.closed,
           round(o.amount * r.rate, 4) AS gross,
           CASE WHEN o.closed THEN 0 ELSE round((o.amount - least(o.refunded_amount, o.amount)) * r.rate, 4) END AS net
      FROM @extschema@.order_earning o
      JOIN @extschema@.program p ON p.code = o.program
     CROSS JOIN LATERAL (SELECT coalesce(o.fx_rate,
                                         @extschema@.fx_rate_at(coalesce(o.currency, p.base_currency),
                                                                p.base_currency, o.ordered_at)) AS rate) r
     WHERE o.amount > 0;
COMMENT ON VIEW @extschema@.order_value IS 'Every order with a positive amount, valued in its program''s base currency';
COMMENT ON COLUMN @extschema@.order_value.program IS 'Program code';
COMMENT ON COLUMN @extschema@.order_value.order_id IS 'Order id in the application''s table';
COMMENT ON COLUMN @extschema@.order_value.member_id IS 'Member of the current generation; NULL for a guest';
COMMENT ON COLUMN @extschema@.order_value.ordered_at IS 'The order''s time';
COMMENT ON COLUMN @extschema@.order_value.closed IS 'Cancelled, fully refunded by status, or deleted';
COMMENT ON COLUMN @extschema@.order_value.gross IS 'Amount in base currency, 4 decimals (NULL when no FX rate is known)';
COMMENT ON COLUMN @extschema@.order_value.net IS 'Amount less refunds in base currency, 4 decimals; 0 when cancelled';

-- Lifecycle stage of every member at a time.
CREATE FUNCTION @extschema@.member_lifecycle_at(program text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (program text, member_id text, stage text, first_order_at timestamptz,
               last_order_at timestamptz, days_since_first integer, days_since_last integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
    WITH orders AS (
        SELECT v.program, v.member_id, min(v.ordered_at) AS first_at, max(v.ordered_at) AS last_at
          FROM loyalty.order_value v
         WHERE v.member_id IS NOT NULL AND v.net > 0 AND v.ordered_at <= as_of
           AND (member_lifecycle_at.program IS NULL OR v.program = member_lifecycle_at.program)
         GROUP BY 1, 2
    ), days AS (
        SELECT m.program, m.member_id, o.first_at, o.last_at,
               floor(extract(epoch FROM as_of - o.first_at) / 86400)::integer AS since_first,
               floor(extract(epoch FROM as_of - o.last_at) / 86400)::integer AS since_last,
               p.new_days, p.at_risk_days, p.dormant_days, p.churned_days
          FROM loyalty.member m
          JOIN loyalty.program p ON p.code = m.program
          LEFT JOIN orders o ON o.program = m.program AND o.member_id = m.member_id
         WHERE member_lifecycle_at.program IS NULL OR m.program = member_lifecycle_at.program
    )
    SELECT d.program, d.member_id,
           CASE WHEN d.last_at IS NULL THEN 'registered'
                WHEN d.since_last > d.churned_days THEN 'churned'
                WHEN d.since_last > d.dormant_days THEN 'dormant'
                WHEN d.since_last > d.at_risk_days THEN 'at_risk'
                WHEN d.since_first <= d.new_days THEN 'new'
                ELSE 'active' END,
           d.first_at, d.last_at, d.since_first, d.since_last
      FROM days d
$$;
COMMENT ON FUNCTION @extschema@.member_lifecycle_at(text, timestamptz) IS
    'Lifecycle stage of each member at as_of: registered (no order), new, active, at_risk, dormant, churned, by the program''s thresholds';

CREATE VIEW @extschema@.member_lifecycle AS
    SELECT * FROM @extschema@.member_lifecycle_at(NULL, now());
COMMENT ON VIEW @extschema@.member_lifecycle IS 'Lifecycle stage of every member now (see member_lifecycle_at for another time)';
COMMENT ON COLUMN @extschema@.member_lifecycle.program IS 'Program code';
COMMENT ON COLUMN @extschema@.member_lifecycle.member_id IS 'Member id';
COMMENT ON COLUMN @extschema@.member_lifecycle.first_order_at IS 'First order with something left after refunds';
COMMENT ON COLUMN @extschema@.member_lifecycle.last_order_at IS 'Last order with something left after refunds';
COMMENT ON COLUMN @extschema@.member_lifecycle.stage IS 'registered, new, active, at_risk, dormant or churned';
COMMENT ON COLUMN @extschema@.member_lifecycle.days_since_first IS 'Whole days since the first order';
COMMENT ON COLUMN @extschema@.member_lifecycle.days_since_last IS 'Whole days since the last order';

CREATE VIEW @extschema@.member_360 AS
    WITH orders AS (
        SELECT v.program, v.member_id, count(*) FILTER (WHERE v.net > 0) AS orders,
               coalesce(sum(v.net), 0) AS net_spend
          FROM @extschema@.order_value v WHERE v.member_id IS NOT NULL GROUP BY 1, 2
    ), lots AS (
        SELECT l.program, l.member_id,
               sum(l.remaining) FILTER (WHERE l.available_at <= now()
                                        AND (l.expires_at IS NULL OR l.expires_at > now())) AS available,
               sum(l.remaining) FILTER (WHERE l.available_at > now()
                                        AND (l.expires_at IS NULL OR l.expires_at > now())) AS pending
          FROM @extschema@.lot l WHERE l.remaining > 0 GROUP BY 1, 2
    )
    SELECT m.program, m.member_id, m.status::text AS status, m.enrolled_at,
           coalesce(l.available, 0) - m.debt AS available_points,
           coalesce(l.pending, 0) AS pending_points,
           m.debt AS debt_points,
           m.lifetime_earned, m.lifetime_redeemed,
           r.rfm::text AS rfm, r.segment, r.scored_at AS rfm_scored_at,
           c.stage AS lifecycle_stage, c.first_order_at, c.last_order_at,
           coalesce(o.orders, 0) AS orders, coalesce(o.net_spend, 0) AS net_spend,
           CASE WHEN p.tier_ladder IS NOT NULL
                THEN coalesce(m.tier, (SELECT f.tier FROM @extschema@.tier_levels(p.tier_ladder) f WHERE f.level = 1))
           END AS tier
      FROM @extschema@.member m
      JOIN @extschema@.program p ON p.code = m.program
      LEFT JOIN lots l ON l.program = m.program AND l.member_id = m.member_id
      LEFT JOIN orders o ON o.program = m.program AND o.member_id = m.member_id
      LEFT JOIN @extschema@.member_rfm r ON r.program = m.program AND r.member_id = m.member_id
      LEFT JOIN @extschema@.member_lifecycle c ON c.program = m.program AND c.member_id = m.member_id;
COMMENT ON VIEW @extschema@.member_360 IS 'One row per member: balances, RFM and segment (last score_rfm), lifecycle stage, orders, net spend and tier';
COMMENT ON COLUMN @extschema@.member_360.program IS 'Program code';
COMMENT ON COLUMN @extschema@.member_360.member_id IS 'Member id';
COMMENT ON COLUMN @extschema@.member_360.status IS 'active, held or forgotten';
COMMENT ON COLUMN @extschema@.member_360.enrolled_at IS 'When the member was enrolled';
COMMENT ON COLUMN @extschema@.member_360.available_points IS 'Points spendable now, less debt';
COMMENT ON COLUMN @extschema@.member_360.pending_points IS 'Points still in their pending days';
COMMENT ON COLUMN @extschema@.member_360.debt_points IS 'Points owed from refunds after spending';
COMMENT ON COLUMN @extschema@.member_360.lifetime_earned IS 'Points ever earned';
COMMENT ON COLUMN @extschema@.member_360.lifetime_redeemed IS 'Points ever redeemed, net of cancellations';
COMMENT ON COLUMN @extschema@.member_360.rfm IS 'RFM scores of the last score_rfm pass, as text (''543'')';
COMMENT ON COLUMN @extschema@.member_360.segment IS 'RFM segment of the last score_rfm pass';
COMMENT ON COLUMN @extschema@.member_360.rfm_scored_at IS 'as_of of the last score_rfm pass';
COMMENT ON COLUMN @extschema@.member_360.lifecycle_stage IS 'registered, new, active, at_risk, dormant or churned, now';
COMMENT ON COLUMN @extschema@.member_360.first_order_at IS 'First order with something left after refunds';
COMMENT ON COLUMN @extschema@.member_360.last_order_at IS 'Last order with something left after refunds';
COMMENT ON COLUMN @extschema@.member_360.orders IS 'Orders with something left after refunds';
COMMENT ON COLUMN @extschema@.member_360.net_spend IS 'Net spend in base currency, all time';
COMMENT ON COLUMN @extschema@.member_360.tier IS 'Tier held (NULL when the program has no ladder)';

CREATE VIEW @extschema@.segment_summary AS
    SELECT r.program, r.segment, count(*) AS members,
           round(count(*) / sum(count(*)) OVER (PARTITION BY r.program), 4) AS member_share,
           round(avg(r.recency_days), 1) AS avg_recency_days,
           round(avg(r.frequency), 2) AS avg_frequency,
           round(avg(r.monetary), 2) AS avg_monetary,
           round(sum(r.monetary) / nullif(sum(sum(r.monetary)) OVER (PARTITION BY r.program), 0), 4) AS revenue_share
      FROM @extschema@.member_rfm r
     GROUP BY r.program, r.segment;
COMMENT ON VIEW @extschema@.segment_summary IS 'Per program and RFM segment (last score_rfm pass): members, their share, average recency, frequency and monetary, share of revenue';
COMMENT ON COLUMN @extschema@.segment_summary.program IS 'Program code';
COMMENT ON COLUMN @extschema@.segment_summary.segment IS 'RFM segment';
COMMENT ON COLUMN @extschema@.segment_summary.members IS 'Scored members in the segment';
COMMENT ON COLUMN @extschema@.segment_summary.avg_recency_days IS 'Average days since the last order';
COMMENT ON COLUMN @extschema@.segment_summary.avg_frequency IS 'Average orders in the window';
COMMENT ON COLUMN @extschema@.segment_summary.avg_monetary IS 'Average net spend in the window, base currency';
COMMENT ON COLUMN @extschema@.segment_summary.member_share IS 'Share of the program''s scored members, 0 to 1';
COMMENT ON COLUMN @extschema@.segment_summary.revenue_share IS 'Share of the scored members'' net spend, 0 to 1';

CREATE VIEW @extschema@.kpi_daily AS
    WITH orders AS (
        SELECT v.program, (v.ordered_at AT TIME ZONE p.timezone)::date AS day, v.member_id, v.gross,
               v.ordered_at
          FROM @extschema@.order_value v JOIN @extschema@.program p ON p.code = v.program
         WHERE NOT v.closed
    ), firsts AS (
        SELECT program, member_id, min(day) AS first_day FROM orders WHERE member_id IS NOT NULL GROUP BY 1, 2
    ), order_days AS (
        SELECT o.program, o.day, count(*) AS orders, sum(o.gross) AS gmv,
               count(DISTINCT o.member_id) AS active_members,
               count(DISTINCT o.member_id) FILTER (WHERE f.first_day = o.day) AS new_members
          FROM orders o LEFT JOIN firsts f ON f.program = o.program AND f.member_id = o.member_id
         GROUP BY 1, 2
    ), repurchase AS (
        SELECT b.program, b.day,
               avg((EXISTS (SELECT 1 FROM orders a
                             WHERE a.program = b.program AND a.member_id = b.member_id
                               AND a.day > b.day AND a.day <= b.day + 30))::integer) AS rate
          FROM (SELECT DISTINCT program, day, member_id FROM orders WHERE member_id IS NOT NULL) b
         GROUP BY 1, 2
    ), points AS (
        SELECT l.program, (l.occurred_at AT TIME ZONE p.timezone)::date AS day,
               coalesce(sum(l.points) FILTER (WHERE l.kind IN ('earn', 'adjust')), 0) AS earned,
               coalesce(-sum(l.points) FILTER (WHERE l.kind IN ('redeem', 'unredeem')), 0) AS redeemed,
               coalesce(-sum(l.points) FILTER (WHERE l.kind = 'expire'), 0) AS expired,
               coalesce(-sum(l.points) FILTER (WHERE l.kind = 'reverse'), 0) AS reversed,
               sum(l.points) AS net
          FROM @extschema@.ledger l JOIN @extschema@.program p ON p.code = l.program
         GROUP BY 1, 2
    ), days AS (
        SELECT program, day FROM order_days UNION SELECT program, day FROM points
    )
    SELECT d.program, d.day,
           coalesce(o.orders, 0) AS orders,
           coalesce(o.gmv, 0) AS gmv,
           round(o.gmv / nullif(o.orders, 0), 2) AS aov,
           coalesce(o.active_members, 0) AS active_members,
           coalesce(o.new_members, 0) AS new_members,
           round(r.rate, 4) AS repurchase_rate_30d,
           coalesce(pt.earned, 0) AS points_earned,
           coalesce(pt.redeemed, 0) AS points_redeemed,
           coalesce(pt.expired, 0) AS points_expired,
           coalesce(pt.reversed, 0) AS points_reversed,
           round(pt.redeemed::numeric / nullif(pt.earned, 0), 4) AS redemption_rate,
           sum(coalesce(pt.net, 0)) OVER w AS points_outstanding,
           sum(coalesce(pt.net, 0)) OVER w * p.point_value AS liability
      FROM days d
      JOIN @extschema@.program p ON p.code = d.program
      LEFT JOIN order_days o ON o.program = d.program AND o.day = d.day
      LEFT JOIN repurchase r ON r.program = d.program AND r.day = d.day
      LEFT JOIN points pt ON pt.program = d.program AND pt.day = d.day
    WINDOW w AS (PARTITION BY d.program ORDER BY d.day);
COMMENT ON VIEW @extschema@.kpi_daily IS
    'Per program and day in the program''s time zone: orders, GMV, AOV, active and new members, 30-day repurchase rate, points earned/redeemed/expired/reversed, redemption rate, points outstanding and the liability at point_value';
COMMENT ON COLUMN @extschema@.kpi_daily.program IS 'Program code';
COMMENT ON COLUMN @extschema@.kpi_daily.day IS 'Day in the program''s time zone';
COMMENT ON COLUMN @extschema@.kpi_daily.orders IS 'Orders placed that day and not cancelled (guests included)';
COMMENT ON COLUMN @extschema@.kpi_daily.gmv IS 'Their gross amount in base currency';
COMMENT ON COLUMN @extschema@.kpi_daily.aov IS 'GMV / orders';
COMMENT ON COLUMN @extschema@.kpi_daily.active_members IS 'Members who ordered that day';
COMMENT ON COLUMN @extschema@.kpi_daily.new_members IS 'Members whose first order was that day';
COMMENT ON COLUMN @extschema@.kpi_daily.repurchase_rate_30d IS 'Share of that day''s ordering members who ordered again within the next 30 days';
COMMENT ON COLUMN @extschema@.kpi_daily.points_earned IS 'Points credited that day (earn and adjust)';
COMMENT ON COLUMN @extschema@.kpi_daily.points_redeemed IS 'Points redeemed that day, net of cancellations';
COMMENT ON COLUMN @extschema@.kpi_daily.points_expired IS 'Points expired that day';
COMMENT ON COLUMN @extschema@.kpi_daily.points_reversed IS 'Points taken back by refunds that day';
COMMENT ON COLUMN @extschema@.kpi_daily.redemption_rate IS 'points_redeemed / points_earned that day';
COMMENT ON COLUMN @extschema@.kpi_daily.points_outstanding IS 'Points outstanding at the end of the day (every ledger row up to it)';
COMMENT ON COLUMN @extschema@.kpi_daily.liability IS 'points_outstanding x the program''s point_value, in base currency';

REVOKE ALL ON FUNCTION @extschema@.set_lifecycle(text, integer, integer, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.set_point_value(text, numeric) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.member_lifecycle_at(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.set_lifecycle(text, integer, integer, integer, integer),
                          @extschema@.set_point_value(text, numeric) TO loyalty_admin;
GRANT EXECUTE ON FUNCTION @extschema@.member_lifecycle_at(text, timestamptz) TO loyalty_admin, loyalty_reader;
GRANT SELECT ON @extschema@.order_value, @extschema@.member_lifecycle, @extschema@.member_360,
                @extschema@.segment_summary, @extschema@.kpi_daily
   TO loyalty_admin, loyalty_reader;
