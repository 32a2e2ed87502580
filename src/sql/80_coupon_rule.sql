-- STAND-IN for part A; replaced at merge
-- A text domain and PL/pgSQL versions of the evaluator, enough for the
-- rules of the issue's table that part B's tests use.  Not the contract:
-- the real type validates and prints canonical text.

CREATE DOMAIN @extschema@.coupon_rule AS text CHECK (VALUE <> '');
COMMENT ON DOMAIN @extschema@.coupon_rule IS 'STAND-IN: a coupon rule (text until part A''s type is merged)';

CREATE FUNCTION @extschema@.currency_minor_unit(code text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN upper(code) IN ('VND', 'JPY', 'KRW', 'IDR', 'CLP', 'ISK') THEN 0 ELSE 2 END;
COMMENT ON FUNCTION @extschema@.currency_minor_unit(text) IS 'STAND-IN: decimals of a currency';

-- Options part: every word is key=value or first_order.
CREATE FUNCTION @extschema@.coupon_rule_options(rule @extschema@.coupon_rule) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT coalesce(jsonb_object_agg(split_part(w, '=', 1), CASE WHEN w LIKE '%=%' THEN substr(w, strpos(w, '=') + 1) ELSE 'true' END), '{}')
      FROM (SELECT btrim(p) AS p FROM unnest(string_to_array(rule, '|')) p) parts,
           unnest(string_to_array(parts.p, ' ')) w
     WHERE parts.p ~ '^((\S+=\S+|first_order)( +|$))+$' AND w <> ''
$$;
COMMENT ON FUNCTION @extschema@.coupon_rule_options(@extschema@.coupon_rule) IS 'STAND-IN: the options of a rule';

CREATE FUNCTION @extschema@.coupon_rule_stack(rule @extschema@.coupon_rule) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN @extschema@.coupon_rule_options(rule) ->> 'stack';
COMMENT ON FUNCTION @extschema@.coupon_rule_stack(@extschema@.coupon_rule) IS 'STAND-IN: exclusive, the stack group, or NULL';

CREATE FUNCTION @extschema@.coupon_rule_valid_until(rule @extschema@.coupon_rule) RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN nullif(split_part(@extschema@.coupon_rule_options(rule) ->> 'valid', '..', 2), '')::date;
COMMENT ON FUNCTION @extschema@.coupon_rule_valid_until(@extschema@.coupon_rule) IS 'STAND-IN: last date of valid=, NULL when open';

CREATE FUNCTION @extschema@.coupon_evaluate(rule @extschema@.coupon_rule, cart jsonb,
                                            as_of timestamptz DEFAULT now(), time_zone text DEFAULT 'UTC')
RETURNS TABLE (eligible boolean, discount numeric, shipping_discount numeric, gift text, reason text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    o jsonb := @extschema@.coupon_rule_options(rule);
    cur text := upper(cart ->> 'currency');
    mem jsonb := coalesce(cart -> 'member', '{}');
    scale integer;
    cats text[] := string_to_array(lower(o ->> 'categories'), ',');
    excl text[] := string_to_array(lower(o ->> 'exclude_categories'), ',');
    base numeric;
    items numeric;
    day date := (as_of AT TIME ZONE time_zone)::date;
    step text;
    m text[];
    best_t numeric := -1;
    best text;
    any_cur boolean := false;
    d numeric := 0;
    s numeric := 0;
    g text;
BEGIN
    IF cur IS NULL OR cur !~ '^[A-Z]{3}$' THEN
        RAISE EXCEPTION 'malformed cart: currency' USING ERRCODE = 'LY030';
    END IF;
    scale := @extschema@.currency_minor_unit(cur);
    SELECT coalesce(sum((i ->> 'qty')::numeric * (i ->> 'price')::numeric), 0), coalesce(sum((i ->> 'qty')::numeric), 0)
      INTO base, items
      FROM jsonb_array_elements(coalesce(cart -> 'items', '[]')) i
     WHERE (cats IS NULL OR lower(i ->> 'category') = ANY (cats))
       AND (excl IS NULL OR coalesce(lower(i ->> 'category'), '') <> ALL (excl));
    IF o ? 'valid' AND day < split_part(o ->> 'valid', '..', 1)::date THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'not_valid_yet'; RETURN;
    END IF;
    IF o ? 'valid' AND day > split_part(o ->> 'valid', '..', 2)::date THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'expired'; RETURN;
    END IF;
    IF o ? 'countries' AND NOT upper(coalesce(cart ->> 'country', '')) = ANY (string_to_array(upper(o ->> 'countries'), ',')) THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'country'; RETURN;
    END IF;
    IF o ? 'tiers' AND NOT lower(coalesce(mem ->> 'tier', '')) = ANY (string_to_array(lower(o ->> 'tiers'), ',')) THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'tier'; RETURN;
    END IF;
    IF o ? 'segments' AND NOT replace(lower(coalesce(mem ->> 'segment', '')), '_', ' ')
                              = ANY (string_to_array(replace(lower(o ->> 'segments'), '_', ' '), ',')) THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'segment'; RETURN;
    END IF;
    IF o ? 'lifecycle' AND NOT lower(coalesce(mem ->> 'lifecycle', '')) = ANY (string_to_array(lower(o ->> 'lifecycle'), ',')) THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'lifecycle'; RETURN;
    END IF;
    IF o ? 'first_order' AND coalesce((mem ->> 'first_order')::boolean, false) IS NOT TRUE THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'first_order'; RETURN;
    END IF;
    IF o ? 'min_items' AND items < (o ->> 'min_items')::numeric THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'min_items'; RETURN;
    END IF;
    IF cats IS NOT NULL AND base = 0 THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'category'; RETURN;
    END IF;
    FOREACH step IN ARRAY string_to_array(rule, '|') LOOP
        step := btrim(step);
        CONTINUE WHEN step ~ '^((\S+=\S+|first_order)( +|$))+$';
        m := regexp_match(step, '^spend ([0-9.]+) ([A-Z]{3}) get');
        IF m IS NULL THEN
            m := ARRAY['0', coalesce((regexp_match(step, '([A-Z]{3})'))[1], cur)];
        END IF;
        CONTINUE WHEN m[2] <> cur;
        any_cur := true;
        IF base >= m[1]::numeric AND m[1]::numeric > best_t THEN
            best_t := m[1]::numeric;
            best := step;
        END IF;
    END LOOP;
    IF NOT any_cur THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'currency'; RETURN;
    END IF;
    IF best IS NULL THEN
        RETURN QUERY SELECT false, 0::numeric, 0::numeric, NULL::text, 'below_threshold'; RETURN;
    END IF;
    IF best ~ 'free shipping' THEN
        s := coalesce((cart ->> 'shipping')::numeric, 0);
    ELSIF best ~ 'gift ' THEN
        g := (regexp_match(best, 'gift (\S+)'))[1];
    ELSIF best ~ '% off' THEN
        d := base * (regexp_match(best, '([0-9.]+)% off'))[1]::numeric / 100;
        IF best ~ ' max ' THEN
            d := least(d, (regexp_match(best, ' max ([0-9.]+)'))[1]::numeric);
        END IF;
    ELSE
        d := least(base, (regexp_match(best, '([0-9.]+) [A-Z]{3} off'))[1]::numeric);
    END IF;
    RETURN QUERY SELECT true, round(d, scale), round(s, scale), g, NULL::text;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_evaluate(@extschema@.coupon_rule, jsonb, timestamptz, text) IS
    'STAND-IN: evaluates a rule on a cart';

CREATE FUNCTION @extschema@.coupon_discount(rule @extschema@.coupon_rule, cart jsonb,
                                            as_of timestamptz DEFAULT now(), time_zone text DEFAULT 'UTC')
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN e.eligible THEN e.discount + e.shipping_discount ELSE 0 END
      FROM @extschema@.coupon_evaluate(rule, cart, as_of, time_zone) e
$$;
COMMENT ON FUNCTION @extschema@.coupon_discount(@extschema@.coupon_rule, jsonb, timestamptz, text) IS
    'STAND-IN: discount + shipping_discount, 0 when not eligible';
