-- Coupon campaigns and codes: create_campaign (idempotent, validated),
-- issue_codes (random, check character, grouped), add_code (shared codes),
-- the discount cap, and who may call what.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SELECT loyalty.create_program('cc', 'USD');
SELECT loyalty.enroll('cc', 'ann');
SELECT loyalty.enroll('cc', 'bob');
SELECT loyalty.set_tier_ladder('cc', 'basis=spend | Member 0 x1 | Gold 500 x1.5 | Platinum 2000 x2');

SET ROLE loyalty_admin;

-- A campaign; the same call again is fine, other settings are refused.
SELECT loyalty.create_campaign('cc', 'spring', 'spend 50 USD get 10 USD off', 100, 2, 500);
SELECT loyalty.create_campaign('cc', 'spring', 'spend 50 USD get 10 USD off', 100, 2, 500);
SELECT loyalty.create_campaign('cc', 'spring', 'spend 50 USD get 10 USD off', 101, 2, 500);
SELECT loyalty.create_campaign('cc', 'spring', 'spend 60 USD get 10 USD off', 100, 2, 500);
SELECT program, campaign, rule, total_limit, per_member_limit, budget, audience, redeemed_count, spent_base
  FROM loyalty.coupon_campaign WHERE program = 'cc';
-- Defaults: no total limit, one redemption per member, no budget, anyone.
SELECT loyalty.create_campaign('cc', 'open', '10% off');
SELECT total_limit, per_member_limit, budget, audience FROM loyalty.coupon_campaign WHERE program = 'cc' AND campaign = 'open';
-- NULL per-member limit: none.
SELECT loyalty.create_campaign('cc', 'unlimited', '5 USD off', per_member_limit => NULL);
SELECT per_member_limit FROM loyalty.coupon_campaign WHERE program = 'cc' AND campaign = 'unlimited';

-- Bad arguments.
SELECT loyalty.create_campaign(NULL, 'x', '10% off');
SELECT loyalty.create_campaign('nope', 'x', '10% off');
SELECT loyalty.create_campaign('cc', NULL, '10% off');
SELECT loyalty.create_campaign('cc', 'x', NULL);
SELECT loyalty.create_campaign('cc', 'two words', '10% off');
SELECT loyalty.create_campaign('cc', 'x', '10% off', total_limit => 0);
SELECT loyalty.create_campaign('cc', 'x', '10% off', total_limit => -5);
SELECT loyalty.create_campaign('cc', 'x', '10% off', per_member_limit => 0);
SELECT loyalty.create_campaign('cc', 'x', '10% off', budget => 0);
SELECT loyalty.create_campaign('cc', 'x', '10% off', budget => -1);
SELECT loyalty.create_campaign('cc', 'x', '10% off', budget => 'NaN');
SELECT loyalty.create_campaign('cc', 'x', '10% off', budget => 'Infinity');
SELECT loyalty.create_campaign('cc', 'x', '10% off', audience => 'VIPs');
SELECT count(*) AS none_made FROM loyalty.coupon_campaign WHERE program = 'cc' AND campaign = 'x';

-- Audiences: a lifecycle stage, a tier of the ladder, an RFM segment, any case.
SELECT loyalty.create_campaign('cc', 'winback', '15% off', audience => 'at_risk');
SELECT loyalty.create_campaign('cc', 'gold', '10% off', audience => 'GOLD');
SELECT loyalty.create_campaign('cc', 'champs', '5 USD off', audience => 'Champions');
SELECT loyalty.create_campaign('cc', 'atrisk', '5 USD off', audience => 'At Risk');
SELECT campaign, audience FROM loyalty.coupon_campaign WHERE program = 'cc' AND audience IS NOT NULL ORDER BY 1;

-- Issued codes: 12 characters of 23456789ABCDEFGHJKLMNPQRSTUVWXYZ in groups
-- of four, the last a check character; stored without dashes.
SELECT count(*) AS issued,
       count(*) FILTER (WHERE c ~ '^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$') AS well_formed
  FROM loyalty.issue_codes('cc', 'spring', 50) c;
SELECT count(*) AS stored, count(DISTINCT code) AS distinct_codes,
       count(*) FILTER (WHERE loyalty.coupon_code_shape(code) = 'issued') AS check_ok,
       count(*) FILTER (WHERE member_id IS NULL AND NOT shared) AS anyones
  FROM loyalty.coupon_code WHERE program = 'cc' AND campaign = 'spring';
-- To a member: the member must be enrolled.
SELECT count(*) FROM loyalty.issue_codes('cc', 'spring', 2, 'ann');
SELECT member_id, count(*) FROM loyalty.coupon_code WHERE program = 'cc' AND member_id IS NOT NULL GROUP BY 1;
SELECT loyalty.issue_codes('cc', 'spring', 1, 'nobody');
-- n out of bounds, NULLs, unknown program or campaign.
SELECT loyalty.issue_codes('cc', 'spring', 0);
SELECT loyalty.issue_codes('cc', 'spring', -3);
SELECT loyalty.issue_codes('cc', 'spring', 100001);
SELECT loyalty.issue_codes('cc', 'spring', NULL);
SELECT loyalty.issue_codes('cc', NULL, 1);
SELECT loyalty.issue_codes('cc', 'autumn', 1);
SELECT loyalty.issue_codes('zz', 'spring', 1);

-- Check character: every single-character change of a code is caught.
SELECT code AS sample FROM loyalty.coupon_code WHERE program = 'cc' AND campaign = 'spring' AND NOT shared LIMIT 1 \gset
SELECT count(*) AS changes,
       count(*) FILTER (WHERE loyalty.coupon_code_shape(changed) = 'mistyped') AS caught
  FROM generate_series(1, 12) pos,
       regexp_split_to_table('23456789ABCDEFGHJKLMNPQRSTUVWXYZ', '') ch,
       LATERAL (SELECT overlay(:'sample' placing ch from pos for 1) AS changed) x
 WHERE substr(:'sample', pos, 1) <> ch;
SELECT loyalty.coupon_code_shape('ABCD'), loyalty.coupon_code_shape('BLACKFRIDAY'),
       loyalty.coupon_code_shape('0000000000000');
SELECT loyalty.coupon_code_normal(' vE7d-3f9f 7kwc '), loyalty.coupon_code_display('VE7D3F9F7KWC');

-- Shared codes: case, spaces and dashes ignored; idempotent; a clash refused.
SELECT loyalty.add_code('cc', 'spring', 'BlackFriday');
SELECT loyalty.add_code('cc', 'spring', 'black-friday');
SELECT loyalty.add_code('cc', 'open', 'BLACK FRIDAY');
SELECT sqlstate_of(format('SELECT loyalty.add_code(%L, %L, %L)', 'cc', 'open', lower(:'sample'))) LIKE '42710: code "%" already exists in program "cc"' AS issued_code_clash;
SELECT loyalty.add_code('cc', 'open', 'ab');
SELECT loyalty.add_code('cc', 'open', 'café');
SELECT loyalty.add_code('cc', 'open', NULL);
SELECT loyalty.add_code('cc', 'nope', 'WELCOME');
SELECT code, campaign, member_id, shared FROM loyalty.coupon_code WHERE program = 'cc' AND shared ORDER BY 1;

RESET ROLE;

-- The application may not configure campaigns or issue codes.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.create_campaign('cc', 'app', '10% off')$$);
SELECT sqlstate_of($$SELECT loyalty.issue_codes('cc', 'spring', 1)$$);
SELECT sqlstate_of($$SELECT loyalty.add_code('cc', 'spring', 'APPCODE')$$);
SELECT sqlstate_of($$SELECT * FROM loyalty.coupon_code$$);
RESET ROLE;
SET ROLE loyalty_reader;
SELECT sqlstate_of($$SELECT loyalty.create_campaign('cc', 'bi', '10% off')$$);
RESET ROLE;

-- One code per reference, for the features that issue codes on events
-- (reward claims, automatic coupons; internal, not granted): the same ref
-- gives the same code, another campaign or member under it is LY003.
SELECT loyalty.issue_code_for('cc', 'spring', 'bob', 'bday-2024')
     = loyalty.issue_code_for('cc', 'spring', 'bob', 'bday-2024') AS same_code;
SELECT member_id, campaign, count(*) FROM loyalty.coupon_code
 WHERE program = 'cc' AND issued_ref = 'bday-2024' GROUP BY 1, 2;
SELECT sqlstate_of($$SELECT loyalty.issue_code_for('cc', 'open', 'bob', 'bday-2024')$$);
SELECT sqlstate_of($$SELECT loyalty.issue_code_for('cc', 'spring', 'ann', 'bday-2024')$$);
SELECT sqlstate_of($$SELECT loyalty.issue_code_for('cc', 'spring', 'bob', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.issue_code_for('cc', 'spring', 'nobody', 'x')$$);
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.issue_code_for('cc', 'spring', 'bob', 'y')$$);
RESET ROLE;
