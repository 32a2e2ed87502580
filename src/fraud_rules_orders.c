/*
 * fraud_rules_orders.c
 *		The rules over one member's orders in the period, sorted by time:
 *		velocity, small_payment_burst (sliding windows), geo_mismatch and
 *		refund_ratio (shares).  Evidence is built only for a flag.
 */
#include "postgres.h"

#include "fraud.h"

/* Sum of the points not yet reversed of orders[which[i]]. */
static int64
PointsLeft(const FraudOrder *orders, const int *which, int n)
{
	int64		points = 0;

	for (int i = 0; i < n; i++)
		points += orders[which[i]].points_left;
	return points;
}

/* Raises the burst flag of one day: the orders of its windows. */
static void
BurstFlag(FraudRun *run, FraudRuleId rule, const char *member_id, const char *day,
		  const FraudOrder *orders, const int *which, int n, int most)
{
	StringInfoData ev;

	FraudJsonStart(&ev);
	FraudJsonOrders(&ev, orders, which, n);
	FraudJsonInt(&ev, "most_in_window", most);
	FraudJsonNumber(&ev, "minutes", run->rules[rule].minutes);
	if (rule == FR_SMALL_BURST)
		FraudJsonNumber(&ev, "max_amount", run->rules[rule].max_amount);
	FraudJsonEnd(&ev);
	FraudFlagAdd(run, member_id, rule, psprintf("day:%s", day), &ev,
				 PointsLeft(orders, which, n));
}

/*
 * Windows of `minutes` from each order (by time): an order whose window
 * holds at least `orders` of the candidates starts a burst.  The bursts
 * starting on one day (program time zone) make one flag, subject day:D,
 * with every order of their windows.  cand lists the candidate orders.
 */
static void
Bursts(FraudRun *run, FraudRuleId rule, const char *member_id, const FraudOrder *orders,
	   const int *cand, int n)
{
	const FraudRule *r = &run->rules[rule];
	int64		span = (int64) (r->minutes * USECS_PER_MINUTE);
	int		   *ev = palloc(sizeof(int) * n);
	int			nev = 0;
	int			covered = -1;	/* last candidate already in ev */
	int			most = 0;
	char	   *day = NULL;

	if (n < r->orders)
		return;
	for (int i = 0, j = 0; i < n; i++)
	{
		char	   *start_day;

		if (j < i)
			j = i;
		while (j + 1 < n && orders[cand[j + 1]].at - orders[cand[i]].at <= span)
			j++;
		if (j - i + 1 < r->orders)
			continue;
		start_day = FraudDay(run, orders[cand[i]].at);
		if (day != NULL && strcmp(day, start_day) != 0)
		{
			BurstFlag(run, rule, member_id, day, orders, ev, nev, most);
			nev = 0;
			most = 0;
		}
		day = start_day;
		most = Max(most, j - i + 1);
		for (int k = Max(i, covered + 1); k <= j; k++)
			ev[nev++] = cand[k];
		covered = Max(covered, j);
	}
	if (day != NULL)
		BurstFlag(run, rule, member_id, day, orders, ev, nev, most);
}

static void
Velocity(FraudRun *run, const char *member_id, const FraudOrder *orders, int n)
{
	int		   *all = palloc(sizeof(int) * n);

	for (int i = 0; i < n; i++)
		all[i] = i;
	Bursts(run, FR_VELOCITY, member_id, orders, all, n);
}

/* Bursts among the orders below max_amount (in base currency). */
static void
SmallBurst(FraudRun *run, const char *member_id, const FraudOrder *orders, int n)
{
	int		   *small = palloc(sizeof(int) * n);
	int			nsmall = 0;

	for (int i = 0; i < n; i++)
		if (orders[i].has_base && orders[i].base < run->rules[FR_SMALL_BURST].max_amount)
			small[nsmall++] = i;
	Bursts(run, FR_SMALL_BURST, member_id, orders, small, nsmall);
}

/*
 * At least `orders` orders whose IP country differs from the billing
 * country, and at least `share` of the orders where both are known.
 */
static void
GeoMismatch(FraudRun *run, const char *member_id, const FraudOrder *orders, int n)
{
	const FraudRule *r = &run->rules[FR_GEO_MISMATCH];
	int		   *bad = palloc(sizeof(int) * n);
	int			nbad = 0;
	int			known = 0;
	StringInfoData ev;

	for (int i = 0; i < n; i++)
	{
		known += orders[i].geo_known;
		if (orders[i].geo_mismatch)
			bad[nbad++] = i;
	}
	if (nbad < r->orders || (double) nbad / known < r->share)
		return;
	FraudJsonStart(&ev);
	FraudJsonOrders(&ev, orders, bad, nbad);
	FraudJsonInt(&ev, "mismatched", nbad);
	FraudJsonInt(&ev, "known", known);
	FraudJsonEnd(&ev);
	FraudFlagAdd(run, member_id, FR_GEO_MISMATCH,
				 psprintf("day:%s", FraudDay(run, orders[bad[0]].at)), &ev,
				 PointsLeft(orders, bad, nbad));
}

/*
 * At least `orders` orders of known amount, and refunded / ordered (in
 * base currency, a closed order counting as fully refunded) at least
 * `ratio`.  The evidence is the refunded orders.
 */
static void
RefundRatio(FraudRun *run, const char *member_id, const FraudOrder *orders, int n)
{
	const FraudRule *r = &run->rules[FR_REFUND_RATIO];
	int		   *refunded = palloc(sizeof(int) * n);
	int			nrefunded = 0;
	int			counted = 0;
	double		ordered_sum = 0;
	double		refunded_sum = 0;
	StringInfoData ev;

	for (int i = 0; i < n; i++)
	{
		if (!orders[i].has_base)
			continue;
		counted++;
		ordered_sum += orders[i].base;
		refunded_sum += orders[i].refunded;
		if (orders[i].refunded > 0)
			refunded[nrefunded++] = i;
	}
	if (counted < r->orders || ordered_sum <= 0 || refunded_sum / ordered_sum < r->ratio)
		return;
	FraudJsonStart(&ev);
	FraudJsonOrders(&ev, orders, refunded, nrefunded);
	FraudJsonInt(&ev, "orders_counted", counted);
	FraudJsonNumber(&ev, "ordered", ordered_sum);
	FraudJsonNumber(&ev, "refunded", refunded_sum);
	FraudJsonNumber(&ev, "ratio", refunded_sum / ordered_sum);
	FraudJsonEnd(&ev);
	FraudFlagAdd(run, member_id, FR_REFUND_RATIO,
				 psprintf("since:%s", FraudDay(run, orders[0].at)), &ev,
				 PointsLeft(orders, refunded, nrefunded));
}

/* Every enabled per-member rule over the member's orders (sorted by time). */
void
FraudMemberOrderRules(FraudRun *run, const char *member_id, const FraudOrder *orders, int n)
{
	if (FRAUD_RULE_ON(run, FR_VELOCITY))
		Velocity(run, member_id, orders, n);
	if (FRAUD_RULE_ON(run, FR_SMALL_BURST))
		SmallBurst(run, member_id, orders, n);
	if (FRAUD_RULE_ON(run, FR_GEO_MISMATCH))
		GeoMismatch(run, member_id, orders, n);
	if (FRAUD_RULE_ON(run, FR_REFUND_RATIO))
		RefundRatio(run, member_id, orders, n);
}
