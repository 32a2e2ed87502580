/*
 * fraud_coupon.c
 *		coupon_farming: first-order or referral coupons of one campaign
 *		redeemed by accounts that share a device, card, address, email or
 *		phone (new accounts made to use a one-per-member coupon again).
 *
 * The period's redemptions of such campaigns are read sorted by campaign
 * and member; per campaign, redeemers linked by a shared value (the
 * fingerprint table of the order sweep and the contacts) are joined into
 * groups (union-find), and every member of a group of `members` or more
 * is flagged.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"

#include "fraud.h"
#include "spi_util.h"

#define FRAUD_EVIDENCE_MEMBERS 20

static LoyaltyQuery farmable_redemptions = {
	"SELECT r.campaign, r.member_id, r.order_ref, o.points OPERATOR(pg_catalog.-) o.reversed_target"
	"  FROM loyalty.coupon_redemption r"
	"  JOIN loyalty.coupon_campaign c ON c.program OPERATOR(pg_catalog.=) r.program"
	"                                AND c.campaign OPERATOR(pg_catalog.=) r.campaign"
	"  LEFT JOIN loyalty.order_earning o ON o.program OPERATOR(pg_catalog.=) r.program"
	"                                   AND o.order_id OPERATOR(pg_catalog.=) r.order_ref"
	"                                   AND o.member_id OPERATOR(pg_catalog.=) r.member_id"
	" WHERE r.program OPERATOR(pg_catalog.=) $1"
	"   AND r.redeemed_at OPERATOR(pg_catalog.>=) $2 AND r.redeemed_at OPERATOR(pg_catalog.<=) $3"
	"   AND (loyalty.coupon_rule_first_order(c.rule)"
	"        OR EXISTS (SELECT 1 FROM loyalty.referral_setting s"
	"                    WHERE s.program OPERATOR(pg_catalog.=) $1"
	"                      AND c.campaign OPERATOR(pg_catalog.=) ANY (ARRAY[s.referrer_campaign, s.referee_campaign])))"
	"   AND NOT (r.member_id OPERATOR(pg_catalog.=) ANY (" FRAUD_EXCLUDED "))"
	" ORDER BY r.campaign COLLATE pg_catalog.\"C\", r.member_id COLLATE pg_catalog.\"C\", r.redeemed_at, r.order_ref COLLATE pg_catalog.\"C\"",
	3, {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, true
};

typedef struct Redeemer
{
	char	   *member_id;
	List	   *orders;			/* order ids of its redemptions that are its orders */
	int64		points;
	int			parent;			/* union-find */
	int			size;
} Redeemer;

typedef struct CampaignSweep
{
	FraudRun   *run;
	MemoryContext cxt;			/* reset at each campaign */
	char	   *campaign;
	Redeemer   *redeemers;
	int			n;
	int			size;
	int32	   *first;			/* per share: a redeemer using it, -1: none yet */
} CampaignSweep;

static int
Root(Redeemer *r, int i)
{
	while (r[i].parent != i)
	{
		r[i].parent = r[r[i].parent].parent;
		i = r[i].parent;
	}
	return i;
}

static void
Unite(Redeemer *r, int a, int b)
{
	a = Root(r, a);
	b = Root(r, b);
	if (a == b)
		return;
	if (r[a].size < r[b].size)
	{
		int			t = a;

		a = b;
		b = t;
	}
	r[b].parent = a;
	r[a].size += r[b].size;
}

static void
FarmFlag(CampaignSweep *sw, int i)
{
	Redeemer   *r = sw->redeemers;
	int			root = Root(r, i);
	const char **others = palloc(sizeof(char *) * FRAUD_EVIDENCE_MEMBERS);
	int			nothers = 0;
	const char **orders = palloc(sizeof(char *) * Max(list_length(r[i].orders), 1));
	int			norders = 0;
	ListCell   *lc;
	StringInfoData ev;

	for (int k = 0; k < sw->n && nothers < FRAUD_EVIDENCE_MEMBERS; k++)
		if (k != i && Root(r, k) == root)
			others[nothers++] = r[k].member_id;
	foreach(lc, r[i].orders)
		orders[norders++] = lfirst(lc);
	FraudJsonStart(&ev);
	FraudJsonStrings(&ev, "orders", orders, norders);
	FraudJsonStrings(&ev, "members", others, nothers);
	FraudJsonInt(&ev, "member_count", r[root].size);
	FraudJsonText(&ev, "campaign", sw->campaign);
	FraudJsonEnd(&ev);
	FraudFlagAdd(sw->run, r[i].member_id, FR_COUPON_FARMING,
				 psprintf("campaign:%s", sw->campaign), &ev, r[i].points);
}

/* Groups a campaign's redeemers by the values they share; flags large groups. */
static void
CampaignEnd(CampaignSweep *sw)
{
	Redeemer   *r = sw->redeemers;
	List	   *touched = NIL;
	ListCell   *lc;

	if (sw->campaign == NULL)
		return;
	for (int i = 0; i < sw->n; i++)
	{
		int			nshares;
		const int32 *shares = FraudPrintsOfMember(sw->run, r[i].member_id, &nshares);

		for (int k = 0; k < nshares; k++)
		{
			if (!FraudShareLinks(sw->run, shares[k]))
				continue;
			if (sw->first[shares[k]] < 0)
			{
				sw->first[shares[k]] = i;
				touched = lappend_int(touched, shares[k]);
			}
			else
				Unite(r, sw->first[shares[k]], i);
		}
	}
	foreach(lc, touched)
		sw->first[lfirst_int(lc)] = -1;
	for (int i = 0; i < sw->n; i++)
		if (r[Root(r, i)].size >= sw->run->rules[FR_COUPON_FARMING].members)
			FarmFlag(sw, i);
	MemoryContextReset(sw->cxt);
	sw->campaign = NULL;
}

static void
RedemptionRow(const Datum *v, const bool *isnull, MemoryContext keep, void *arg)
{
	CampaignSweep *sw = arg;
	char	   *campaign = TextDatumGetCString(v[0]);
	char	   *member_id = TextDatumGetCString(v[1]);
	Redeemer   *r;
	MemoryContext row;

	if (sw->campaign == NULL || strcmp(sw->campaign, campaign) != 0)
	{
		CampaignEnd(sw);
		sw->campaign = MemoryContextStrdup(sw->cxt, campaign);
		sw->n = 0;
		sw->size = 64;
		sw->redeemers = MemoryContextAlloc(sw->cxt, sizeof(Redeemer) * sw->size);
	}
	if (sw->n == 0 || strcmp(sw->redeemers[sw->n - 1].member_id, member_id) != 0)
	{
		if (sw->n == sw->size)
		{
			sw->size *= 2;
			sw->redeemers = repalloc_huge(sw->redeemers, sizeof(Redeemer) * sw->size);
		}
		r = &sw->redeemers[sw->n];
		r->member_id = MemoryContextStrdup(sw->cxt, member_id);
		r->orders = NIL;
		r->points = 0;
		r->parent = sw->n;
		r->size = 1;
		sw->n++;
	}
	r = &sw->redeemers[sw->n - 1];
	if (isnull[3])
		return;					/* not an order of the member's */
	row = MemoryContextSwitchTo(sw->cxt);
	r->orders = lappend(r->orders, TextDatumGetCString(v[2]));
	MemoryContextSwitchTo(row);
	r->points += DatumGetInt64(v[3]);
}

/*
 * coupon_farming: redeemers in the period of one campaign with the
 * first_order option or the program's referral campaigns, linked by a
 * shared device, card, address (orders of the period), email or phone:
 * every member of a group of `members` or more, subject campaign:<code>,
 * evidence its redemptions' orders and the others of its group.
 */
void
FraudCouponFarming(FraudRun *run)
{
	CampaignSweep sw = {0};
	int32		nshares = FraudShareCount(run);
	Datum		args[3];

	if (!FRAUD_RULE_ON(run, FR_COUPON_FARMING))
		return;
	sw.run = run;
	sw.cxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty fraud campaign",
								   ALLOCSET_DEFAULT_SIZES);
	sw.first = palloc(sizeof(int32) * Max(nshares, 1));
	for (int32 i = 0; i < nshares; i++)
		sw.first[i] = -1;
	args[0] = CStringGetTextDatum(run->program);
	args[1] = TimestampTzGetDatum(run->since);
	args[2] = TimestampTzGetDatum(run->as_of);
	LoyaltyStream(&farmable_redemptions, args, NULL, RedemptionRow, &sw);
	CampaignEnd(&sw);
	MemoryContextDelete(sw.cxt);
}
