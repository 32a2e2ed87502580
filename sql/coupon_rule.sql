-- The loyalty.coupon_rule type: every text of the issue's table accepted
-- and printed canonically, output that reads back the same through text
-- and binary, every malformed rule refused with 22P02 (22P03 in binary)
-- and a DETAIL naming the part at fault; soft errors on 16+.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

-- The text a rule reads back as (or the SQLSTATE, message and detail).
CREATE FUNCTION cr_in(input text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    got text;
    msg text;
    det text;
BEGIN
    EXECUTE format('SELECT %L::loyalty.coupon_rule::text', input) INTO got;
    RETURN got;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || coalesce(nullif(det, ''), msg);
END
$$;
-- Binary input through COPY (FORMAT binary): a bytea's binary form is its
-- bytes, so a file written from a bytea reads back through coupon_rule_recv.
CREATE TEMP TABLE cr_rule_in (v loyalty.coupon_rule);
CREATE FUNCTION cr_recv(bytes bytea) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    f text := current_setting('data_directory') || '/loyalty_coupon_rule.bin';
    got text;
    msg text;
    det text;
BEGIN
    EXECUTE format('COPY (SELECT %L::bytea) TO %L (FORMAT binary)', bytes, f);
    TRUNCATE cr_rule_in;
    EXECUTE format('COPY cr_rule_in FROM %L (FORMAT binary)', f);
    SELECT v::text INTO got FROM cr_rule_in;
    RETURN got;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || msg || coalesce(' / ' || nullif(det, ''), '');
END
$$;

-- 1. Every rule of the issue's table: accepted, and already canonical (it
-- prints as written).
CREATE TEMP TABLE cr_issue (n int, rule text);
INSERT INTO cr_issue VALUES
    (1, 'spend 50 USD get 10 USD off'),
    (2, 'spend 50 USD get 10 USD off | spend 200000 VND get 50000 VND off'),
    (3, 'spend 100 USD get 10 USD off | spend 200 USD get 25 USD off'),
    (4, 'first_order | 20% off max 50 USD'),
    (5, 'min_items=3 lifecycle=active,at_risk | 30% off'),
    (6, 'spend 30 USD get free shipping'),
    (7, 'categories=shoes,bags | 15% off'),
    (8, 'exclude_categories=gift_cards | spend 100 USD get 20 USD off'),
    (9, 'countries=VN,TH | spend 200000 VND get 50000 VND off'),
    (10, 'tiers=Gold,Platinum | 10% off'),
    (11, 'segments=Champions,Loyal | 5 USD off'),
    (12, 'valid=2024-11-01..2024-11-12 | spend 100 USD get 20 USD off'),
    (13, 'stack=exclusive | 25% off'),
    (14, 'stack=brand | 10% off'),
    (15, 'spend 100 USD get gift TOTE-01');
SELECT n, rule::loyalty.coupon_rule AS canonical, rule::loyalty.coupon_rule::text = rule AS as_written
  FROM cr_issue ORDER BY n;
-- They read back the same through text and through binary send/receive.
SELECT n, r::text::loyalty.coupon_rule::text = r::text AS text_round_trip,
       r::text::loyalty.coupon_rule OPERATOR(loyalty.=) r AS equal_after_text,
       cr_recv(loyalty.coupon_rule_send(r)) = r::text AS binary_round_trip
  FROM (SELECT n, rule::loyalty.coupon_rule AS r FROM cr_issue) s ORDER BY n;
-- The binary form: a version byte (1), then the canonical text.
SELECT loyalty.coupon_rule_send('spend 50 USD get 10 USD off') AS bytes;

-- 2. The canonical form: keywords in any case and lower-cased; currencies
-- and countries upper-cased; names kept as written; options in the fixed
-- order first_order min_items lifecycle categories exclude_categories
-- countries tiers segments valid stack; list items in the order given;
-- amounts and percents without trailing zeros; one space around "|";
-- names with a space quoted.
SELECT cr_in(r) FROM (VALUES
    ('SPEND 50 usd GET 10 Usd OFF'),
    ('stack=Brand segments="At Risk",champions first_order valid=2024-01-01..2024-01-31 | spend 10.50 USD get 12.50% off max 3.00 USD'),
    ('countries=vn,th tiers=gold min_items=2|spend 1000 JPY get 100 JPY off|spend 2000 JPY get free shipping'),
    ('lifecycle="At Risk",NEW | 5% off'),
    ('lifecycle=At_Risk,New | 5% off'),
    ('categories="Home & Garden",toys exclude_categories=gift_cards | 100% off'),
    ('  spend   1.005   KWD   get   1   KWD   off  '),
    ('spend 50 EUR get gift TOTE-01 | spend 100 EUR get 10 EUR off | spend 30 USD get 5% off'),
    ('stack="summer sale" | 0.01% off max 0.01 USD'),
    ('STACK=EXCLUSIVE | Free Shipping')) v(r);

-- 3. Malformed rules: 22P02 with a DETAIL naming the part at fault.
SELECT r, cr_in(r) AS refused FROM (VALUES
    (''),
    ('   '),
    ('first_order'),
    ('first_order |'),
    ('| 5% off'),
    ('5% off || 6% off'),
    ('foo=1 | 5% off'),
    ('min_items=3 min_items=4 | 5% off'),
    ('first_order=true | 5% off'),
    ('min_items= | 5% off'),
    ('min_items=0 | 5% off'),
    ('min_items=2.5 | 5% off'),
    ('lifecycle=sleeping | 5% off'),
    ('lifecycle=at risk | 5% off'),
    ('countries=VNM | 5% off'),
    ('countries=VN,vn | 5% off'),
    ('tiers=Gold,,Silver | 5% off'),
    ('segments="At Risk | 5% off'),
    ('categories=shoes exclude_categories=SHOES | 5% off'),
    ('valid=2024-11-12..2024-11-01 | 5% off'),
    ('valid=2024-02-30..2024-03-01 | 5% off'),
    ('valid=2024-11-01 | 5% off'),
    ('stack= | 5% off'),
    ('5% off | stack=brand'),
    ('spend 100 USD get 120% off'),
    ('0% off'),
    ('-5% off'),
    ('12.345% off'),
    ('spend -100 USD get 10 USD off'),
    ('spend 0 USD get 10 USD off'),
    ('spend 100 USD get 0 USD off'),
    ('spend 200 USD get 25 USD off | spend 100 USD get 10 USD off'),
    ('spend 100 USD get 10 USD off | spend 100 USD get 25 USD off'),
    ('spend 100 XYZ get 10 XYZ off'),
    ('spend 100 USD get 10 EUR off'),
    ('spend 100 USD get 10% off max 5 EUR'),
    ('spend 10.505 USD get 1 USD off'),
    ('spend 100.5 VND get 1 VND off'),
    ('spend 100 USD get 10 USD off | 5% off'),
    ('5% off | 6% off'),
    ('spend 100 USD get 10 USD off extra'),
    ('spend 100 USD 10 USD off'),
    ('20% off max'),
    ('20% off max 50'),
    ('gift'),
    ('gift A,B'),
    ('half off'),
    ('spend 1 USD get 1 USD off | spend 2 USD get 1 USD off | spend 3 USD get 1 USD off | spend 4 USD get 1 USD off | spend 5 USD get 1 USD off | spend 6 USD get 1 USD off | spend 7 USD get 1 USD off | spend 8 USD get 1 USD off | spend 9 USD get 1 USD off'),
    ('spend 1000000000000000 USD get 1 USD off'),
    ('tiers=' || repeat('x', 64) || ' | 5% off')) v(r);
-- A list has at most 32 items.
SELECT cr_in('tiers=' || string_agg('t' || g, ',') || ' | 5% off') AS refused FROM generate_series(1, 33) g;
SELECT cr_in('tiers=' || string_agg('t' || g, ',') || ' | 5% off') ~ '^tiers=t1,' AS accepted FROM generate_series(1, 32) g;
-- The error in full: message, DETAIL and HINT.
SELECT 'spend 100 USD get 10 USD off | spend 100 USD get 25 USD off'::loyalty.coupon_rule;

-- 4. Binary input keeps the rules of the text form: 22P03 with the same
-- DETAIL; an unknown version byte and a zero byte are refused too.
SELECT cr_recv('\x01'::bytea || convert_to('spend 200 USD get 25 USD off | spend 100 USD get 10 USD off', 'UTF8')) AS refused;
SELECT cr_recv('\x01'::bytea || convert_to('spend 100 usd get 5% off', 'UTF8')) AS accepted;
SELECT cr_recv('\x02'::bytea || convert_to('5% off', 'UTF8')) AS refused;
SELECT cr_recv('\x01'::bytea || convert_to('5% off', 'UTF8') || '\x00'::bytea) AS refused;
SELECT cr_recv('\x01'::bytea) AS refused;

-- 5. Soft errors: pg_input_is_valid and pg_input_error_info on 16+; the
-- same answer (through a caught error) on older servers.
CREATE FUNCTION cr_valid(input text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
    det text;
BEGIN
    IF current_setting('server_version_num')::int >= 160000 THEN
        EXECUTE 'SELECT pg_input_is_valid($1, ''loyalty.coupon_rule'')' INTO ok USING input;
        IF NOT ok THEN
            EXECUTE 'SELECT detail FROM pg_input_error_info($1, ''loyalty.coupon_rule'')' INTO det USING input;
        END IF;
    ELSE
        BEGIN
            PERFORM input::loyalty.coupon_rule;
            ok := true;
        EXCEPTION WHEN invalid_text_representation THEN
            GET STACKED DIAGNOSTICS det = PG_EXCEPTION_DETAIL;
            ok := false;
        END;
    END IF;
    RETURN ok || coalesce(' / ' || det, '');
END
$$;
SELECT r, cr_valid(r) FROM (VALUES ('spend 50 USD get 10 USD off'), ('spend 50 USD get 10 USD'),
                                   ('valid=2024-01-01..2024-01-31 | 101% off')) v(r);

-- 6. Equality, and the accessors.
SELECT 'spend 50 usd get 10 USD off'::loyalty.coupon_rule OPERATOR(loyalty.=) 'SPEND 50.00 USD GET 10 USD OFF' AS same,
       'spend 50 USD get 10 USD off'::loyalty.coupon_rule OPERATOR(loyalty.<>) 'spend 50 USD get 11 USD off' AS different,
       'spend 50 USD get 10 USD off'::loyalty.coupon_rule OPERATOR(loyalty.=) 'spend 50 USD get 11 USD off' AS not_same,
       'tiers=Gold | 5% off'::loyalty.coupon_rule OPERATOR(loyalty.=) 'tiers=gold | 5% off' AS names_keep_their_case;
SELECT r, loyalty.coupon_rule_stack(r::loyalty.coupon_rule) AS stack,
       loyalty.coupon_rule_valid_from(r::loyalty.coupon_rule) AS valid_from,
       loyalty.coupon_rule_valid_until(r::loyalty.coupon_rule) AS valid_until,
       loyalty.coupon_rule_first_order(r::loyalty.coupon_rule) AS first_order
  FROM (VALUES ('stack=exclusive | 25% off'), ('stack=brand | 10% off'), ('stack="Summer Sale" | 10% off'),
               ('10% off'), ('first_order valid=2024-11-01..2024-11-12 | 5 USD off')) v(r);
-- The accessors are strict.
SELECT loyalty.coupon_rule_stack(NULL) IS NULL AS stack_null, loyalty.coupon_rule_valid_until(NULL) IS NULL AS until_null;

-- 7. Currencies: ISO 4217 minor units; NULL for a code that is not an
-- active one (any case is accepted).
SELECT c, loyalty.currency_minor_unit(c) AS minor_unit
  FROM unnest(ARRAY['USD', 'EUR', 'GBP', 'vnd', 'JPY', 'KRW', 'BHD', 'KWD', 'OMR', 'JOD', 'TND', 'LYD', 'IQD',
                    'CLP', 'ISK', 'UGX', 'CLF', 'UYW', 'XOF', 'ZWG', 'HRK', 'XAU', 'US', 'USDX', '', 'U$D']) c;
SELECT loyalty.currency_minor_unit(NULL) IS NULL AS strict;

-- 8. A column of the type: stored, compared, read back.
CREATE TEMP TABLE cr_table (id int, rule loyalty.coupon_rule);
INSERT INTO cr_table SELECT n, rule::loyalty.coupon_rule FROM cr_issue;
SELECT count(*) AS rows, count(*) FILTER (WHERE rule::text = (SELECT i.rule FROM cr_issue i WHERE i.n = id)) AS same
  FROM cr_table;
SELECT id FROM cr_table WHERE rule OPERATOR(loyalty.=) 'stack=brand | 10% off';

-- 9. The roles: the application, admins and BI read and write the type.
SET ROLE loyalty_app;
SELECT 'spend 50 USD get 10 USD off'::loyalty.coupon_rule::text AS as_app,
       loyalty.coupon_rule_stack('stack=brand | 5% off'), loyalty.currency_minor_unit('JPY');
SET ROLE loyalty_reader;
SELECT loyalty.coupon_rule_valid_until('valid=2024-11-01..2024-11-12 | 5% off') AS as_reader;
RESET ROLE;
