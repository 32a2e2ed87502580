-- pgTAP: the extension's objects, their properties and their privileges.
BEGIN;
SELECT plan(116);

SELECT has_schema('loyalty');
SELECT tables_are('loyalty', ARRAY['program', 'member', 'ledger', 'lot', 'lot_use', 'order_earning',
                                   'fx_rate', 'order_source', 'dead_letter', 'rfm_segment_rule', 'rfm_score', 'rfm_pass',
                                   'tier_history', 'activity_total', 'activity_day', 'activity_before',
                                   'activity_horizon', 'coupon_campaign', 'coupon_code', 'coupon_redemption', 'coupon_release_pending',
                                   'reward', 'reward_claim', 'auto_coupon', 'signal_key', 'order_signal', 'member_contact',
                                   'member_hold', 'held_lot', 'member_exclusion', 'referral_setting', 'referral_code',
                                   'referral', 'referral_rejection', 'fraud_rule', 'fraud_setting', 'fraud_flag',
                                   'referral_commission', 'consent_policy', 'member_merge', 'forgotten_member',
                                   'program_terms', 'program_change', 'job_run', 'ignored_event', 'backfill_run']);
SELECT has_type('loyalty', 'rfm', 'the rfm type');
SELECT has_type('loyalty', 'tier_ladder', 'the tier_ladder type');
SELECT has_view('loyalty', 'program_tier', 'tier ladders as rows');
SELECT views_are('loyalty', ARRAY['counted_order', 'member_rfm', 'program_tier', 'order_value', 'member_lifecycle', 'member_360',
                                  'segment_summary', 'kpi_daily', 'tier_distribution', 'coupon_performance',
                                  'order_value_all', 'fraud_overview', 'referral_funnel', 'health']);
SELECT table_privs_are('loyalty', 'health', 'loyalty_reader', ARRAY['SELECT']);
SELECT table_privs_are('loyalty', 'health', 'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'program_terms', 'loyalty_app', ARRAY['SELECT']);
SELECT table_privs_are('loyalty', 'coupon_performance', 'loyalty_reader', ARRAY['SELECT']);
SELECT table_privs_are('loyalty', 'coupon_performance', 'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'referral_funnel', 'loyalty_reader', ARRAY['SELECT']);
SELECT table_privs_are('loyalty', 'referral_funnel', 'loyalty_app', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'refer', ARRAY['text', 'text', 'text', 'timestamp with time zone'],
                          'loyalty_app', ARRAY['EXECUTE']);
SELECT function_privs_are('loyalty', 'settle_referrals', ARRAY['text', 'timestamp with time zone'],
                          'loyalty_app', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'referral_credit', ARRAY['text', 'text', 'bigint', 'text', 'text', 'timestamp with time zone'],
                          'loyalty_admin', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'claim_reward', ARRAY['text', 'text', 'text', 'text', 'timestamp with time zone'],
                          'loyalty_app', ARRAY['EXECUTE']);
SELECT function_privs_are('loyalty', 'create_reward', ARRAY['text', 'text', 'bigint', 'text', 'bigint'],
                          'loyalty_app', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'recalculate_tiers', ARRAY['text', 'timestamp with time zone'],
                          'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'tier_distribution', 'loyalty_reader', ARRAY['SELECT']);
SELECT table_privs_are('loyalty', 'member_360', 'loyalty_reader', ARRAY['SELECT']);
SELECT table_privs_are('loyalty', 'kpi_daily', 'loyalty_reader', ARRAY['SELECT']);
SELECT table_privs_are('loyalty', 'kpi_daily', 'loyalty_app', ARRAY[]::text[]);
SELECT has_column('loyalty', 'program', 'tier_ladder', 'a program has a ladder');
SELECT table_privs_are('loyalty', 'program_tier', 'loyalty_reader', ARRAY['SELECT']);
SELECT function_privs_are('loyalty', 'set_tier_ladder', ARRAY['text', 'loyalty.tier_ladder'], 'loyalty_app', ARRAY[]::text[]);
SELECT has_opclass('loyalty', 'rfm_ops', 'rfm btree operator class');
SELECT has_opclass('loyalty', 'rfm_hash_ops', 'rfm hash operator class');
SELECT enum_has_labels('loyalty', 'ledger_kind', ARRAY['earn', 'adjust', 'unredeem', 'redeem', 'reverse', 'expire']);
SELECT enum_has_labels('loyalty', 'member_status', ARRAY['active', 'held', 'forgotten']);
SELECT function_privs_are('loyalty', 'score_rfm', ARRAY['text', 'timestamp with time zone', 'interval'],
                          'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'member_rfm', 'loyalty_reader', ARRAY['SELECT']);
SELECT col_is_pk('loyalty', 'program', 'code'::name, 'program code is the key');
SELECT col_is_pk('loyalty', 'member', ARRAY['program', 'member_id']::name[], 'members are keyed by program and id');
SELECT col_is_pk('loyalty', 'order_earning', ARRAY['program', 'order_id']::name[], 'one state row per order');
SELECT col_is_pk('loyalty', 'fx_rate', ARRAY['from_currency', 'to_currency', 'valid_from']::name[], 'one rate per pair and start');
SELECT col_is_pk('loyalty', 'activity_day', ARRAY['program', 'day', 'member_id']::name[],
                 'day rows are keyed for range scans by day');
SELECT has_trigger('loyalty', 'order_earning', 'activity_insert'::name, 'new orders count');
SELECT has_trigger('loyalty', 'order_earning', 'activity_update'::name, 'changed orders count again');
SELECT has_trigger('loyalty', 'order_earning', 'activity_delete'::name, 'deleted orders stop counting');
SELECT function_privs_are('loyalty', 'member_activity', ARRAY['text', 'timestamp with time zone', 'timestamp with time zone'],
                          'loyalty_app', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'rebuild_activity', ARRAY['text'], 'loyalty_admin', ARRAY['EXECUTE']);
SELECT table_privs_are('loyalty', 'activity_total', 'loyalty_app', ARRAY[]::text[]);
SELECT has_index('loyalty', 'ledger', 'ledger_ref_key', ARRAY['program', 'ref', 'member_id']::name[],
                 'references are unique per program and member');
SELECT has_index('loyalty', 'ledger', 'ledger_unredeem_key', ARRAY['related_id', 'member_id']::name[],
                 'a redemption is cancelled at most once');
SELECT col_is_pk('loyalty', 'ledger', ARRAY['id', 'member_id']::name[], 'ledger keys include the member (distribution by member)');
SELECT has_trigger('loyalty', 'ledger', 'ledger_append_only'::name, 'UPDATE and DELETE refused');
SELECT has_trigger('loyalty', 'ledger', 'ledger_no_truncate'::name, 'TRUNCATE refused');
SELECT col_not_null('loyalty', 'ledger', 'occurred_at', 'every ledger row has a time');
SELECT col_type_is('loyalty', 'ledger', 'points', 'bigint', 'points are whole numbers');
SELECT col_type_is('loyalty', 'fx_rate', 'rate', 'numeric', 'rates are exact');
SELECT col_type_is('loyalty', 'order_earning', 'amount', 'numeric', 'amounts are exact');

-- Roles exist and cannot log in.
SELECT has_role('loyalty_admin');
SELECT has_role('loyalty_app');
SELECT has_role('loyalty_reader');
SELECT is((SELECT bool_or(rolcanlogin) FROM pg_roles WHERE rolname LIKE 'loyalty\_%'), false, 'loyalty roles cannot log in');

-- The application's functions: present, SECURITY DEFINER, volatile as they write.
SELECT has_function('loyalty', 'balance', ARRAY['text', 'text', 'timestamp with time zone']);
SELECT has_function('loyalty', 'redeem', ARRAY['text', 'text', 'bigint', 'text', 'timestamp with time zone']);
SELECT has_function('loyalty', 'earn', ARRAY['text', 'text', 'bigint', 'text', 'text', 'timestamp with time zone']);
SELECT has_function('loyalty', 'cancel_redemption', ARRAY['text', 'text']);
SELECT has_function('loyalty', 'enroll', ARRAY['text', 'text', 'jsonb']);
SELECT has_function('loyalty', 'history', ARRAY['text', 'text']);
SELECT is_definer('loyalty', 'balance', ARRAY['text', 'text', 'timestamp with time zone']);
SELECT is_definer('loyalty', 'redeem', ARRAY['text', 'text', 'bigint', 'text', 'timestamp with time zone']);
SELECT is_definer('loyalty', 'earn', ARRAY['text', 'text', 'bigint', 'text', 'text', 'timestamp with time zone']);
SELECT is_definer('loyalty', 'cancel_redemption', ARRAY['text', 'text']);
SELECT is_definer('loyalty', 'enroll', ARRAY['text', 'text', 'jsonb']);
SELECT is_definer('loyalty', 'orders_trigger', ARRAY[]::text[]);
SELECT volatility_is('loyalty', 'balance', ARRAY['text', 'text', 'timestamp with time zone'], 'stable');
SELECT volatility_is('loyalty', 'history', ARRAY['text', 'text'], 'stable');
SELECT volatility_is('loyalty', 'verify', ARRAY['text'], 'stable');
SELECT volatility_is('loyalty', 'redeem', ARRAY['text', 'text', 'bigint', 'text', 'timestamp with time zone'], 'volatile');
SELECT volatility_is('loyalty', 'expire_points', ARRAY['text', 'timestamp with time zone'], 'volatile');
SELECT function_lang_is('loyalty', 'redeem', ARRAY['text', 'text', 'bigint', 'text', 'timestamp with time zone'], 'c');
SELECT function_lang_is('loyalty', 'orders_trigger', ARRAY[]::text[], 'c');
SELECT function_returns('loyalty', 'expire_points', ARRAY['text', 'timestamp with time zone'], 'bigint');

-- Admin functions.
SELECT has_function('loyalty', 'create_program', ARRAY['text', 'text', 'numeric', 'integer', 'interval', 'text', 'text', 'text[]']);
SELECT has_function('loyalty', 'attach_orders', ARRAY['text', 'regclass', 'text', 'text', 'text', 'text', 'text', 'text', 'text',
                                                      'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text[]']);
SELECT function_privs_are('loyalty', 'backfill_orders_chunk', ARRAY['text', 'regclass', 'text', 'timestamp with time zone', 'integer'],
                          'loyalty_admin', ARRAY['EXECUTE']);
SELECT function_privs_are('loyalty', 'backfill_orders_chunk', ARRAY['text', 'regclass', 'text', 'timestamp with time zone', 'integer'],
                          'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'backfill_run', 'loyalty_admin', ARRAY['SELECT', 'DELETE']);
SELECT has_function('loyalty', 'detach_orders', ARRAY['text', 'regclass']);
SELECT has_function('loyalty', 'set_fx_rate', ARRAY['text', 'text', 'numeric', 'timestamp with time zone']);
SELECT has_function('loyalty', 'retry_dead_letters', ARRAY['text']);
SELECT has_function('loyalty', 'expire_points', ARRAY['text', 'timestamp with time zone']);
SELECT has_function('loyalty', 'verify', ARRAY['text']);

-- Privileges: the application calls functions and writes no table.
SELECT function_privs_are('loyalty', 'redeem', ARRAY['text', 'text', 'bigint', 'text', 'timestamp with time zone'],
                          'loyalty_app', ARRAY['EXECUTE']);
SELECT function_privs_are('loyalty', 'redeem', ARRAY['text', 'text', 'bigint', 'text', 'timestamp with time zone'],
                          'loyalty_reader', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'redeem', ARRAY['text', 'text', 'bigint', 'text', 'timestamp with time zone'],
                          'public', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'create_program', ARRAY['text', 'text', 'numeric', 'integer', 'interval', 'text', 'text', 'text[]'],
                          'loyalty_app', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'create_program', ARRAY['text', 'text', 'numeric', 'integer', 'interval', 'text', 'text', 'text[]'],
                          'loyalty_admin', ARRAY['EXECUTE']);
SELECT function_privs_are('loyalty', 'orders_trigger', ARRAY[]::text[], 'public', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'earn', ARRAY['text', 'text', 'bigint', 'text', 'text', 'timestamp with time zone'],
                          'loyalty_app', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'earn', ARRAY['text', 'text', 'bigint', 'text', 'text', 'timestamp with time zone'],
                          'loyalty_admin', ARRAY['EXECUTE']);
SELECT function_privs_are('loyalty', 'check_as_of', ARRAY['timestamp with time zone'], 'public', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'verify', ARRAY['text'], 'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'ledger', 'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'member', 'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'lot', 'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'order_earning', 'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'program', 'loyalty_app', ARRAY['SELECT']);
SELECT table_privs_are('loyalty', 'ledger', 'loyalty_admin', ARRAY['SELECT']);
SELECT table_privs_are('loyalty', 'ledger', 'loyalty_reader', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'program', 'loyalty_reader', ARRAY['SELECT']);
SELECT table_privs_are('loyalty', 'ledger', 'public', ARRAY[]::text[]);
SELECT schema_privs_are('loyalty', 'loyalty_app', ARRAY['USAGE']);
SELECT schema_privs_are('loyalty', 'public', ARRAY[]::text[]);
-- Signals, holds, exclusions: the key is the owner's alone; the internal
-- functions are nobody's; admins exclude; BI reads no unfiltered view.
SELECT table_privs_are('loyalty', 'signal_key', 'loyalty_admin', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'order_signal', 'loyalty_reader', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'signal_hash', ARRAY['text', 'text'], 'loyalty_admin', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'hold_member', ARRAY['text', 'text', 'text', 'text'], 'loyalty_admin', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'reverse_order', ARRAY['text', 'text', 'text'], 'loyalty_admin', ARRAY[]::text[]);
SELECT function_privs_are('loyalty', 'exclude_member', ARRAY['text', 'text', 'text'], 'loyalty_admin', ARRAY['EXECUTE']);
SELECT function_privs_are('loyalty', 'exclude_member', ARRAY['text', 'text', 'text'], 'loyalty_app', ARRAY[]::text[]);
SELECT table_privs_are('loyalty', 'order_value_all', 'loyalty_reader', ARRAY[]::text[]);
SELECT policies_are('loyalty', 'tier_history', ARRAY['tier_history_admin', 'tier_history_reader']);

SELECT * FROM finish();
ROLLBACK;
