-- 0.1.0 -> 0.2.0, src/sql/92_referral_bi.sql is new in 0.2.0: its objects as a fresh install makes them.

-- The referral funnel for BI: per program and day (in the program's time
-- zone), how many codes were made, referees referred, first orders placed,
-- referrals rewarded, capped or voided, and attempts refused as abuse.
-- Excluded members (test and staff accounts, loyalty.member_exclusion) are
-- left out: a code of an excluded member, a referral or refusal where the
-- referee or the referrer is excluded.
CREATE VIEW @extschema@.referral_funnel AS
WITH event AS (
    SELECT k.program, k.created_at AS at, 'code' AS kind
      FROM @extschema@.referral_code k
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = k.program AND x.member_id = k.member_id)
    UNION ALL
    SELECT r.program, e.at, e.kind
      FROM @extschema@.referral r
      CROSS JOIN LATERAL (
            SELECT r.referred_at AS at, 'referee' AS kind
            UNION ALL
            SELECT (SELECT min(o.ordered_at) FROM @extschema@.order_earning o
                     WHERE o.program = r.program AND o.member_id = r.member_id), 'first_order'
            UNION ALL
            SELECT r.settled_at, r.state WHERE r.state <> 'pending') e
     WHERE e.at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = r.program AND x.member_id IN (r.member_id, r.referrer_id))
    UNION ALL
    SELECT j.program, j.rejected_at, 'rejected'
      FROM @extschema@.referral_rejection j
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = j.program AND x.member_id IN (j.member_id, j.referrer_id))
)
SELECT e.program, (e.at AT TIME ZONE p.timezone)::date AS day,
       count(*) FILTER (WHERE e.kind = 'code') AS codes_shared,
       count(*) FILTER (WHERE e.kind = 'referee') AS referees,
       count(*) FILTER (WHERE e.kind = 'first_order') AS first_orders,
       count(*) FILTER (WHERE e.kind = 'rewarded') AS rewards_paid,
       count(*) FILTER (WHERE e.kind = 'capped') AS capped,
       count(*) FILTER (WHERE e.kind = 'void') AS voided,
       count(*) FILTER (WHERE e.kind = 'rejected') AS rejected
  FROM event e
  JOIN @extschema@.program p ON p.code = e.program
 GROUP BY e.program, (e.at AT TIME ZONE p.timezone)::date;

COMMENT ON VIEW @extschema@.referral_funnel IS
    'Referral funnel per program and day (program time zone): codes made, referees referred, their first orders, referrals rewarded, capped, voided, attempts refused as abuse; excluded members left out';

COMMENT ON COLUMN @extschema@.referral_funnel.program IS 'Program code';

COMMENT ON COLUMN @extschema@.referral_funnel.day IS 'Date in the program''s time zone';

COMMENT ON COLUMN @extschema@.referral_funnel.codes_shared IS 'Referral codes made that day (loyalty.referral_code, on a member''s first ask)';

COMMENT ON COLUMN @extschema@.referral_funnel.referees IS 'Members referred that day (accepted referrals, by referred_at)';

COMMENT ON COLUMN @extschema@.referral_funnel.first_orders IS 'Referred members whose first order in the program was placed that day';

COMMENT ON COLUMN @extschema@.referral_funnel.rewards_paid IS 'Referrals rewarded that day by settle_referrals (both sides paid)';

COMMENT ON COLUMN @extschema@.referral_funnel.capped IS 'Referrals settled that day without reward: the referrer was over its cap for the period';

COMMENT ON COLUMN @extschema@.referral_funnel.voided IS 'Referrals voided that day: the referee''s first order was refunded or cancelled or placed before the referral, or the referee shares a fingerprint with the referrer';

COMMENT ON COLUMN @extschema@.referral_funnel.rejected IS 'Referral attempts refused as abuse that day (self-referral, shared fingerprint, already ordered, cycle)';
