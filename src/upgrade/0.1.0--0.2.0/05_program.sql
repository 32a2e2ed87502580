-- 0.1.0 -> 0.2.0, what changed in src/sql/10_program.sql since 0.1.0: new objects created, changed functions and views replaced, tables altered.

-- Programs, members and FX rates: configuration, plain SQL.

-- Raises unless code is a well-formed ISO 4217 code; returns it upper-cased.
CREATE OR REPLACE FUNCTION @extschema@.check_currency(code text, what text DEFAULT 'currency')
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
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

-- Raises 42704 unless the program exists.
CREATE OR REPLACE FUNCTION @extschema@.require_program(program text)
RETURNS @extschema@.program
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
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

-- The statuses that close an order, as stored: trimmed, lower case, sorted,
-- each once (the trigger compares a status trimmed and case-insensitively,
-- StatusCloses in order_event.c).  Raises on a NULL or blank status.
CREATE OR REPLACE FUNCTION @extschema@.check_closing_statuses(statuses text[])
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF statuses IS NULL THEN
        RAISE EXCEPTION 'closing statuses must not be null' USING ERRCODE = '22004',
              HINT = 'Use an empty array for a program where only DELETE closes an order.';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(statuses) s WHERE s IS NULL OR btrim(s, E' \t\n\r\f\013') = '') THEN
        RAISE EXCEPTION 'invalid closing statuses: %', statuses
            USING ERRCODE = '22023', DETAIL = 'A closing status must not be null or blank.';
    END IF;
    RETURN ARRAY(SELECT DISTINCT lower(btrim(s, E' \t\n\r\f\013')) FROM unnest(statuses) s ORDER BY 1);
END
$$;

COMMENT ON FUNCTION @extschema@.check_closing_statuses(text[]) IS
    'Validates a list of order statuses that close an order; returns it trimmed, lower case, sorted, each once';

-- create_program gained closing_statuses (appended, defaulted: calls of
-- 0.1.0 work unchanged); the old signature goes.
DROP FUNCTION @extschema@.create_program(text, text, numeric, integer, interval, text, text);
CREATE OR REPLACE FUNCTION @extschema@.create_program(
    code text,
    base_currency text DEFAULT 'USD',
    earn_rate numeric DEFAULT 1,
    pending_days integer DEFAULT 0,
    expire_after interval DEFAULT NULL,
    refund_policy text DEFAULT 'debt',
    timezone text DEFAULT 'UTC',
    closing_statuses text[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    wanted loyalty.program;
    existing loyalty.program;
BEGIN
    IF code IS NULL THEN
        RAISE EXCEPTION 'program code must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT loyalty.program_code_valid(code) THEN
        RAISE EXCEPTION 'invalid program code: "%"', code
            USING ERRCODE = '22023',
                  DETAIL = 'A program code is 1 to 63 letters, digits, "_", "." or "-".';
    END IF;
    IF earn_rate IS NULL OR earn_rate < 0 OR earn_rate >= 'Infinity' THEN  -- NaN sorts above Infinity
        RAISE EXCEPTION 'invalid earn_rate: %', coalesce(earn_rate::text, 'NULL')
            USING ERRCODE = '22023',
                  DETAIL = 'earn_rate is the points earned per unit of base currency and must be zero or more and finite.';
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
    wanted.closing_statuses := loyalty.check_closing_statuses(
        coalesce(closing_statuses, '{refunded,cancelled,canceled,returned,chargeback}'));
    INSERT INTO loyalty.program (code, base_currency, earn_rate, pending_days, expire_after,
                                 refund_policy, timezone, created_at, closing_statuses)
    VALUES (wanted.code, wanted.base_currency, wanted.earn_rate, wanted.pending_days,
            wanted.expire_after, wanted.refund_policy, wanted.timezone, wanted.created_at,
            wanted.closing_statuses)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        -- Creating the same program twice is fine; creating it differently is not.
        SELECT * INTO existing FROM loyalty.program p WHERE p.code = wanted.code;
        -- closing_statuses only when given: set_closing_statuses() may have changed them.
        IF (existing.base_currency, existing.earn_rate, existing.pending_days, existing.expire_after,
            existing.refund_policy, existing.timezone)
           IS DISTINCT FROM (wanted.base_currency, wanted.earn_rate, wanted.pending_days, wanted.expire_after,
            wanted.refund_policy, wanted.timezone)
           OR (closing_statuses IS NOT NULL AND existing.closing_statuses IS DISTINCT FROM wanted.closing_statuses) THEN
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

COMMENT ON FUNCTION @extschema@.create_program(text, text, numeric, integer, interval, text, text, text[]) IS
    'Creates a loyalty program (idempotent for identical settings); closing_statuses NULL: refunded, cancelled, canceled, returned, chargeback; returns its code';

CREATE OR REPLACE FUNCTION @extschema@.set_closing_statuses(program text, statuses text[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    stored text[] := loyalty.check_closing_statuses(statuses);
BEGIN
    PERFORM loyalty.require_program(program);
    UPDATE loyalty.program p SET closing_statuses = stored WHERE p.code = set_closing_statuses.program;
    RETURN stored;
END
$$;

COMMENT ON FUNCTION @extschema@.set_closing_statuses(text, text[]) IS
    'Sets which order statuses close an order of a program (trimmed, case-insensitive); applies to later order events; returns the list as stored';

CREATE OR REPLACE FUNCTION @extschema@.enroll(program text, member_id text, profile jsonb DEFAULT '{}')
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
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

-- Holding and releasing go through hold_member / release_member
-- (36_holds.sql): they freeze and restore the member's pending lots.
CREATE OR REPLACE FUNCTION @extschema@.set_member_status(program text, member_id text, status text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member;
BEGIN
    PERFORM loyalty.require_program(program);
    IF status IS NULL OR status NOT IN ('active', 'held', 'forgotten') THEN
        RAISE EXCEPTION 'unknown member status: "%"', coalesce(status, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use active, held or forgotten.';
    END IF;
    m := loyalty.lock_member(program, member_id);
    IF status = 'held' THEN
        PERFORM loyalty.hold_member(program, member_id, 'manual', NULL);
        RETURN;
    END IF;
    IF m.status = 'held' THEN
        PERFORM loyalty.release_member(program, member_id, pg_catalog.format('set_member_status %s', status));
    END IF;
    UPDATE loyalty.member x SET status = set_member_status.status::loyalty.member_status
     WHERE x.program = set_member_status.program AND x.member_id = set_member_status.member_id;
END
$$;

COMMENT ON FUNCTION @extschema@.set_member_status(text, text, text) IS
    'Sets a member''s status: active (releases a hold), held (a manual hold: earns, points kept pending, cannot redeem) or forgotten';

CREATE OR REPLACE FUNCTION @extschema@.set_fx_rate(
    from_currency text, to_currency text, rate numeric,
    valid_from timestamptz DEFAULT '-infinity')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    f text := loyalty.check_currency(from_currency, 'from currency');
    t text := loyalty.check_currency(to_currency, 'to currency');
BEGIN
    IF f = t THEN
        RAISE EXCEPTION 'cannot set an FX rate from % to itself', f USING ERRCODE = '22023';
    END IF;
    IF rate IS NULL OR rate <= 0 OR rate >= 'Infinity' THEN  -- NaN sorts above Infinity
        RAISE EXCEPTION 'invalid FX rate for % to %: %', f, t, coalesce(rate::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'A rate is the amount of to_currency one unit of from_currency buys, positive and finite.';
    END IF;
    IF valid_from IS NULL THEN
        RAISE EXCEPTION 'valid_from must not be null' USING ERRCODE = '22004', HINT = 'Use ''-infinity'' for a rate valid for all past orders.';
    END IF;
    INSERT INTO loyalty.fx_rate AS r VALUES (f, t, rate, valid_from)
    ON CONFLICT ON CONSTRAINT fx_rate_pkey DO UPDATE SET rate = excluded.rate;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.fx_quote(from_currency text, to_currency text, at timestamptz,
                                     OUT rate numeric, OUT inverse boolean)
RETURNS SETOF record
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    -- PL/pgSQL, not SQL: on a Citus cluster a SQL function's parameters
    -- are not planned (the query failed, or found no rate).
    RETURN QUERY
    SELECT c.rate, c.inverse FROM (
        SELECT f.rate, f.valid_from, false AS inverse FROM @extschema@.fx_rate f
         WHERE f.from_currency OPERATOR(pg_catalog.=) fx_quote.from_currency
           AND f.to_currency OPERATOR(pg_catalog.=) fx_quote.to_currency
           AND f.valid_from OPERATOR(pg_catalog.<=) fx_quote.at
        UNION ALL
        SELECT f.rate, f.valid_from, true FROM @extschema@.fx_rate f
         WHERE f.from_currency OPERATOR(pg_catalog.=) fx_quote.to_currency
           AND f.to_currency OPERATOR(pg_catalog.=) fx_quote.from_currency
           AND f.valid_from OPERATOR(pg_catalog.<=) fx_quote.at
    ) c ORDER BY c.valid_from DESC, c.inverse LIMIT 1;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.fx_rate_at(from_currency text, to_currency text, at timestamptz)
RETURNS numeric
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    q record;
BEGIN
    -- PL/pgSQL, not SQL: on a Citus cluster the SQL version found no rate.
    IF upper(from_currency) = upper(to_currency) THEN
        RETURN 1;
    END IF;
    SELECT * INTO q FROM loyalty.fx_quote(upper(from_currency), upper(to_currency), at);
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN CASE WHEN q.inverse THEN 1 / q.rate ELSE q.rate END;
END
$$;
