-- 0.1.0 -> 0.2.0, src/sql/86_coupon_auto.sql is new in 0.2.0: its objects as a fresh install makes them.

-- Automatic coupons: codes the shop issues on an occasion, each at most
-- once per member and occasion.  The once-only key is the code's
-- issued_ref (unique per program, see loyalty.issue_code_for):
--
--   kind               issued_ref                              issued by
--   welcome            welcome:<member>                        the trigger on loyalty.member
--   birthday           birthday:<year>:<member>                issue_birthday_coupons (daily)
--   wake_up            wake_up:<last order time UTC>:<member>  issue_wake_up_coupons (daily)
--   service_recovery   compensate:<the caller's ref>           compensate
--
-- A job run twice, late, or twice at once issues nothing twice.

CREATE TABLE @extschema@.auto_coupon (
    program     text NOT NULL REFERENCES @extschema@.program (code),
    kind        text NOT NULL CHECK (kind IN ('welcome', 'birthday', 'wake_up', 'service_recovery')),
    campaign    text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program, kind)
);

COMMENT ON TABLE @extschema@.auto_coupon IS
    'Per program, the campaign each kind of automatic coupon (welcome, birthday, wake_up, service_recovery) is issued from';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.auto_coupon', '');

CREATE OR REPLACE FUNCTION @extschema@.set_auto_coupon(program text, kind text, campaign text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF kind IS NULL OR kind NOT IN ('welcome', 'birthday', 'wake_up', 'service_recovery') THEN
        RAISE EXCEPTION 'unknown automatic coupon kind: "%"', coalesce(kind, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use welcome, birthday, wake_up or service_recovery.';
    END IF;
    IF campaign IS NULL THEN
        DELETE FROM loyalty.auto_coupon a WHERE a.program = set_auto_coupon.program AND a.kind = set_auto_coupon.kind;
        RETURN;
    END IF;
    PERFORM loyalty.require_campaign(program, campaign);
    INSERT INTO loyalty.auto_coupon AS a (program, kind, campaign) VALUES (program, kind, campaign)
    ON CONFLICT ON CONSTRAINT auto_coupon_pkey
    DO UPDATE SET campaign = excluded.campaign, updated_at = excluded.updated_at;
END
$$;

COMMENT ON FUNCTION @extschema@.set_auto_coupon(text, text, text) IS
    'Sets the campaign a kind of automatic coupon (welcome, birthday, wake_up, service_recovery) is issued from; NULL campaign turns it off';

-- Issues the code of an issued_ref unless it exists, dated issued_at (a
-- job replaying a day dates its codes that day); returns the code issued
-- now, NULL when the reference had its code already.  The unique index on
-- (program, issued_ref) is the once-only guard: a concurrent run inserting
-- the same ref waits for the first and then inserts nothing.  No advisory
-- lock: a bulk enrolment or a daily job over 100,000 members would hold one
-- per member to the end of its transaction and run out of lock table.
CREATE OR REPLACE FUNCTION @extschema@.issue_coupon_once(program text, campaign text, member_id text,
                                              issued_ref text, issued_at timestamptz)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    issued text;
BEGIN
    PERFORM loyalty.require_campaign(program, campaign);  -- 42704 rather than a foreign key error
    FOR attempt IN 1..10 LOOP
        INSERT INTO loyalty.coupon_code AS x (program, code, campaign, member_id, issued_ref, issued_at)
        VALUES (program, loyalty.coupon_code_generate(), campaign, member_id, issued_ref, issued_at)
        ON CONFLICT DO NOTHING
        RETURNING x.code INTO issued;
        IF issued IS NOT NULL THEN
            RETURN loyalty.coupon_code_display(issued);
        END IF;
        -- The ref had its code (or the random code clashed: draw again).
        IF EXISTS (SELECT 1 FROM loyalty.coupon_code k
                    WHERE k.program = issue_coupon_once.program AND k.issued_ref = issue_coupon_once.issued_ref) THEN
            RETURN NULL;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'could not find a free coupon code in 10 attempts' USING ERRCODE = 'XX000';
END
$$;

COMMENT ON FUNCTION @extschema@.issue_coupon_once(text, text, text, text, timestamptz) IS
    'Issues the code of a reference once, dated issued_at; returns it, NULL when the reference had its code; internal';

-- Welcome coupons: one pass over the members a statement enrolled (enroll,
-- or the accrual trigger enrolling a member on a first order).  A failure
-- is a WARNING, never an error: the order insert is sacred.
CREATE OR REPLACE FUNCTION @extschema@.welcome_coupon_trigger() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM loyalty.auto_coupon a WHERE a.program = NEW.program AND a.kind = 'welcome') THEN
        RETURN NULL;
    END IF;
    BEGIN
        PERFORM loyalty.issue_coupon_once(NEW.program, a.campaign, NEW.member_id, 'welcome:' || NEW.member_id,
                                          NEW.enrolled_at)
           FROM loyalty.auto_coupon a
          WHERE a.program = NEW.program AND a.kind = 'welcome'
            -- Only members enrolled since it was configured: pg_restore
            -- loads older members, who never had one.
            AND NEW.enrolled_at >= a.updated_at;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'loyalty: welcome coupon of member "%" not issued: %', NEW.member_id, SQLERRM
            USING DETAIL = pg_catalog.format('SQLSTATE %s; the member was enrolled.', SQLSTATE);
    END;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.welcome_coupon_trigger() IS
    'Trigger on loyalty.member: issues the welcome coupon of a newly enrolled active member of a program that has one';

-- A row trigger: it fires for the members an INSERT adds, never for the
-- member upsert of every order that finds its member enrolled already
-- (a statement trigger ran on each order insert).
CREATE TRIGGER welcome_coupon AFTER INSERT ON @extschema@.member
    FOR EACH ROW WHEN (NEW.status = 'active')
    EXECUTE FUNCTION @extschema@.welcome_coupon_trigger();

-- A birthday in a year, from the profile's "birthday": 'YYYY-MM-DD' or
-- 'MM-DD'; 29 February falls on 28 February in other years.  NULL when
-- missing or not a date.
CREATE OR REPLACE FUNCTION @extschema@.birthday_in(birthday text, year integer) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN b.month BETWEEN 1 AND 12
                 AND b.day BETWEEN 1 AND CASE WHEN b.month = 2 THEN 29
                                              WHEN b.month IN (4, 6, 9, 11) THEN 30 ELSE 31 END
                 AND NOT (b.month = 2 AND b.day = 29 AND b.born IS NOT NULL
                          AND NOT (b.born % 4 = 0 AND (b.born % 100 <> 0 OR b.born % 400 = 0)))
                 AND year BETWEEN 1 AND 9999
            THEN pg_catalog.make_date(year, b.month,
                     CASE WHEN b.month = 2 AND b.day = 29
                           AND NOT (year % 4 = 0 AND (year % 100 <> 0 OR year % 400 = 0))
                          THEN 28 ELSE b.day END) END
      FROM (SELECT substring(birthday FROM '^([0-9]{4})-[0-9]{2}-[0-9]{2}$')::integer AS born,
                   substring(birthday FROM '^(?:[0-9]{4}-)?([0-9]{2})-[0-9]{2}$')::integer AS month,
                   substring(birthday FROM '^(?:[0-9]{4}-)?[0-9]{2}-([0-9]{2})$')::integer AS day) b
$$;

COMMENT ON FUNCTION @extschema@.birthday_in(text, integer) IS
    'The date of a birthday (''YYYY-MM-DD'' or ''MM-DD'') in a year; 29 February is 28 February in other years; NULL when not a date';

CREATE OR REPLACE FUNCTION @extschema@.auto_coupon_campaign(program text, kind text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT a.campaign FROM loyalty.auto_coupon a
     WHERE a.program = auto_coupon_campaign.program AND a.kind = auto_coupon_campaign.kind
$$;

COMMENT ON FUNCTION @extschema@.auto_coupon_campaign(text, text) IS
    'The campaign of a program''s automatic coupon kind, NULL when off; internal';

-- Not STRICT: a NULL argument is an error.
CREATE OR REPLACE FUNCTION @extschema@.issue_birthday_coupons(program text, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    campaign text := loyalty.auto_coupon_campaign(program, 'birthday');
    today date;
    m record;
    seen bigint := 0;
    issued bigint := 0;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_as_of(as_of);
    IF campaign IS NULL THEN
        RAISE NOTICE 'loyalty: program "%" has no birthday coupon (loyalty.set_auto_coupon)', program;
        RETURN 0;
    END IF;
    today := (as_of AT TIME ZONE p.timezone)::date;
    FOR m IN
        SELECT x.member_id FROM loyalty.member x
         WHERE x.program = issue_birthday_coupons.program AND x.status = 'active'
           AND loyalty.birthday_in(x.profile ->> 'birthday', extract(year FROM today)::integer) = today
         ORDER BY x.member_id
    LOOP
        IF loyalty.issue_coupon_once(program, campaign, m.member_id,
                                     'birthday:' || extract(year FROM today) || ':' || m.member_id,
                                     as_of) IS NOT NULL THEN
            issued := issued + 1;
        END IF;
        seen := seen + 1;
        IF seen % 1000 = 0 THEN
            RAISE NOTICE 'loyalty: birthday coupons %: % members with a birthday on %, % issued so far',
                program, seen, to_char(today, 'YYYY-MM-DD'), issued;
        END IF;
    END LOOP;
    RAISE NOTICE 'loyalty: birthday coupons %: % members with a birthday on %, % issued',
        program, seen, to_char(today, 'YYYY-MM-DD'), issued;
    RETURN issued;
END
$$;

COMMENT ON FUNCTION @extschema@.issue_birthday_coupons(text, timestamptz) IS
    'Daily job: issues the birthday coupon to each active member whose profile birthday is as_of''s date in the program''s time zone, once a year; returns the codes issued';

-- Not STRICT: a NULL argument is an error.
CREATE OR REPLACE FUNCTION @extschema@.issue_wake_up_coupons(program text, as_of timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    campaign text := loyalty.auto_coupon_campaign(program, 'wake_up');
    m record;
    seen bigint := 0;
    issued bigint := 0;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.check_as_of(as_of);
    IF campaign IS NULL THEN
        RAISE NOTICE 'loyalty: program "%" has no wake-up coupon (loyalty.set_auto_coupon)', program;
        RETURN 0;
    END IF;
    FOR m IN
        SELECT l.member_id, l.last_order_at
          FROM loyalty.member_lifecycle_all(p.code, as_of) l
          JOIN loyalty.member x ON x.program = l.program AND x.member_id = l.member_id
         WHERE l.stage = 'dormant' AND x.status = 'active'
         ORDER BY l.member_id
    LOOP
        -- One coupon per dormancy episode: an order later starts another.
        IF loyalty.issue_coupon_once(program, campaign, m.member_id,
                                     'wake_up:' || to_char(m.last_order_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                                     || ':' || m.member_id, as_of) IS NOT NULL THEN
            issued := issued + 1;
        END IF;
        seen := seen + 1;
        IF seen % 1000 = 0 THEN
            RAISE NOTICE 'loyalty: wake-up coupons %: % dormant members, % issued so far', program, seen, issued;
        END IF;
    END LOOP;
    RAISE NOTICE 'loyalty: wake-up coupons %: % dormant members, % issued', program, seen, issued;
    RETURN issued;
END
$$;

COMMENT ON FUNCTION @extschema@.issue_wake_up_coupons(text, timestamptz) IS
    'Daily job: issues the wake-up coupon to each active member in the dormant lifecycle stage at as_of, once per dormancy episode (keyed on the last order time); returns the codes issued';

-- Not STRICT: a NULL argument is an error (campaign NULL: the program's
-- service_recovery campaign).
CREATE OR REPLACE FUNCTION @extschema@.compensate(program text, member_id text, campaign text, ref text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    chosen text := campaign;
    m loyalty.member;
    first loyalty.coupon_code;
BEGIN
    PERFORM loyalty.require_program(program);
    IF ref IS NULL OR ref = '' THEN
        RAISE EXCEPTION 'ref must not be null or empty' USING ERRCODE = '22004';
    END IF;
    IF chosen IS NULL THEN
        chosen := loyalty.auto_coupon_campaign(program, 'service_recovery');
        IF chosen IS NULL THEN
            RAISE EXCEPTION 'program "%" has no service recovery coupon', program
                USING ERRCODE = 'LY029',
                      HINT = 'Name the campaign, or set one with loyalty.set_auto_coupon(program, ''service_recovery'', campaign).';
        END IF;
    END IF;
    PERFORM loyalty.require_campaign(program, chosen);
    m := loyalty.require_member(program, member_id);
    IF m.status = 'forgotten' THEN
        RAISE EXCEPTION 'member "%" of program "%" is forgotten', member_id, program USING ERRCODE = 'LY002';
    END IF;
    -- The lock issue_code_for takes: a second call with the ref waits, then sees the first.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('loyalty.coupon_code'),
                                             pg_catalog.hashtext(program || '/compensate:' || ref));
    SELECT * INTO first FROM loyalty.coupon_code k
     WHERE k.program = compensate.program AND k.issued_ref = 'compensate:' || ref;
    IF FOUND THEN
        IF first.member_id = member_id AND first.campaign = chosen THEN
            RETURN loyalty.coupon_code_display(first.code);
        END IF;
        RAISE EXCEPTION 'reference "%" was already used in program "%" for another call', ref, program
            USING ERRCODE = 'LY003',
                  DETAIL = pg_catalog.format('It compensated member %s with a code of campaign %s.', first.member_id, first.campaign),
                  HINT = 'Use a new reference for a new compensation.';
    END IF;
    RETURN loyalty.issue_code_for(program, chosen, member_id, 'compensate:' || ref);
END
$$;

COMMENT ON FUNCTION @extschema@.compensate(text, text, text, text) IS
    'Service recovery: issues a code of the campaign (NULL: the program''s service_recovery campaign) to the member; idempotent on ref; returns the code';
