/*
 * fraud_check.c
 *		loyalty.fraud_check(program, since, as_of): one batch pass over a
 *		program's activity in [since, as_of] that raises fraud flags by the
 *		enabled rules and holds the members whose risk reaches the
 *		threshold (docs/fraud.md).
 *
 * The orders (order_earning joined to order_signal) are streamed once,
 * sorted by member and time, without collecting them: each member's
 * orders are kept in a memory context reset when the next member starts,
 * the per-member rules run on them (fraud_rules_orders.c) and their
 * signals go into the fingerprint table (fraud_fingerprint.c).  Contacts
 * are read before, the large ledger rows, coupon redemptions and
 * referrals after.  Runs of one program take turns (a transaction
 * advisory lock): a second run sees the first's flags and raises none
 * twice.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cluster.h"
#include "fraud.h"
#include "health.h"
#include "loyalty.h"
#include "program.h"
#include "spi_util.h"

/* Orders read between two NOTICEs of progress. */
#define FRAUD_PROGRESS_ROWS 1000000

static LoyaltyQuery run_lock = {
	"SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('loyalty.fraud_check'),"
	"                                        pg_catalog.hashtext($1))",
	1, {TEXTOID}
};

/* The orders of the period, members excluded as test or staff left out. */
static LoyaltyQuery period_orders = {
	"SELECT o.member_id, o.order_id, o.ordered_at,"
	"       (o.amount OPERATOR(pg_catalog.*) o.fx_rate)::pg_catalog.float8,"
	"       (CASE WHEN o.closed THEN o.amount ELSE least(o.refunded_amount, o.amount) END"
	"        OPERATOR(pg_catalog.*) o.fx_rate)::pg_catalog.float8,"
	"       o.points OPERATOR(pg_catalog.-) o.reversed_target,"
	"       s.device_id, s.payment_fingerprint, s.shipping_address, s.ip,"
	"       s.billing_country, s.ip_country"
	"  FROM loyalty.order_earning o"
	"  LEFT JOIN loyalty.order_signal s ON s.program OPERATOR(pg_catalog.=) o.program"
	"                                  AND s.order_id OPERATOR(pg_catalog.=) o.order_id"
	" WHERE o.program OPERATOR(pg_catalog.=) $1 AND o.member_id IS NOT NULL"
	"   AND o.ordered_at OPERATOR(pg_catalog.>=) $2 AND o.ordered_at OPERATOR(pg_catalog.<=) $3"
	"   AND NOT (o.member_id OPERATOR(pg_catalog.=) ANY (" FRAUD_EXCLUDED "))"
	" ORDER BY o.member_id COLLATE pg_catalog.\"C\", o.ordered_at, o.order_id COLLATE pg_catalog.\"C\"",
	3, {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, true
};

/*
 * The same on a Citus cluster: the signals are joined on the member too
 * (an order's signal row lives with its member), which Citus needs to join
 * the two tables on each node.
 */
static LoyaltyQuery period_orders_cluster = {
	"SELECT o.member_id, o.order_id, o.ordered_at,"
	"       (o.amount OPERATOR(pg_catalog.*) o.fx_rate)::pg_catalog.float8,"
	"       (CASE WHEN o.closed THEN o.amount ELSE least(o.refunded_amount, o.amount) END"
	"        OPERATOR(pg_catalog.*) o.fx_rate)::pg_catalog.float8,"
	"       o.points OPERATOR(pg_catalog.-) o.reversed_target,"
	"       s.device_id, s.payment_fingerprint, s.shipping_address, s.ip,"
	"       s.billing_country, s.ip_country"
	"  FROM loyalty.order_earning o"
	"  LEFT JOIN loyalty.order_signal s ON s.program OPERATOR(pg_catalog.=) o.program"
	"                                  AND s.order_id OPERATOR(pg_catalog.=) o.order_id"
	"                                  AND s.member_id OPERATOR(pg_catalog.=) o.member_id"
	" WHERE o.program OPERATOR(pg_catalog.=) $1 AND o.member_id IS NOT NULL"
	"   AND o.ordered_at OPERATOR(pg_catalog.>=) $2 AND o.ordered_at OPERATOR(pg_catalog.<=) $3"
	"   AND NOT (o.member_id OPERATOR(pg_catalog.=) ANY (" FRAUD_EXCLUDED "))"
	" ORDER BY o.member_id COLLATE pg_catalog.\"C\", o.ordered_at, o.order_id COLLATE pg_catalog.\"C\"",
	3, {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, true
};

/* Its columns. */
enum
{
	O_MEMBER, O_ORDER, O_AT, O_BASE, O_REFUNDED, O_POINTS_LEFT,
	O_DEVICE, O_PAYMENT, O_ADDRESS, O_IP, O_BILLING_COUNTRY, O_IP_COUNTRY
};

/* The member being swept and its orders. */
typedef struct Sweep
{
	FraudRun   *run;
	MemoryContext member_cxt;	/* reset at each member */
	bool		prints;			/* collect signals (a fingerprint rule is on) */
	bool		ip_prints;		/* ... IP addresses too */
	char	   *member_id;		/* NULL before the first */
	int			member_len;
	int32		member;			/* its number in the fingerprint table */
	FraudOrder *orders;
	int			n;
	int			size;
} Sweep;

static void
MemberEnd(Sweep *sw)
{
	if (sw->member_id == NULL)
		return;
	FraudMemberOrderRules(sw->run, sw->member_id, sw->orders, sw->n);
	if (sw->prints)
		FraudPrintsMemberOrders(sw->run, sw->member_id, sw->orders, sw->n);
	MemoryContextReset(sw->member_cxt);
	sw->member_id = NULL;
}

static void
MemberStart(Sweep *sw, const char *id, int len)
{
	sw->member_id = MemoryContextAlloc(sw->member_cxt, len + 1);
	memcpy(sw->member_id, id, len);
	sw->member_id[len] = '\0';
	sw->member_len = len;
	if (sw->prints)
		sw->member = FraudPrintsMember(sw->run, id, len);
	sw->n = 0;
	sw->size = 16;
	sw->orders = MemoryContextAlloc(sw->member_cxt, sizeof(FraudOrder) * sw->size);
}

/* A 16-byte signal hash, or NULL (not mapped, NULL, or not a hash). */
static const uint8 *
HashOf(const Datum *v, const bool *isnull, int col)
{
	bytea	   *h;

	if (isnull[col])
		return NULL;
	h = DatumGetByteaPP(v[col]);
	return VARSIZE_ANY_EXHDR(h) == FRAUD_HASH_LEN ? (const uint8 *) VARDATA_ANY(h) : NULL;
}

static void
OrderRow(const Datum *v, const bool *isnull, MemoryContext keep, void *arg)
{
	Sweep	   *sw = arg;
	text	   *member = DatumGetTextPP(v[O_MEMBER]);
	int			len = VARSIZE_ANY_EXHDR(member);
	FraudOrder *o;
	const uint8 *billing = HashOf(v, isnull, O_BILLING_COUNTRY);
	const uint8 *ip_country = HashOf(v, isnull, O_IP_COUNTRY);

	if (sw->member_id == NULL || len != sw->member_len ||
		memcmp(VARDATA_ANY(member), sw->member_id, len) != 0)
	{
		MemberEnd(sw);
		MemberStart(sw, VARDATA_ANY(member), len);
	}
	if (sw->n == sw->size)
	{
		sw->size *= 2;
		sw->orders = repalloc_huge(sw->orders, sizeof(FraudOrder) * sw->size);
	}
	o = &sw->orders[sw->n++];
	o->order_id = MemoryContextStrdup(sw->member_cxt, TextDatumGetCString(v[O_ORDER]));
	o->at = DatumGetTimestampTz(v[O_AT]);
	o->has_base = !isnull[O_BASE];
	o->base = o->has_base ? DatumGetFloat8(v[O_BASE]) : 0;
	o->refunded = (o->has_base && !isnull[O_REFUNDED]) ? DatumGetFloat8(v[O_REFUNDED]) : 0;
	o->points_left = DatumGetInt64(v[O_POINTS_LEFT]);
	o->geo_known = billing != NULL && ip_country != NULL;
	o->geo_mismatch = o->geo_known && memcmp(billing, ip_country, FRAUD_HASH_LEN) != 0;
	if (sw->prints)
	{
		for (int kind = FK_DEVICE; kind <= FK_ADDRESS; kind++)
		{
			const uint8 *h = HashOf(v, isnull, O_DEVICE + kind);

			if (h)
				FraudPrintsAddOrder(sw->run, sw->member, kind, h);
		}
		if (sw->ip_prints && HashOf(v, isnull, O_IP))
			FraudPrintsAddOrder(sw->run, sw->member, FK_IP, HashOf(v, isnull, O_IP));
	}
	if (++sw->run->orders_read % FRAUD_PROGRESS_ROWS == 0)
		ereport(NOTICE,
				(errmsg("loyalty: fraud_check %s: " INT64_FORMAT " orders read",
						sw->run->program, sw->run->orders_read)));
	if (sw->run->orders_read % 10000 == 0)
		CHECK_FOR_INTERRUPTS();
}

/* Streams the period's orders through the per-member rules. */
static void
SweepOrders(FraudRun *run)
{
	const FraudRule *sf = &run->rules[FR_SHARED_FINGERPRINT];
	Sweep		sw = {0};
	Datum		args[3];

	sw.run = run;
	sw.member_cxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty fraud member",
										  ALLOCSET_DEFAULT_SIZES);
	sw.prints = sf->enabled || FRAUD_RULE_ON(run, FR_COUPON_FARMING) ||
		FRAUD_RULE_ON(run, FR_REFERRAL_RING);
	sw.ip_prints = sf->enabled && sf->kinds[FK_IP];
	args[0] = CStringGetTextDatum(run->program);
	args[1] = TimestampTzGetDatum(run->since);
	args[2] = TimestampTzGetDatum(run->as_of);
	LoyaltyStream(LoyaltyDistributed() ? &period_orders_cluster : &period_orders, args, NULL, OrderRow, &sw);
	MemberEnd(&sw);
	MemoryContextDelete(sw.member_cxt);
}

/* Every rule, in turn; returns the new flags. */
static int64
FraudRunAll(FraudRun *run)
{
	LoyaltyRun(&run_lock, (Datum[]) {CStringGetTextDatum(run->program)}, NULL, SPI_OK_SELECT);
	FraudLoadRules(run);
	FraudFlagsInit(&run->flags);
	FraudPrintsInit(run);
	FraudLoadContacts(run);
	SweepOrders(run);
	FraudFlagsFlush(run);
	FraudPrintsIndexMembers(run);
	FraudSharedFingerprintFlags(run);
	FraudFlagsFlush(run);
	FraudEarnBurn(run);
	FraudFlagsFlush(run);
	FraudCouponFarming(run);
	FraudFlagsFlush(run);
	FraudReferralRing(run);
	FraudFlagsFlush(run);
	FraudHoldRisky(run);
	return run->flags.inserted;
}

PG_FUNCTION_INFO_V1(loyalty_fraud_check);
/* loyalty.fraud_check(program, since, as_of): the new flags of one pass. */
Datum
loyalty_fraud_check(PG_FUNCTION_ARGS)
{
	FraudRun	run = {0};
	LoyaltyProgram prog;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty fraud_check",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;
	int64		flags;
	TimestampTz started = GetCurrentTimestamp();
	char	   *since;

	run.program = LoyaltyTextArg(fcinfo, 0, "program");
	run.since = LoyaltyTimestampArg(fcinfo, 1, "since");
	run.as_of = LoyaltyTimestampArg(fcinfo, 2, "as_of");
	if (run.since > run.as_of)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("since \"%s\" is later than as_of \"%s\"",
						pstrdup(timestamptz_to_str(run.since)), timestamptz_to_str(run.as_of)),
				 errhint("fraud_check reads the activity from since to as_of.")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "loyalty: SPI_connect failed");
	LoyaltyProgramRequire(run.program, &prog);
	old = MemoryContextSwitchTo(cxt);
	run.timezone = CStringGetTextDatum(prog.timezone);
	flags = FraudRunAll(&run);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	since = pstrdup(timestamptz_to_str(run.since));	/* one static buffer */
	JobRunRecord("fraud_check", run.program, started, flags,
				 psprintf("%s to %s: " INT64_FORMAT " new flags",
						  since, timestamptz_to_str(run.as_of), flags));
	SPI_finish();
	PG_RETURN_INT64(flags);
}
