/*
 * fraud_ledger.c
 *		earn_burn: a large redemption soon after a large credit, taking most
 *		of it (points earned to be cashed out at once, typically on orders
 *		refunded later).
 *
 * Only ledger rows of the period of at least `points` are read (credits
 * of kind earn or adjust, redemptions not cancelled since: a cancelled
 * one took nothing out), sorted by member and time; each member's rows
 * are one sweep.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"

#include "fraud.h"
#include "spi_util.h"

static LoyaltyQuery large_rows = {
	"SELECT l.member_id, l.id, l.kind OPERATOR(pg_catalog.=) 'redeem', pg_catalog.abs(l.points),"
	"       l.occurred_at, l.order_id"
	"  FROM loyalty.ledger l"
	" WHERE l.program OPERATOR(pg_catalog.=) $1"
	"   AND l.occurred_at OPERATOR(pg_catalog.>=) $2 AND l.occurred_at OPERATOR(pg_catalog.<=) $3"
	"   AND l.kind OPERATOR(pg_catalog.=) ANY ('{earn,adjust,redeem}'::loyalty.ledger_kind[])"
	"   AND pg_catalog.abs(l.points) OPERATOR(pg_catalog.>=) $4"
	"   AND NOT EXISTS (SELECT 1 FROM loyalty.ledger u"
	"                    WHERE u.kind OPERATOR(pg_catalog.=) 'unredeem'"
	"                      AND u.related_id OPERATOR(pg_catalog.=) l.id"
	"                      AND u.member_id OPERATOR(pg_catalog.=) l.member_id)"
	"   AND NOT (l.member_id OPERATOR(pg_catalog.=) ANY (" FRAUD_EXCLUDED "))"
	" ORDER BY l.member_id COLLATE pg_catalog.\"C\", l.occurred_at, l.id",
	4, {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID}, true
};

typedef struct LedgerRow
{
	int64		id;
	bool		redeem;
	int64		points;			/* > 0 */
	TimestampTz at;
	char	   *order_id;		/* a credit's order, NULL: none */
} LedgerRow;

typedef struct LedgerSweep
{
	FraudRun   *run;
	MemoryContext member_cxt;
	char	   *member_id;
	LedgerRow  *rows;
	int			n;
	int			size;
} LedgerSweep;

/* The credits a redemption burnt: large, within hours before, mostly taken. */
static void
RedeemFlag(LedgerSweep *sw, const LedgerRow *r)
{
	const FraudRule *rule = &sw->run->rules[FR_EARN_BURN];
	int64		span = (int64) (rule->hours * USECS_PER_HOUR);
	const char **orders = palloc(sizeof(char *) * sw->n);
	int			norders = 0;
	StringInfoData ledger;
	int			nledger = 0;
	int64		earned = 0;
	StringInfoData ev;

	initStringInfo(&ledger);
	for (int i = 0; i < sw->n; i++)
	{
		const LedgerRow *e = &sw->rows[i];

		if (e->redeem || e->at > r->at || r->at - e->at > span ||
			(double) r->points < rule->share * (double) e->points)
			continue;
		earned += e->points;
		if (e->order_id)
			orders[norders++] = e->order_id;
		else
			appendStringInfo(&ledger, "%s" INT64_FORMAT, nledger++ ? ", " : "", e->id);
	}
	if (earned == 0)
		return;
	FraudJsonStart(&ev);
	FraudJsonStrings(&ev, "orders", orders, norders);
	appendStringInfo(&ev, ", \"ledger\": [%s]", ledger.data);
	FraudJsonInt(&ev, "redeem", r->id);
	FraudJsonInt(&ev, "redeemed", r->points);
	FraudJsonInt(&ev, "earned", earned);
	FraudJsonEnd(&ev);
	FraudFlagAdd(sw->run, sw->member_id, FR_EARN_BURN, psprintf("ledger:" INT64_FORMAT, r->id),
				 &ev, earned);
}

static void
MemberEnd(LedgerSweep *sw)
{
	if (sw->member_id == NULL)
		return;
	for (int i = 0; i < sw->n; i++)
		if (sw->rows[i].redeem)
			RedeemFlag(sw, &sw->rows[i]);
	MemoryContextReset(sw->member_cxt);
	sw->member_id = NULL;
}

static void
LedgerRowIn(const Datum *v, const bool *isnull, MemoryContext keep, void *arg)
{
	LedgerSweep *sw = arg;
	char	   *member_id = TextDatumGetCString(v[0]);
	LedgerRow  *row;

	if (sw->member_id == NULL || strcmp(sw->member_id, member_id) != 0)
	{
		MemberEnd(sw);
		sw->member_id = MemoryContextStrdup(sw->member_cxt, member_id);
		sw->n = 0;
		sw->size = 16;
		sw->rows = MemoryContextAlloc(sw->member_cxt, sizeof(LedgerRow) * sw->size);
	}
	if (sw->n == sw->size)
	{
		sw->size *= 2;
		sw->rows = repalloc_huge(sw->rows, sizeof(LedgerRow) * sw->size);
	}
	row = &sw->rows[sw->n++];
	row->id = DatumGetInt64(v[1]);
	row->redeem = DatumGetBool(v[2]);
	row->points = DatumGetInt64(v[3]);
	row->at = DatumGetTimestampTz(v[4]);
	row->order_id = isnull[5] ? NULL : MemoryContextStrdup(sw->member_cxt, TextDatumGetCString(v[5]));
}

/*
 * earn_burn: a redemption of at least `points` in the period, with credits
 * of at least `points` in the `hours` before it (same time included) of
 * which it took at least `share` each.  Subject ledger:<redemption id>;
 * evidence the credits (their orders, or ledger ids when not an order's).
 */
void
FraudEarnBurn(FraudRun *run)
{
	LedgerSweep sw = {0};
	Datum		args[4];

	if (!FRAUD_RULE_ON(run, FR_EARN_BURN))
		return;
	sw.run = run;
	sw.member_cxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty fraud ledger member",
										  ALLOCSET_SMALL_SIZES);
	args[0] = CStringGetTextDatum(run->program);
	args[1] = TimestampTzGetDatum(run->since);
	args[2] = TimestampTzGetDatum(run->as_of);
	args[3] = Int64GetDatum(run->rules[FR_EARN_BURN].points);
	LoyaltyStream(&large_rows, args, NULL, LedgerRowIn, &sw);
	MemberEnd(&sw);
	MemoryContextDelete(sw.member_cxt);
}
