-- loyalty extension install script.  Built by concatenating src/sql/[0-9]*.sql.
\echo Use "CREATE EXTENSION loyalty" to load this file. \quit

/*
 * Roles are cluster-wide: create them once, keep them on DROP EXTENSION.
 * loyalty_admin configures programs; loyalty_app is what the application
 * connects as (balance, redeem, enroll); loyalty_reader is for BI tools.
 * A role that exists already (an earlier install, or made by the DBA) is
 * reused, members and LOGIN included, but only if it is a plain role: a
 * role with an attribute beyond the extension's grants (superuser, create
 * role or database, replication, bypass RLS) would hand that attribute to
 * everyone the DBA makes a member, so the install refuses it.  Privileges
 * are granted in 99_privileges.sql.
 */
DO $roles$
DECLARE
    r pg_catalog.text;
    extra pg_catalog.text;
BEGIN
    FOREACH r IN ARRAY ARRAY['loyalty_admin', 'loyalty_app', 'loyalty_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
            CONTINUE;
        END IF;
        SELECT pg_catalog.concat_ws(', ',
                   CASE WHEN a.rolsuper THEN 'SUPERUSER' END, CASE WHEN a.rolcreaterole THEN 'CREATEROLE' END,
                   CASE WHEN a.rolcreatedb THEN 'CREATEDB' END, CASE WHEN a.rolreplication THEN 'REPLICATION' END,
                   CASE WHEN a.rolbypassrls THEN 'BYPASSRLS' END)
          INTO extra
          FROM pg_catalog.pg_roles a WHERE a.rolname OPERATOR(pg_catalog.=) r;
        IF extra OPERATOR(pg_catalog.<>) '' THEN
            RAISE EXCEPTION 'role "%" exists with %', r, extra
                USING ERRCODE = '55000',
                      DETAIL = 'loyalty reuses an existing loyalty role only when it has no attribute beyond LOGIN: its members would hold these too.',
                      HINT = pg_catalog.format('ALTER ROLE %I NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS, or drop it, then CREATE EXTENSION loyalty again.', r);
        END IF;
    END LOOP;
END
$roles$;

-- What a ledger row records, and the states of a member.
CREATE TYPE @extschema@.ledger_kind AS ENUM ('earn', 'adjust', 'unredeem', 'redeem', 'reverse', 'expire');
COMMENT ON TYPE @extschema@.ledger_kind IS
    'Ledger row kinds: earn (order or named credit), adjust (manual credit), unredeem (cancelled redemption) add points; redeem, reverse (refund), expire take them';
CREATE TYPE @extschema@.member_status AS ENUM ('active', 'held', 'forgotten');
COMMENT ON TYPE @extschema@.member_status IS
    'active; held: earns but cannot redeem (fraud review); forgotten: erased on request';

-- The business rules every part reads the same way.  SQL, views and the
-- statements the C code runs call these functions instead of repeating the
-- rule (they are inlined by the planner, so indexes still serve them).
CREATE FUNCTION @extschema@.program_code_valid(code text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN code OPERATOR(pg_catalog.~) '^[A-Za-z0-9_.-]{1,63}$';
COMMENT ON FUNCTION @extschema@.program_code_valid(text) IS
    'Whether a text is a valid program code: 1 to 63 letters, digits, "_", "." or "-"';

CREATE FUNCTION @extschema@.lot_spendable(available_at timestamptz, expires_at timestamptz,
                                          as_of timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN available_at OPERATOR(pg_catalog.<=) as_of
   AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) as_of);
COMMENT ON FUNCTION @extschema@.lot_spendable(timestamptz, timestamptz, timestamptz) IS
    'Whether a lot''s points may be spent at as_of: its pending time is over and it has not expired';

CREATE FUNCTION @extschema@.lot_pending(available_at timestamptz, expires_at timestamptz,
                                        as_of timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN available_at OPERATOR(pg_catalog.>) as_of
   AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) as_of);
COMMENT ON FUNCTION @extschema@.lot_pending(timestamptz, timestamptz, timestamptz) IS
    'Whether a lot''s points are still pending at as_of (not spendable yet, not expired)';

CREATE FUNCTION @extschema@.lot_expired(expires_at timestamptz, as_of timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN expires_at OPERATOR(pg_catalog.<=) as_of;
COMMENT ON FUNCTION @extschema@.lot_expired(timestamptz, timestamptz) IS
    'Whether a lot has expired at as_of (a lot without expiry never does)';

CREATE FUNCTION @extschema@.ledger_kind_class(kind @extschema@.ledger_kind) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE kind WHEN 'earn' THEN 'earned' WHEN 'adjust' THEN 'earned'
                 WHEN 'redeem' THEN 'redeemed' WHEN 'unredeem' THEN 'redeemed'
                 WHEN 'reverse' THEN 'reversed' WHEN 'expire' THEN 'expired' END;
COMMENT ON FUNCTION @extschema@.ledger_kind_class(@extschema@.ledger_kind) IS
    'The lifetime figure a ledger kind counts in: earned (earn, adjust), redeemed (redeem, unredeem), reversed, expired';

-- A program: one loyalty scheme with its own currency, rates and policies.
CREATE TABLE @extschema@.program (
    code            text PRIMARY KEY
                    CHECK (@extschema@.program_code_valid(code)),
    base_currency   text NOT NULL CHECK (base_currency ~ '^[A-Z]{3}$'),
    earn_rate       numeric NOT NULL CHECK (earn_rate >= 0 AND earn_rate < 'Infinity'),
    pending_days    integer NOT NULL DEFAULT 0 CHECK (pending_days >= 0),
    expire_after    interval CHECK (expire_after > interval '0'),
    refund_policy   text NOT NULL DEFAULT 'debt'
                    CHECK (refund_policy IN ('debt', 'within_balance')),
    timezone        text NOT NULL DEFAULT 'UTC',
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Kept trimmed and lower case (loyalty.closing_statuses_of); the trigger
    -- compares an order's status trimmed and case-insensitively.
    closing_statuses text[] NOT NULL DEFAULT '{refunded,cancelled,canceled,returned,chargeback}'
                    CHECK (array_position(closing_statuses, NULL) IS NULL)
);
COMMENT ON TABLE @extschema@.program IS
    'Loyalty programs: base currency, earn rate (points per base unit), pending days, expiry, refund policy, time zone';
COMMENT ON COLUMN @extschema@.program.closing_statuses IS
    'Order statuses that close an order (reverse all its points), trimmed and lower case; matched trimmed and case-insensitively';

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
    id          bigint NOT NULL DEFAULT nextval('@extschema@.ledger_id_seq'),
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
    CONSTRAINT ledger_sign CHECK ((points > 0) = (kind < 'redeem')),
    -- Keys include the member: the ledger can be distributed by member_id
    -- (loyalty.distribute()); the id alone is unique anyway (a sequence).
    PRIMARY KEY (id, member_id)
);
ALTER SEQUENCE @extschema@.ledger_id_seq OWNED BY @extschema@.ledger.id;
-- A reference is an idempotency key of the member's account: unique per
-- (program, member), so it is exact where the member's rows live.  The
-- member id last: cancel_redemption (which has no member) finds a ref by
-- (program, ref) with the same index.
CREATE UNIQUE INDEX ledger_ref_key ON @extschema@.ledger (program, ref, member_id) WHERE ref IS NOT NULL;
CREATE UNIQUE INDEX ledger_unredeem_key ON @extschema@.ledger (related_id, member_id) WHERE kind = 'unredeem';
CREATE INDEX ledger_member_idx ON @extschema@.ledger (program, member_id, id);
COMMENT ON TABLE @extschema@.ledger IS
    'Append-only points ledger: earn, adjust (manual credit), redeem, unredeem (cancelled redemption), reverse (refund), expire';

-- Earn lots: what is left of each credit, when it becomes available and expires.
CREATE TABLE @extschema@.lot (
    id              bigint NOT NULL,
    program         text NOT NULL,
    member_id       text NOT NULL,
    order_id        text,
    earned          bigint NOT NULL,
    remaining       bigint NOT NULL,
    available_at    timestamptz NOT NULL,
    expires_at      timestamptz,
    CONSTRAINT lot_remaining_range CHECK (remaining BETWEEN 0 AND earned),
    PRIMARY KEY (id, member_id)
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
    rate            numeric NOT NULL CHECK (rate > 0 AND rate < 'Infinity'),
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

-- The ledger is append-only, even for the extension's own functions, with
-- one exception: merging and forgetting a member (rewrite_member_id, in
-- 38_member_admin.sql) replace its id (and forgetting, the id in referral
-- reward refs), and nothing else, in its rows; they name the change in the
-- transaction's setting loyalty.member_rewrite (program, old id, new id).  Only the extension's owner can update the
-- ledger at all.
CREATE FUNCTION @extschema@.refuse_ledger_change() RETURNS trigger
LANGUAGE plpgsql AS
$$
DECLARE
    rewrite text[];
    pre text;
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- {program, old id, new id}
        rewrite := pg_catalog.string_to_array(pg_catalog.current_setting('loyalty.member_rewrite', true), E'\x1f');
        pre := pg_catalog.split_part(OLD.ref, ':', 1) OPERATOR(pg_catalog.||) ':';
        IF pg_catalog.cardinality(rewrite) OPERATOR(pg_catalog.=) 3
           AND OLD.program OPERATOR(pg_catalog.=) rewrite[1]
           -- The member id kept, or the old id replaced by the new one.
           AND (NEW.member_id IS NOT DISTINCT FROM OLD.member_id
                OR (OLD.member_id OPERATOR(pg_catalog.=) rewrite[2] AND NEW.member_id OPERATOR(pg_catalog.=) rewrite[3]))
           -- The ref kept, or a referral reward's ref naming the old id
           -- (settle_referrals) renamed the same way (forget_member).
           AND (NEW.ref IS NOT DISTINCT FROM OLD.ref
                OR (pre OPERATOR(pg_catalog.=) ANY (ARRAY['referral:', 'referral-milestone:'])
                    AND pg_catalog.starts_with(OLD.ref, pre OPERATOR(pg_catalog.||) rewrite[2] OPERATOR(pg_catalog.||) ':')
                    AND NEW.ref OPERATOR(pg_catalog.=) (pre OPERATOR(pg_catalog.||) rewrite[3] OPERATOR(pg_catalog.||)
                        pg_catalog.substr(OLD.ref, pg_catalog.length(pre OPERATOR(pg_catalog.||) rewrite[2]) OPERATOR(pg_catalog.+) 1))))
           AND (NEW.id, NEW.program, NEW.kind, NEW.points, NEW.order_id, NEW.lot_id, NEW.related_id,
                NEW.reason, NEW.occurred_at, NEW.recorded_at)
               IS NOT DISTINCT FROM
               (OLD.id, OLD.program, OLD.kind, OLD.points, OLD.order_id, OLD.lot_id, OLD.related_id,
                OLD.reason, OLD.occurred_at, OLD.recorded_at) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'loyalty.ledger is append-only'
        USING ERRCODE = 'LY004',
              DETAIL = pg_catalog.format('%s on the ledger was refused.', TG_OP),
              HINT = 'Correct a balance with loyalty.adjust(), which adds ledger rows.';
END
$$;
COMMENT ON FUNCTION @extschema@.refuse_ledger_change() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE on loyalty.ledger, except the member id rewrite of a merge or forget (and, for a forget, the referral refs naming the id)';
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
