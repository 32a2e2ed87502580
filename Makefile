# loyalty: PGXS build.  `make && make install && make installcheck`
EXTENSION   = loyalty
EXTVERSION  = 0.2.0
MODULE_big  = loyalty
OBJS = \
	src/loyalty.o \
	src/spi_util.o \
	src/cluster.o \
	src/program.o \
	src/program_terms.o \
	src/health.o \
	src/fx.o \
	src/lots.o \
	src/ledger.o \
	src/credit.o \
	src/order_event.o \
	src/order_partition.o \
	src/order_batch.o \
	src/order_read.o \
	src/backfill.o \
	src/dead_letter.o \
	src/accrual_hook.o \
	src/accrual_trigger.o \
	src/earn.o \
	src/redeem.o \
	src/expiry.o \
	src/activity.o \
	src/rfm.o \
	src/rfm_score.o \
	src/rfm_store.o \
	src/tier_ladder.o \
	src/tier_state.o \
	src/caller.o \
	src/currency.o \
	src/cart.o \
	src/coupon_rule.o \
	src/coupon_eval.o \
	src/coupon_code.o \
	src/coupon_order.o \
	src/referral.o \
	src/signal_normalize.o \
	src/signal_hash.o \
	src/reversal.o \
	src/member_alias.o \
	src/fraud_params.o \
	src/fraud_json.o \
	src/fraud_flags.o \
	src/fraud_rules_orders.o \
	src/fraud_fingerprint.o \
	src/fraud_ledger.o \
	src/fraud_coupon.o \
	src/fraud_referral.o \
	src/fraud_check.o \
	src/signal_trigger.o

SQL_PIECES = $(sort $(wildcard src/sql/[0-9]*.sql))
# Every release's upgrade step, from the previous one; its pieces are
# concatenated like the install script's.
UPGRADE_0_2_0 = $(sort $(wildcard src/upgrade/0.1.0--0.2.0/[0-9]*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--0.1.0--0.2.0.sql
# The install script of every earlier release, as it shipped (never edited).
DATA = $(EXTENSION)--0.1.0.sql
EXTRA_CLEAN = $(DATA_built)

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS  += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers $(if $(WERROR),-Werror)

# Every file runs alone: pg_regress creates the extension in a fresh
# database, and each file makes what it needs (scripts/regress_each.sh).
REGRESS_OPTS = --load-extension=$(EXTENSION)
REGRESS      = setup programs members fx trigger refunds redeem expiry errors verify roles rfm tiers activity bi docs types_input security partitions values statement_shapes review_findings coupon_rule coupon_eval coupon_campaigns coupon_redeem best_offer coupon_rewards coupon_auto coupon_bi coupon_review coupon_attack reference_complete holds reversal signals exclusions fraud_rules fraud_review referral referral_commission fraud_eval adopting friendly role_tasks member_admin gdpr backfill mapping program_admin health review_members review_backfill review_progadmin adopting_tour cluster
ISOLATION      = redeem_race same_ref refund_vs_redeem program_cache activity_race insert_member_order refund_member_order batch_member_order bulk_load_race coupon_last_unit coupon_member_limit coupon_same_ref coupon_budget coupon_release_race reward_stock auto_coupon_once coupon_rr_stack hold_vs_order fraud_check_race fraud_review_race referral_same_referee referral_milestone signal_key_rotation fraud_release_race fraud_evidence_race mapping_change_vs_order partition_conversion_vs_order resolve_vs_retry merge_vs_order forget_vs_order backfill_vs_orders program_change_vs_order backfill_member_order
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PIECES)
	cat $^ > $@

$(EXTENSION)--0.1.0--0.2.0.sql: $(UPGRADE_0_2_0)
	cat $^ > $@

# Every object depends on every header: few files, no stale struct layouts.
$(OBJS): $(wildcard src/*.h)
