-- Privileges, all in one place: nothing is public but what a query on the
-- extension's types needs; each role gets what its job needs.  Loaded last,
-- so "ALL ... IN SCHEMA" covers every object above.  A new function is
-- executable by nobody but the owner until it is granted here.

REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA @extschema@ FROM PUBLIC;

GRANT USAGE ON SCHEMA @extschema@ TO loyalty_admin, loyalty_app, loyalty_reader;

-- PUBLIC: the rfm and tier_ladder types (input, output, comparison,
-- accessors), pure functions of their arguments that read no table.
GRANT EXECUTE ON FUNCTION
    @extschema@.rfm_in(cstring),
    @extschema@.rfm_out(@extschema@.rfm),
    @extschema@.rfm_recv(internal),
    @extschema@.rfm_send(@extschema@.rfm),
    @extschema@.rfm(integer, integer, integer),
    @extschema@.r(@extschema@.rfm),
    @extschema@.f(@extschema@.rfm),
    @extschema@.m(@extschema@.rfm),
    @extschema@.rfm_eq(@extschema@.rfm, @extschema@.rfm),
    @extschema@.rfm_ne(@extschema@.rfm, @extschema@.rfm),
    @extschema@.rfm_lt(@extschema@.rfm, @extschema@.rfm),
    @extschema@.rfm_le(@extschema@.rfm, @extschema@.rfm),
    @extschema@.rfm_gt(@extschema@.rfm, @extschema@.rfm),
    @extschema@.rfm_ge(@extschema@.rfm, @extschema@.rfm),
    @extschema@.rfm_cmp(@extschema@.rfm, @extschema@.rfm),
    @extschema@.rfm_hash(@extschema@.rfm),
    @extschema@.rfm_hash_extended(@extschema@.rfm, bigint),
    @extschema@.rfm_segment(@extschema@.rfm, text),
    @extschema@.tier_ladder_in(cstring),
    @extschema@.tier_ladder_out(@extschema@.tier_ladder),
    @extschema@.tier_ladder_recv(internal),
    @extschema@.tier_ladder_send(@extschema@.tier_ladder),
    @extschema@.tier_of(@extschema@.tier_ladder, numeric),
    @extschema@.tier_levels(@extschema@.tier_ladder),
    @extschema@.tier_ladder_options(@extschema@.tier_ladder),
    @extschema@.coupon_rule_in(cstring),
    @extschema@.coupon_rule_out(@extschema@.coupon_rule),
    @extschema@.coupon_rule_recv(internal),
    @extschema@.coupon_rule_send(@extschema@.coupon_rule),
    @extschema@.coupon_rule_eq(@extschema@.coupon_rule, @extschema@.coupon_rule),
    @extschema@.coupon_rule_ne(@extschema@.coupon_rule, @extschema@.coupon_rule)
TO PUBLIC;

-- The application (and admins): balances, statements, enrolment, spending.
-- earn() is not here: a credit of any points to anyone is a back-office act
-- (grant it to loyalty_app only if the application must credit points).
GRANT EXECUTE ON FUNCTION
    @extschema@.balance(text, text, timestamptz),
    @extschema@.history(text, text),
    @extschema@.enroll(text, text, jsonb),
    @extschema@.redeem(text, text, bigint, text, timestamptz),
    @extschema@.cancel_redemption(text, text)
TO loyalty_app, loyalty_admin;

-- All three: FX look-ups.
GRANT EXECUTE ON FUNCTION
    @extschema@.fx_rate_at(text, text, timestamptz),
    @extschema@.fx_quote(text, text, timestamptz)
TO loyalty_admin, loyalty_app, loyalty_reader;

-- All three: the business rules, pure functions that views call (a view's
-- reader needs the right to call them).
GRANT EXECUTE ON FUNCTION
    @extschema@.program_code_valid(text),
    @extschema@.lot_spendable(timestamptz, timestamptz, timestamptz),
    @extschema@.lot_pending(timestamptz, timestamptz, timestamptz),
    @extschema@.lot_expired(timestamptz, timestamptz),
    @extschema@.ledger_kind_class(@extschema@.ledger_kind)
TO loyalty_admin, loyalty_app, loyalty_reader;

-- Admins: configuration, credits, batch passes, the books.
GRANT EXECUTE ON FUNCTION
    @extschema@.earn(text, text, bigint, text, text, timestamptz),
    @extschema@.create_program(text, text, numeric, integer, interval, text, text, text[]),
    @extschema@.set_closing_statuses(text, text[]),
    @extschema@.set_member_status(text, text, text),
    @extschema@.set_fx_rate(text, text, numeric, timestamptz),
    @extschema@.attach_orders(text, regclass, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text[]),
    @extschema@.detach_orders(text, regclass),
    @extschema@.sync_partition_triggers(),
    @extschema@.retry_dead_letters(text),
    @extschema@.expire_points(text, timestamptz),
    @extschema@.expire_points_chunk(text, timestamptz, integer),
    @extschema@.verify(text),
    @extschema@.basis_window_days(text),
    @extschema@.member_activity(text, timestamptz, timestamptz),
    @extschema@.rebuild_activity(text),
    @extschema@.score_rfm(text, timestamptz, interval),
    @extschema@.set_tier_ladder(text, @extschema@.tier_ladder),
    @extschema@.recalculate_tiers(text, timestamptz),
    @extschema@.recalculate_tiers_chunk(text, timestamptz, text, integer),
    @extschema@.set_tier_floor(text, text, text, timestamptz),
    @extschema@.set_lifecycle(text, integer, integer, integer, integer),
    @extschema@.set_point_value(text, numeric)
TO loyalty_admin;
GRANT EXECUTE ON PROCEDURE
    @extschema@.expire_points_batched(text, timestamptz, integer),
    @extschema@.recalculate_tiers_batched(text, timestamptz, integer)
TO loyalty_admin;

-- member_activity() is inlined into its caller's query, with the day
-- function it calls.
GRANT EXECUTE ON FUNCTION @extschema@.activity_day_of(timestamptz) TO loyalty_admin;

-- Admins and BI: lifecycle at a chosen time.
GRANT EXECUTE ON FUNCTION @extschema@.member_lifecycle_at(text, timestamptz) TO loyalty_admin, loyalty_reader;

-- Not granted to anyone: orders_trigger() (only attach_orders() may create
-- triggers with it, and it ignores tables attach_orders did not attach; the
-- owner of an attached partitioned table is granted it by
-- sync_partition_triggers(), so that new partitions clone the row trigger),
-- the internal checks (check_currency, require_program, check_order_column,
-- calling_role, check_as_of, require_table_owner, order_trigger_args,
-- partition_ddl_command) and the trigger functions (an event trigger runs
-- partition_ddl() without checking EXECUTE).

-- Tables and views: admins read everything; configuration and the tier
-- ladder are readable by all three; balances only through functions.
GRANT SELECT ON ALL TABLES IN SCHEMA @extschema@ TO loyalty_admin;
GRANT SELECT ON @extschema@.program, @extschema@.fx_rate, @extschema@.rfm_segment_rule,
                @extschema@.program_tier
   TO loyalty_app, loyalty_reader;
GRANT SELECT ON @extschema@.member_rfm, @extschema@.rfm_pass, @extschema@.tier_history,
                @extschema@.tier_distribution, @extschema@.order_value, @extschema@.member_lifecycle,
                @extschema@.member_360, @extschema@.segment_summary, @extschema@.kpi_daily
   TO loyalty_reader;

-- All three: the pure coupon evaluator and the coupon_rule accessors
-- (read no table).
GRANT EXECUTE ON FUNCTION
    @extschema@.currency_minor_unit(text),
    @extschema@.coupon_rule_stack(@extschema@.coupon_rule),
    @extschema@.coupon_rule_valid_from(@extschema@.coupon_rule),
    @extschema@.coupon_rule_valid_until(@extschema@.coupon_rule),
    @extschema@.coupon_rule_first_order(@extschema@.coupon_rule),
    @extschema@.coupon_evaluate(@extschema@.coupon_rule, jsonb, timestamptz, text),
    @extschema@.coupon_discount(@extschema@.coupon_rule, jsonb, timestamptz, text)
TO loyalty_admin, loyalty_app, loyalty_reader;
-- Coupon campaigns: admins configure campaigns and issue codes.
GRANT EXECUTE ON FUNCTION
    @extschema@.create_campaign(text, text, @extschema@.coupon_rule, integer, integer, numeric, text),
    @extschema@.issue_codes(text, text, integer, text),
    @extschema@.add_code(text, text, text)
TO loyalty_admin;
-- Code spelling, pure functions: the application may show and compare codes.
GRANT EXECUTE ON FUNCTION
    @extschema@.coupon_code_normal(text),
    @extschema@.coupon_code_display(text),
    @extschema@.coupon_code_shape(text)
TO loyalty_admin, loyalty_app;
-- Coupons at checkout: the application (and admins).
GRANT EXECUTE ON FUNCTION
    @extschema@.member_cart(text, text, jsonb, timestamptz),
    @extschema@.validate_coupon(text, text, text, jsonb, timestamptz),
    @extschema@.redeem_coupon(text, text, text, jsonb, text, timestamptz),
    @extschema@.release_coupon(text, text),
    @extschema@.best_offer(text, text, jsonb, timestamptz)
TO loyalty_app, loyalty_admin;
GRANT EXECUTE ON FUNCTION @extschema@.set_discount_cap(text, numeric) TO loyalty_admin;

-- Rewards and automatic coupons: the application claims rewards; admins
-- keep the catalog, configure automatic coupons, compensate and run the
-- daily jobs.  The BI view of coupons is for BI.
GRANT EXECUTE ON FUNCTION
    @extschema@.claim_reward(text, text, text, text, timestamptz)
TO loyalty_app, loyalty_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.create_reward(text, text, bigint, text, bigint),
    @extschema@.restock_reward(text, text, bigint),
    @extschema@.set_auto_coupon(text, text, text),
    @extschema@.compensate(text, text, text, text),
    @extschema@.issue_birthday_coupons(text, timestamptz),
    @extschema@.issue_wake_up_coupons(text, timestamptz),
    @extschema@.birthday_in(text, integer)
TO loyalty_admin;
GRANT SELECT ON @extschema@.coupon_performance TO loyalty_reader;

-- Part A (signals, holds, exclusions, reversals).  Admins normalise
-- signals (to see what is hashed), rotate the key, purge old signals and
-- exclude test or staff accounts.  Not granted to anyone: signal_hash and
-- signal_digest (the key stays with the owner), hold_member,
-- release_member, reverse_order, take_back, is_excluded, lock_member (the
-- features' own functions call them; set_member_status holds by hand),
-- and the trigger functions.
GRANT EXECUTE ON FUNCTION
    @extschema@.normalize_signal(text, text),
    @extschema@.rotate_signal_key(),
    @extschema@.purge_order_signals(text, timestamptz),
    @extschema@.exclude_member(text, text, text),
    @extschema@.include_member(text, text)
TO loyalty_admin;
-- The key is the owner's alone, even for admins, who read every table.
REVOKE SELECT ON @extschema@.signal_key FROM loyalty_admin;
-- tier_history is a table loyalty_reader reads: row security leaves the
-- excluded members' rows out for it (admins read every row; the owner's
-- functions, which write it, are not subject to the policies).
GRANT EXECUTE ON FUNCTION @extschema@.member_visible(text, text) TO loyalty_reader, loyalty_admin;
ALTER TABLE @extschema@.tier_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY tier_history_admin ON @extschema@.tier_history FOR SELECT TO loyalty_admin USING (true);
CREATE POLICY tier_history_reader ON @extschema@.tier_history FOR SELECT TO loyalty_reader
    USING (@extschema@.member_visible(program, member_id));

-- Part B (issue 11): fraud checks.  Admins run the pass, set the rules and
-- the hold threshold, read risks and review flags; BI reads the overview.
GRANT EXECUTE ON FUNCTION
    @extschema@.fraud_check(text, timestamptz, timestamptz),
    @extschema@.fraud_rule_names(),
    @extschema@.fraud_rule_defaults(text),
    @extschema@.fraud_rule_params(text),
    @extschema@.set_fraud_rule(text, text, jsonb, boolean),
    @extschema@.set_hold_threshold(text, numeric),
    @extschema@.member_risk(text, text),
    @extschema@.review_flag(bigint, text, text)
TO loyalty_admin;
GRANT SELECT ON @extschema@.fraud_overview TO loyalty_reader;
-- Not granted: check_fraud_params, hold_threshold_of, review_result,
-- reverse_flag_evidence (internal steps of the functions above).

-- Referrals (part C of issue 11): the application makes codes and records
-- referrals; admins set the terms and run the daily settlement; BI reads
-- the funnel.  Internal (owner only): referral_credit, check_referral_as_of,
-- check_referral_milestones, lock_referral_member, referral_root,
-- referral_shares_fingerprint, referral_abuse, reward_referral,
-- settle_referrer, pay_commissions, take_back_commissions and the trigger
-- function referral_commission_trigger.
GRANT EXECUTE ON FUNCTION
    @extschema@.referral_code(text, text),
    @extschema@.refer(text, text, text, timestamptz)
TO loyalty_app, loyalty_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.set_referral_terms(text, bigint, bigint, text, text, jsonb, integer, interval, numeric[]),
    @extschema@.settle_referrals(text, timestamptz)
TO loyalty_admin;
GRANT SELECT ON @extschema@.referral_funnel TO loyalty_reader;

-- Friendlier SQL: the integer-member-id twins go to whoever may call the
-- text function (they call it, with the caller's rights); admins resolve
-- dead letters by hand.
GRANT EXECUTE ON FUNCTION
    @extschema@.enroll(text, bigint, jsonb),
    @extschema@.balance(text, bigint, timestamptz),
    @extschema@.history(text, bigint),
    @extschema@.redeem(text, bigint, bigint, text, timestamptz),
    @extschema@.member_cart(text, bigint, jsonb, timestamptz),
    @extschema@.validate_coupon(text, text, bigint, jsonb, timestamptz),
    @extschema@.redeem_coupon(text, text, bigint, jsonb, text, timestamptz),
    @extschema@.best_offer(text, bigint, jsonb, timestamptz),
    @extschema@.claim_reward(text, bigint, text, text, timestamptz),
    @extschema@.referral_code(text, bigint),
    @extschema@.refer(text, bigint, text, timestamptz)
TO loyalty_app, loyalty_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.earn(text, bigint, bigint, text, text, timestamptz),
    @extschema@.set_member_status(text, bigint, text),
    @extschema@.set_tier_floor(text, bigint, text, timestamptz),
    @extschema@.exclude_member(text, bigint, text),
    @extschema@.include_member(text, bigint),
    @extschema@.issue_codes(text, text, integer, bigint),
    @extschema@.compensate(text, bigint, text, text),
    @extschema@.member_risk(text, bigint),
    @extschema@.resolve_dead_letter(bigint, text)
TO loyalty_admin;
GRANT EXECUTE ON FUNCTION @extschema@.member_visible(text, bigint) TO loyalty_reader, loyalty_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.update_profile(text, bigint, jsonb),
    @extschema@.set_consent(text, bigint, text, boolean),
    @extschema@.member_lots(text, bigint, timestamptz)
TO loyalty_app, loyalty_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.adjust(text, bigint, bigint, text, text),
    @extschema@.merge_members(text, bigint, bigint, text),
    @extschema@.forget_member(text, bigint),
    @extschema@.export_member(text, bigint)
TO loyalty_admin;
-- P3 (member administration and GDPR).  The application keeps profiles
-- and consent and shows members their lots; admins adjust, merge, forget
-- and export.  Internal (owner only): has_consent (the automatic coupon jobs
-- call it as the owner; member_rfm writes the rule out), check_consent_purpose,
-- lock_live_member, ledger_label, member_id_columns, combine_member_rows,
-- rewrite_member_id, forgotten_id_hash, forgotten_pseudonym, member_alias,
-- remember_forgotten.
GRANT EXECUTE ON FUNCTION
    @extschema@.update_profile(text, text, jsonb),
    @extschema@.set_consent(text, text, text, boolean),
    @extschema@.member_lots(text, text, timestamptz)
TO loyalty_app, loyalty_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.adjust(text, text, bigint, text, text),
    @extschema@.set_consent_required(text, boolean),
    @extschema@.merge_members(text, text, text, text),
    @extschema@.forget_member(text, text),
    @extschema@.export_member(text, text)
TO loyalty_admin;
-- Program administration (P2): admins change terms, drop and archive
-- programs; everyone may read the terms (the application shows them,
-- BI prices with them).  program_change is readable by admins (ALL TABLES
-- above).  Internal (owner only): check_terms, terms_with,
-- program_terms_columns, lock_program_orders, detach_source, detach_all and
-- the trigger functions record_program_change, record_source_change.
GRANT EXECUTE ON FUNCTION
    @extschema@.change_program(text, jsonb, timestamptz, text),
    @extschema@.drop_program(text),
    @extschema@.archive_program(text)
TO loyalty_admin;
GRANT EXECUTE ON FUNCTION @extschema@.program_terms_at(text, timestamptz)
TO loyalty_admin, loyalty_app, loyalty_reader;
GRANT SELECT ON @extschema@.program_terms TO loyalty_app, loyalty_reader;

-- Health (P2): admins run and schedule the nightly jobs, record the
-- batched procedures' runs (those run as their caller) and read everything;
-- loyalty_reader reads the health view (monitoring).  Internal (owner
-- only): record_job_run, cron_connection_problem, require_pg_cron,
-- nightly_job_name.
GRANT EXECUTE ON FUNCTION
    @extschema@.verify_run(text),
    @extschema@.run_nightly_jobs(text, integer),
    @extschema@.schedule_jobs(text, time),
    @extschema@.unschedule_jobs(text),
    @extschema@.job_run_begin(text, text),
    @extschema@.job_run_end(bigint, bigint, text)
TO loyalty_admin;
GRANT SELECT ON @extschema@.health TO loyalty_reader;

-- Back-fill and mapping options: a DBA adopting loyalty back-fills the
-- tables it attached (as loyalty_admin and a member of the table's owner
-- role, as for attach_orders), watches the runs, and may drop an unfinished
-- run's row to start over.
GRANT EXECUTE ON FUNCTION @extschema@.backfill_orders_chunk(text, regclass, text, timestamptz, integer) TO loyalty_admin;
GRANT EXECUTE ON PROCEDURE @extschema@.backfill_orders(text, regclass, text, timestamptz, integer) TO loyalty_admin;
GRANT SELECT, DELETE ON @extschema@.backfill_run TO loyalty_admin;
