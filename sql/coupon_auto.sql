-- Automatic coupons: welcome (on enrolment), birthday and wake-up (daily
-- jobs replayed with as_of), service recovery (compensate); each once.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_au_admin;
DROP ROLE IF EXISTS regress_au_app;
RESET client_min_messages;
CREATE ROLE regress_au_admin IN ROLE loyalty_admin;
CREATE ROLE regress_au_app IN ROLE loyalty_app;

-- Codes issued in this program, without the random part (issued_at only
-- where a job dated it: welcome and compensation codes are dated now).
CREATE FUNCTION au_codes() RETURNS TABLE (campaign text, member_id text, issued_ref text, issued_at timestamptz)
LANGUAGE sql AS $$
    SELECT campaign, member_id, issued_ref,
           CASE WHEN issued_ref ~ '^(birthday|wake_up):' THEN issued_at END FROM loyalty.coupon_code
     WHERE program = 'au' ORDER BY issued_ref
$$;

-- A program in Ho Chi Minh City time (UTC+7), a campaign per kind.
SET ROLE regress_au_admin;
SELECT loyalty.create_program('au', 'USD', 1, timezone => 'Asia/Ho_Chi_Minh');
SELECT loyalty.create_campaign('au', 'au_welcome', 'first_order | 20% off max 50 USD');
SELECT loyalty.create_campaign('au', 'au_bday', '10% off', per_member_limit => 1);
SELECT loyalty.create_campaign('au', 'au_wake', 'spend 30 USD get 10 USD off');
SELECT loyalty.create_campaign('au', 'au_sorry', '10% off');

-- Configuration, bad input.
SELECT sqlstate_of($$SELECT loyalty.set_auto_coupon('au', 'anniversary', 'au_bday')$$);
SELECT sqlstate_of($$SELECT loyalty.set_auto_coupon('au', NULL, 'au_bday')$$);
SELECT sqlstate_of($$SELECT loyalty.set_auto_coupon('au', 'birthday', 'no_such_campaign')$$);
SELECT sqlstate_of($$SELECT loyalty.set_auto_coupon('nope', 'birthday', 'au_bday')$$);
SELECT sqlstate_of($$SELECT loyalty.set_auto_coupon(NULL, 'birthday', 'au_bday')$$);
-- Not configured: the jobs say so and issue nothing.
SELECT loyalty.issue_birthday_coupons('au', '2024-05-01 00:00+07');
SELECT loyalty.issue_wake_up_coupons('au', '2024-05-01 00:00+07');
RESET ROLE;

-- 1. Welcome.  Before it is configured, enrolment issues nothing.
SET ROLE regress_au_app;
SELECT loyalty.enroll('au', 'w0');
SELECT sqlstate_of($$SELECT loyalty.set_auto_coupon('au', 'welcome', 'au_welcome')$$);
RESET ROLE;
SET ROLE regress_au_admin;
SELECT loyalty.set_auto_coupon('au', 'welcome', 'au_welcome');
-- Setting it again (or to another campaign) replaces it.
SELECT loyalty.set_auto_coupon('au', 'welcome', 'au_welcome');
SELECT kind, campaign FROM loyalty.auto_coupon WHERE program = 'au';
RESET ROLE;
SET ROLE regress_au_app;
SELECT loyalty.enroll('au', 'w1', '{"birthday": "1990-05-01"}');
SELECT loyalty.enroll('au', 'w1');     -- already a member: no second coupon
RESET ROLE;
SELECT * FROM au_codes();

-- Members enrolled by their first order, two in one statement: one pass.
CREATE TABLE au_orders (id text, member text, amount numeric, at timestamptz);
SELECT loyalty.attach_orders('au', 'au_orders', 'id', 'member', 'amount', created_at => 'at');
INSERT INTO au_orders VALUES ('o1', 'w2', 10, '2024-01-01 10:00+07'), ('o2', 'w3', 10, '2024-01-01 11:00+07'),
                             ('o3', 'w3', 10, '2024-01-01 12:00+07'), ('o4', 'w1', 10, '2024-01-01 12:00+07');
SELECT * FROM au_codes();

-- A welcome that cannot be issued never fails the order: a WARNING, the
-- order earns.  (The configuration is broken by hand here.)
UPDATE loyalty.auto_coupon SET campaign = 'gone' WHERE program = 'au' AND kind = 'welcome';
INSERT INTO au_orders VALUES ('o5', 'w4', 25, '2024-01-02 10:00+07');
SELECT order_id, member_id, points FROM loyalty.order_earning WHERE program = 'au' AND order_id = 'o5';
SELECT count(*) AS w4_codes FROM loyalty.coupon_code WHERE program = 'au' AND member_id = 'w4';

-- Turned off: no coupon.
SET ROLE regress_au_admin;
SELECT loyalty.set_auto_coupon('au', 'welcome', NULL);
SELECT count(*) AS welcome_configured FROM loyalty.auto_coupon WHERE program = 'au' AND kind = 'welcome';
SELECT loyalty.enroll('au', 'w5');
RESET ROLE;
SELECT count(*) AS w5_codes FROM loyalty.coupon_code WHERE program = 'au' AND member_id = 'w5';

-- 2. Birthdays.  The profile's "birthday" is 'YYYY-MM-DD' or 'MM-DD'.
SELECT b, loyalty.birthday_in(b, 2023) AS in_2023, loyalty.birthday_in(b, 2024) AS in_2024
  FROM unnest(ARRAY['1990-05-01', '05-01', '2000-02-29', '02-29', '1990-02-29', '02-30', '13-01',
                    '1990-5-1', 'May 1', '', NULL]) b;
SET ROLE regress_au_admin;
SELECT loyalty.enroll('au', 'b1', '{"birthday": "1985-05-01"}');
SELECT loyalty.enroll('au', 'b2', '{"birthday": "05-01"}');
SELECT loyalty.enroll('au', 'b3', '{"birthday": "2000-02-29"}');
SELECT loyalty.enroll('au', 'b4', '{"birthday": "1st of May"}');
SELECT loyalty.enroll('au', 'b5', '{"birthday": "1985-05-01"}');
SELECT loyalty.enroll('au', 'b6', '{"birthday": "1985-05-01"}');
SELECT loyalty.enroll('au', 'b7', '{"birthday": "1985-05-02"}');
SELECT loyalty.set_member_status('au', 'b5', 'held');
SELECT loyalty.set_member_status('au', 'b6', 'forgotten');
SELECT loyalty.set_auto_coupon('au', 'birthday', 'au_bday');
-- 30 April 18:00 UTC is already 1 May in Ho Chi Minh City: w1, b1 and b2
-- (b5 is held, b6 forgotten, b4's birthday is no date, b7's is tomorrow).
SELECT loyalty.issue_birthday_coupons('au', '2024-04-30 18:00+00');
-- The same day again, or later that day: nothing more.
SELECT loyalty.issue_birthday_coupons('au', '2024-04-30 18:00+00');
SELECT loyalty.issue_birthday_coupons('au', '2024-05-01 16:59+00');
-- 30 April in Ho Chi Minh City: nobody.
SELECT loyalty.issue_birthday_coupons('au', '2024-04-30 16:59+00');
-- 2 May: b7.  The next year: w1, b1 and b2 again.
SELECT loyalty.issue_birthday_coupons('au', '2024-05-02 00:00+07');
SELECT loyalty.issue_birthday_coupons('au', '2025-05-01 09:00+07');
-- 29 February: in 2024 on the day; in 2025 on 28 February, not on 1 March.
SELECT loyalty.issue_birthday_coupons('au', '2024-02-28 12:00+07') AS feb_28_2024;
SELECT loyalty.issue_birthday_coupons('au', '2024-02-29 12:00+07') AS feb_29_2024;
SELECT loyalty.issue_birthday_coupons('au', '2025-03-01 12:00+07') AS mar_1_2025;
SELECT loyalty.issue_birthday_coupons('au', '2025-02-28 12:00+07') AS feb_28_2025;
SELECT sqlstate_of($$SELECT loyalty.issue_birthday_coupons('au', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.issue_birthday_coupons('nope')$$);
RESET ROLE;
-- Each code is dated the day the job ran for.
SELECT * FROM au_codes() WHERE campaign = 'au_bday';
SET ROLE regress_au_app;
SELECT sqlstate_of($$SELECT loyalty.issue_birthday_coupons('au')$$);
SELECT sqlstate_of($$SELECT loyalty.issue_wake_up_coupons('au')$$);
SELECT sqlstate_of($$SELECT loyalty.compensate('au', 'w1', 'au_sorry', 't-0')$$);
RESET ROLE;

-- 3. Wake-up: members entering the dormant stage (no order for more than
-- 120 days, at most 365), once per dormancy episode.
SET ROLE regress_au_admin;
SELECT loyalty.set_auto_coupon('au', 'wake_up', 'au_wake');
RESET ROLE;
INSERT INTO au_orders VALUES ('d1-1', 'd1', 40, '2024-01-10 10:00+07'),
                             ('d2-1', 'd2', 40, '2023-01-10 10:00+07'),   -- churned by June 2024
                             ('d3-1', 'd3', 40, '2024-01-10 10:00+07'),
                             ('d4-1', 'd4', 40, '2024-04-01 10:00+07');   -- active in June, dormant by October
SET ROLE regress_au_admin;
SELECT loyalty.set_member_status('au', 'd3', 'held');
SELECT member_id, stage FROM loyalty.member_lifecycle_at('au', '2024-06-01 00:00+07')
 WHERE member_id LIKE 'd%' OR member_id IN ('w2', 'w3', 'w1') ORDER BY 1;
-- d1 and the members of the first orders (w1 to w4) are dormant; d3 is held.
SELECT loyalty.issue_wake_up_coupons('au', '2024-06-01 00:00+07');
SELECT loyalty.issue_wake_up_coupons('au', '2024-06-02 00:00+07');
RESET ROLE;
-- d1 orders again, then lapses again: a second episode, a second coupon.
INSERT INTO au_orders VALUES ('d1-2', 'd1', 40, '2024-06-10 10:00+07');
SET ROLE regress_au_admin;
SELECT loyalty.issue_wake_up_coupons('au', '2024-07-01 00:00+07');
SELECT loyalty.issue_wake_up_coupons('au', '2024-10-15 00:00+07');
SELECT loyalty.issue_wake_up_coupons('au', '2024-10-16 00:00+07');
RESET ROLE;
SELECT * FROM au_codes() WHERE campaign = 'au_wake';

-- 4. Service recovery: a delivery 3 days late.
SET ROLE regress_au_admin;
SELECT loyalty.compensate('au', 'd1', 'au_sorry', 'ticket-1') AS code1 \gset
SELECT loyalty.compensate('au', 'd1', 'au_sorry', 'ticket-1') = :'code1' AS same_code;
SELECT sqlstate_of($$SELECT loyalty.compensate('au', 'd4', 'au_sorry', 'ticket-1')$$);
SELECT sqlstate_of($$SELECT loyalty.compensate('au', 'd1', 'au_bday', 'ticket-1')$$);
-- Without a campaign: the program's service_recovery campaign, else LY029.
SELECT sqlstate_of($$SELECT loyalty.compensate('au', 'd4', NULL, 'ticket-2')$$);
SELECT loyalty.set_auto_coupon('au', 'service_recovery', 'au_sorry');
SELECT loyalty.compensate('au', 'd4', NULL, 'ticket-2') IS NOT NULL AS compensated;
-- Held members may be compensated; forgotten ones not.
SELECT loyalty.compensate('au', 'd3', NULL, 'ticket-3') IS NOT NULL AS held_compensated;
SELECT sqlstate_of($$SELECT loyalty.compensate('au', 'b6', NULL, 'ticket-4')$$);
SELECT sqlstate_of($$SELECT loyalty.compensate('au', 'ghost', NULL, 'ticket-4')$$);
SELECT sqlstate_of($$SELECT loyalty.compensate('au', 'd4', 'no_such_campaign', 'ticket-4')$$);
SELECT sqlstate_of($$SELECT loyalty.compensate('au', 'd4', NULL, NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.compensate('au', NULL, NULL, 'ticket-4')$$);
SELECT sqlstate_of($$SELECT loyalty.compensate('nope', 'd4', NULL, 'ticket-4')$$);
RESET ROLE;
SELECT * FROM au_codes() WHERE campaign = 'au_sorry';

SELECT check_name FROM loyalty.verify('au') WHERE NOT ok;
DROP TABLE au_orders;
DROP FUNCTION au_codes();
DROP ROLE regress_au_admin, regress_au_app;
