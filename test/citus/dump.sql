-- The books of every member-keyed table in a canonical order, for the
-- comparison of a cluster with a single node: every row as JSON without
-- the columns that differ by nature (row ids drawn from sequences, which a
-- cluster draws per node, the wall-clock times of the run, and the codes
-- drawn at random: referral codes, and coupon codes in redemptions).
\pset footer off
\pset tuples_only on
DO $$
DECLARE
    t name;
    n bigint;
BEGIN
    FOR t IN SELECT l.table_name FROM loyalty.cluster_layout() l
              WHERE l.layout = 'member' ORDER BY l.table_name LOOP
        EXECUTE format('CREATE TEMP TABLE dump_%s AS SELECT %L::text AS tab, '
                       'public.test_mask(to_jsonb(x) - ARRAY[''id'', ''code'', ''lot_id'', ''related_id'', ''ledger_id'', ''hold_id'', ''flag_id'', '
                       '''recorded_at'', ''created_at'', ''updated_at'', ''used_at'', ''enrolled_at'', ''last_attempt_at'', '
                       '''resolved_at'', ''scored_at'', ''flagged_at'', ''changed_at'', ''decided_at'', ''released_at'', '
                       '''placed_at'', ''held_at'', ''rejected_at''])::text AS row FROM loyalty.%I x', t, t, t);
    END LOOP;
END $$;
SELECT tab, row FROM (
    SELECT * FROM dump_member UNION ALL SELECT * FROM dump_ledger UNION ALL SELECT * FROM dump_lot
    UNION ALL SELECT * FROM dump_lot_use UNION ALL SELECT * FROM dump_held_lot
    UNION ALL SELECT * FROM dump_order_earning UNION ALL SELECT * FROM dump_order_signal
    UNION ALL SELECT * FROM dump_dead_letter UNION ALL SELECT * FROM dump_activity_day
    UNION ALL SELECT * FROM dump_activity_total UNION ALL SELECT * FROM dump_activity_before
    UNION ALL SELECT * FROM dump_member_contact UNION ALL SELECT * FROM dump_member_exclusion
    UNION ALL SELECT * FROM dump_member_hold UNION ALL SELECT * FROM dump_fraud_flag
    UNION ALL SELECT * FROM dump_rfm_score UNION ALL SELECT * FROM dump_tier_history
    UNION ALL SELECT * FROM dump_coupon_redemption UNION ALL SELECT * FROM dump_reward_claim
    UNION ALL SELECT * FROM dump_referral UNION ALL SELECT * FROM dump_referral_commission
    UNION ALL SELECT * FROM dump_referral_rejection) d
 ORDER BY tab, row;
SELECT 'verify', check_name, ok FROM loyalty.verify() ORDER BY 2;
