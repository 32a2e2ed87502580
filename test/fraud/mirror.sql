-- Plain-SQL mirrors of the fraud rules (docs/fraud.md, "Rules"): the
-- (member, rule) pairs loyalty.fraud_check flags for a program over
-- [since, as_of], computed by ordinary queries over the same tables.  The
-- evaluation (sql/fraud_eval.sql) checks that both find the same set; the
-- benchmark (bench/fraud_check.sh) times both on the same data.
--
-- fraud_mirror.flags(program, since, as_of) → (member_id, rule), one row
-- per flagged pair; a rule disabled for the program finds nothing; the
-- parameters are the rule's defaults overridden by loyalty.fraud_rule.
-- Written as a DBA would write them for speed: one materialized read of
-- the orders with their signals, windows with lead() (one sort each, by
-- member in COLLATE "C" as fraud_check sorts), hash joins and aggregates.
\set ON_ERROR_STOP 1
CREATE SCHEMA fraud_mirror;

-- A rule's effective parameters for a program (NULL when disabled).
CREATE FUNCTION fraud_mirror.params(program text, rule text) RETURNS jsonb
LANGUAGE sql STABLE
RETURN (SELECT CASE WHEN coalesce(r.enabled, true) THEN loyalty.fraud_rule_defaults(params.rule) || coalesce(r.params, '{}') END
          FROM (SELECT) one
          LEFT JOIN loyalty.fraud_rule r ON r.program = params.program AND r.rule = params.rule);

CREATE FUNCTION fraud_mirror.num(program text, rule text, key text) RETURNS numeric
LANGUAGE sql STABLE
RETURN (fraud_mirror.params(program, rule) ->> key)::numeric;

CREATE FUNCTION fraud_mirror.minutes(program text, rule text) RETURNS interval
LANGUAGE sql STABLE
RETURN fraud_mirror.num(program, rule, 'minutes') * interval '1 minute';

-- The orders of [since, as_of] of members who are not excluded (the
-- order's current member, order_earning.member_id), amounts in base
-- currency (NULL when unknown), with their signal hashes.
CREATE FUNCTION fraud_mirror.orders(program text, since timestamptz, as_of timestamptz)
RETURNS TABLE (member_id text, order_id text, ordered_at timestamptz, amount numeric, refunded numeric,
               ip bytea, device_id bytea, payment_fingerprint bytea, shipping_address bytea,
               billing_country bytea, ip_country bytea)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT e.member_id, e.order_id, e.ordered_at, e.amount * e.fx_rate,
           CASE WHEN e.closed THEN e.amount ELSE least(e.refunded_amount, e.amount) END * e.fx_rate,
           s.ip, s.device_id, s.payment_fingerprint, s.shipping_address, s.billing_country, s.ip_country
      FROM loyalty.order_earning e
      LEFT JOIN loyalty.order_signal s ON s.program = e.program AND s.order_id = e.order_id
     WHERE e.program = orders.program AND e.ordered_at BETWEEN orders.since AND orders.as_of
       AND e.member_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM loyalty.member_exclusion x
                        WHERE x.program = e.program AND x.member_id = e.member_id);
END;

CREATE FUNCTION fraud_mirror.flags(program text, since timestamptz, as_of timestamptz)
RETURNS TABLE (member_id text, rule text)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH p AS MATERIALIZED (
        SELECT fraud_mirror.num(flags.program, 'velocity', 'orders') AS velocity_orders,
               fraud_mirror.minutes(flags.program, 'velocity') AS velocity_minutes,
               fraud_mirror.minutes(flags.program, 'small_payment_burst') AS small_payment_burst_minutes,
               fraud_mirror.num(flags.program, 'small_payment_burst', 'orders') AS small_payment_burst_orders,
               fraud_mirror.num(flags.program, 'small_payment_burst', 'max_amount') AS small_payment_burst_max_amount,
               fraud_mirror.num(flags.program, 'shared_fingerprint', 'members') AS shared_fingerprint_members,
               fraud_mirror.num(flags.program, 'shared_fingerprint', 'contact_members') AS shared_fingerprint_contact_members,
               fraud_mirror.params(flags.program, 'shared_fingerprint') -> 'kinds' AS shared_fingerprint_kinds,
               fraud_mirror.num(flags.program, 'geo_mismatch', 'orders') AS geo_mismatch_orders,
               fraud_mirror.num(flags.program, 'geo_mismatch', 'share') AS geo_mismatch_share,
               fraud_mirror.num(flags.program, 'refund_ratio', 'orders') AS refund_ratio_orders,
               fraud_mirror.num(flags.program, 'refund_ratio', 'ratio') AS refund_ratio_ratio,
               fraud_mirror.num(flags.program, 'earn_burn', 'points') AS earn_burn_points,
               fraud_mirror.num(flags.program, 'earn_burn', 'hours') * interval '1 hour' AS earn_burn_hours,
               fraud_mirror.num(flags.program, 'earn_burn', 'share') AS earn_burn_share,
               fraud_mirror.num(flags.program, 'coupon_farming', 'members') AS coupon_farming_members
    ), o AS MATERIALIZED (
        SELECT * FROM fraud_mirror.orders(flags.program, flags.since, flags.as_of)
    ), fp AS MATERIALIZED (
        -- Every value a member used: order signals of the period, and
        -- email and phone of every member who is not excluded.
        SELECT DISTINCT o.member_id, k.kind, k.hash
          FROM o CROSS JOIN LATERAL (VALUES ('ip', o.ip), ('device_id', o.device_id),
                                            ('payment_fingerprint', o.payment_fingerprint),
                                            ('shipping_address', o.shipping_address)) k(kind, hash)
         WHERE k.hash IS NOT NULL
        UNION ALL
        SELECT c.member_id, c.kind, c.hash
          FROM loyalty.member_contact c
         WHERE c.program = flags.program
           AND NOT EXISTS (SELECT 1 FROM loyalty.member_exclusion x
                            WHERE x.program = c.program AND x.member_id = c.member_id)
    ), link AS (
        -- The kinds that link accounts for coupon_farming and referral_ring.
        SELECT * FROM fp WHERE fp.kind <> 'ip'
    ), velocity AS (
        -- >= orders orders within any window of minutes: the (orders-1)-th
        -- order after one is at most minutes later.
        SELECT DISTINCT w.member_id, 'velocity' AS rule
          FROM (SELECT o.member_id, o.ordered_at,
                       lead(o.ordered_at, p.velocity_orders::integer - 1)
                           OVER (PARTITION BY o.member_id COLLATE "C" ORDER BY o.ordered_at) AS nth
                  FROM o, p) w, p
         WHERE w.nth <= w.ordered_at + p.velocity_minutes
    ), small_payment_burst AS (
        -- >= orders orders each under max_amount within minutes.
        SELECT DISTINCT w.member_id, 'small_payment_burst' AS rule
          FROM (SELECT o.member_id, o.ordered_at,
                       lead(o.ordered_at, p.small_payment_burst_orders::integer - 1)
                           OVER (PARTITION BY o.member_id COLLATE "C" ORDER BY o.ordered_at) AS nth
                  FROM o, p WHERE o.amount < p.small_payment_burst_max_amount) w, p
         WHERE w.nth <= w.ordered_at + p.small_payment_burst_minutes
    ), shared_value AS (
        -- Values of a watched kind used by >= members members (email, phone: contact_members).
        SELECT fp.kind, fp.hash
          FROM fp, p
         WHERE fp.kind IN (SELECT jsonb_array_elements_text(p.shared_fingerprint_kinds))
         GROUP BY fp.kind, fp.hash
        HAVING count(*) >= min(CASE WHEN fp.kind IN ('email', 'phone') THEN p.shared_fingerprint_contact_members
                                    ELSE p.shared_fingerprint_members END)
    ), shared_fingerprint AS (
        SELECT DISTINCT fp.member_id, 'shared_fingerprint' AS rule
          FROM fp JOIN shared_value v ON v.kind = fp.kind AND v.hash = fp.hash
    ), geo_mismatch AS (
        -- >= orders orders whose IP country is not the billing country, >= share of those with both.
        SELECT o.member_id, 'geo_mismatch' AS rule
          FROM o, p
         WHERE o.billing_country IS NOT NULL AND o.ip_country IS NOT NULL
         GROUP BY o.member_id
        HAVING count(*) FILTER (WHERE o.billing_country <> o.ip_country) >= min(p.geo_mismatch_orders)
           AND count(*) FILTER (WHERE o.billing_country <> o.ip_country) >= min(p.geo_mismatch_share) * count(*)
    ), refund_ratio AS (
        -- >= orders orders of known amount, refunded >= ratio of the amount ordered.
        SELECT o.member_id, 'refund_ratio' AS rule
          FROM o, p
         WHERE o.amount IS NOT NULL
         GROUP BY o.member_id
        HAVING count(*) >= min(p.refund_ratio_orders)
           AND sum(o.refunded) >= min(p.refund_ratio_ratio) * sum(o.amount)
           AND sum(o.amount) > 0
    ), earn_burn AS (
        -- A redemption >= points within hours after a credit (earn, adjust) >= points, taking >= share of it.
        SELECT DISTINCT r.member_id, 'earn_burn' AS rule
          FROM p, loyalty.ledger r
          JOIN loyalty.ledger e
            ON e.program = r.program AND e.member_id = r.member_id AND e.kind IN ('earn', 'adjust')
           AND e.occurred_at <= r.occurred_at AND e.occurred_at >= flags.since
         WHERE r.program = flags.program AND r.kind = 'redeem'
           AND r.occurred_at BETWEEN flags.since AND flags.as_of
           AND -r.points >= p.earn_burn_points
           AND e.points >= p.earn_burn_points
           AND e.occurred_at >= r.occurred_at - p.earn_burn_hours
           AND -r.points >= p.earn_burn_share * e.points
           AND NOT EXISTS (SELECT 1 FROM loyalty.member_exclusion x
                            WHERE x.program = r.program AND x.member_id = r.member_id)
    ), farmed AS (
        -- Redeemers of first-order and referral campaigns in the period.
        SELECT DISTINCT cr.campaign, cr.member_id
          FROM loyalty.coupon_redemption cr
          JOIN loyalty.coupon_campaign c ON c.program = cr.program AND c.campaign = cr.campaign
         WHERE cr.program = flags.program AND cr.redeemed_at BETWEEN flags.since AND flags.as_of
           AND (loyalty.coupon_rule_first_order(c.rule)
                OR c.campaign IN (SELECT s.referrer_campaign FROM loyalty.referral_setting s WHERE s.program = flags.program
                                  UNION ALL
                                  SELECT s.referee_campaign FROM loyalty.referral_setting s WHERE s.program = flags.program))
           AND NOT EXISTS (SELECT 1 FROM loyalty.member_exclusion x
                            WHERE x.program = cr.program AND x.member_id = cr.member_id)
    ), farmed_edge AS (
        -- Two redeemers of one campaign sharing a value.
        SELECT DISTINCT a.campaign, a.member_id AS a, b.member_id AS b
          FROM farmed a
          JOIN link la ON la.member_id = a.member_id
          JOIN link lb ON lb.kind = la.kind AND lb.hash = la.hash AND lb.member_id <> la.member_id
          JOIN farmed b ON b.campaign = a.campaign AND b.member_id = lb.member_id
    ), farmed_group AS (
        -- Everyone each redeemer reaches through shared values (transitively).
        WITH RECURSIVE reach (campaign, member_id, other) AS (
            SELECT DISTINCT e.campaign, e.a, e.a FROM farmed_edge e
            UNION
            SELECT r.campaign, r.member_id, e.b
              FROM reach r JOIN farmed_edge e ON e.campaign = r.campaign AND e.a = r.other
        )
        SELECT reach.campaign, reach.member_id, count(*) AS size FROM reach GROUP BY reach.campaign, reach.member_id
    ), coupon_farming AS (
        -- Every member of a group of >= members.
        SELECT DISTINCT g.member_id, 'coupon_farming' AS rule
          FROM farmed_group g, p
         WHERE g.size >= p.coupon_farming_members
    ), referral_all AS (
        -- Every referral of the program between members who are not excluded.
        SELECT r.member_id, r.referrer_id, r.referred_at
          FROM loyalty.referral r
         WHERE r.program = flags.program
           AND NOT EXISTS (SELECT 1 FROM loyalty.member_exclusion x
                            WHERE x.program = r.program AND x.member_id IN (r.member_id, r.referrer_id))
    ), referral_cycle AS (
        -- Referrals whose referrer's chain of referrers leads back to the referee.
        WITH RECURSIVE up (member_id, referrer_id, at, steps) AS (
            SELECT r.member_id, r.referrer_id, r.referrer_id, 1 FROM referral_all r
            UNION ALL
            SELECT u.member_id, u.referrer_id, r.referrer_id, u.steps + 1
              FROM up u JOIN referral_all r ON r.member_id = u.at
             WHERE u.at <> u.member_id AND u.steps < 1000
        )
        SELECT DISTINCT up.member_id, up.referrer_id FROM up WHERE up.at = up.member_id
    ), referral_flagged AS (
        -- Referrals of the period whose two members share a value, or closing a cycle.
        SELECT r.member_id, r.referrer_id
          FROM referral_all r
          JOIN link a ON a.member_id = r.member_id
          JOIN link b ON b.member_id = r.referrer_id AND b.kind = a.kind AND b.hash = a.hash
         WHERE r.referred_at BETWEEN flags.since AND flags.as_of
        UNION
        SELECT r.member_id, r.referrer_id
          FROM referral_all r JOIN referral_cycle c ON c.member_id = r.member_id AND c.referrer_id = r.referrer_id
         WHERE r.referred_at BETWEEN flags.since AND flags.as_of
    ), referral_ring AS (
        -- Both members of each.
        SELECT DISTINCT u.member_id, 'referral_ring' AS rule
          FROM referral_flagged f CROSS JOIN LATERAL (VALUES (f.member_id), (f.referrer_id)) u(member_id)
    )
    SELECT * FROM velocity WHERE fraud_mirror.params(flags.program, 'velocity') IS NOT NULL
    UNION ALL SELECT * FROM small_payment_burst WHERE fraud_mirror.params(flags.program, 'small_payment_burst') IS NOT NULL
    UNION ALL SELECT * FROM shared_fingerprint WHERE fraud_mirror.params(flags.program, 'shared_fingerprint') IS NOT NULL
    UNION ALL SELECT * FROM geo_mismatch WHERE fraud_mirror.params(flags.program, 'geo_mismatch') IS NOT NULL
    UNION ALL SELECT * FROM refund_ratio WHERE fraud_mirror.params(flags.program, 'refund_ratio') IS NOT NULL
    UNION ALL SELECT * FROM earn_burn WHERE fraud_mirror.params(flags.program, 'earn_burn') IS NOT NULL
    UNION ALL SELECT * FROM coupon_farming WHERE fraud_mirror.params(flags.program, 'coupon_farming') IS NOT NULL
    UNION ALL SELECT * FROM referral_ring WHERE fraud_mirror.params(flags.program, 'referral_ring') IS NOT NULL;
END;
