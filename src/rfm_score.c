/*
 * rfm_score.c
 *		loyalty.score_rfm(): recency, frequency and monetary scores for
 *		every member of a program, in one pass.
 *
 * The counted orders per member in the window come from the activity the
 * trigger keeps (one row per member, see activity.c; old days are folded
 * first); ranks and quintile scores are computed here in C, the segment
 * looked up in a 125-entry table built once per pass; rfm_store.c writes
 * what changed.
 *
 * score = 1 + floor(5 * (rank - 1) / n), rank being the 1-based rank() of
 * the member's value ordered worst first (oldest last order, fewest orders,
 * least spend), so ties share a score and the best get 5.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "activity.h"
#include "loyalty.h"
#include "program.h"
#include "rfm.h"
#include "rfm_score.h"
#include "spi_util.h"

/* Counted orders per member in the window, from the activity the trigger keeps. */
static LoyaltyQuery rfm_aggregates = {
	"SELECT member_id, floor(extract(epoch FROM $2 - last_order_at) / 86400)::integer,"
	"       orders::integer, net_spend, last_order_at"
	"  FROM loyalty.member_activity($1, $2 - $3, $2)"
	" WHERE net_spend > 0",
	3, {TEXTOID, TIMESTAMPTZOID, INTERVALOID}
};

/* The segment of every one of the 125 values, in r, f, m order. */
static LoyaltyQuery rfm_segments = {
	"SELECT loyalty.rfm_segment(loyalty.rfm(r, f, m), $1)"
	"  FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m"
	" ORDER BY r, f, m",
	1, {TEXTOID}
};

typedef int (*RfmOrder) (const RfmMember *a, const RfmMember *b);

/* Worst first: the oldest last order, the fewest orders, the least spend. */
static int
RecencyWorstFirst(const RfmMember *a, const RfmMember *b)
{
	return (a->recency_days < b->recency_days) - (a->recency_days > b->recency_days);
}

static int
FrequencyWorstFirst(const RfmMember *a, const RfmMember *b)
{
	return (a->frequency > b->frequency) - (a->frequency < b->frequency);
}

static int
MonetaryWorstFirst(const RfmMember *a, const RfmMember *b)
{
	return (a->monetary_e4 > b->monetary_e4) - (a->monetary_e4 < b->monetary_e4);
}

/* Spend of more than 10^14 in base currency no longer fits: compare as numeric. */
static int
MonetaryWorstFirstExact(const RfmMember *a, const RfmMember *b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, a->monetary, b->monetary));
}

/* monetary x 10^4 as int64 (exact: it has 4 decimals); false when it does not fit. */
static bool
MonetaryScaled(Datum monetary, int64 *out)
{
	static Datum limit = (Datum) 0;
	Datum		scaled;

	if (limit == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		limit = DirectFunctionCall1(int8_numeric, Int64GetDatum(PG_INT64_MAX / 10000));
		MemoryContextSwitchTo(old);
	}
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, monetary, limit)) >= 0)
		return false;
	scaled = DirectFunctionCall2(numeric_mul, monetary,
								 DirectFunctionCall1(int8_numeric, Int64GetDatum(10000)));
	*out = DatumGetInt64(DirectFunctionCall1(numeric_int8, scaled));
	return true;
}

static int
CompareByOrder(const void *a, const void *b, void *arg)
{
	return ((RfmOrder) arg) (*(RfmMember *const *) a, *(RfmMember *const *) b);
}

/*
 * Scores one dimension: sorts the members worst first and gives each
 * 1 + floor(5 * (rank - 1) / n), ties sharing the rank of the first of them.
 */
static void
ScoreDimension(RfmMember **sorted, int n, RfmOrder order, size_t score_offset)
{
	int			rank = 1;

	qsort_arg(sorted, n, sizeof(RfmMember *), CompareByOrder, (void *) order);
	for (int i = 0; i < n; i++)
	{
		if (i > 0 && order(sorted[i - 1], sorted[i]) != 0)
			rank = i + 1;
		*(int *) ((char *) sorted[i] + score_offset) = 1 + (int) ((5 * (int64) (rank - 1)) / n);
	}
}

/* The 125 segments of the program's map (NULL where no rule matches). */
static Datum *
SegmentTable(const char *program)
{
	Datum	   *segments = palloc0(sizeof(Datum) * 125);

	LoyaltyRun(&rfm_segments, (Datum[]) {CStringGetTextDatum(program)}, NULL, SPI_OK_SELECT);
	for (int i = 0; i < 125; i++)
		segments[i] = LoyaltyIsNull(i, 1) ? CStringGetTextDatum("") :
			datumCopy(LoyaltyGetDatum(i, 1), false, -1);
	return segments;
}

PG_FUNCTION_INFO_V1(loyalty_score_rfm);
/* loyalty.score_rfm(program, as_of, window) returns the members scored. */
Datum
loyalty_score_rfm(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	TimestampTz as_of = LoyaltyTimestampArg(fcinfo, 1, "as_of");
	Interval   *window;
	LoyaltyProgram prog;
	RfmMember  *members;
	RfmMember **sorted;
	Datum	   *segments;
	Datum		args[3];
	int			n;
	int64		written;
	bool		exact = false;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("window must not be null")));
	window = PG_GETARG_INTERVAL_P(2);
	if (window->month < 0 || window->day < 0 || window->time < 0 ||
		(window->month == 0 && window->day == 0 && window->time == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window must be a positive interval, not %s",
						DatumGetCString(DirectFunctionCall1(interval_out, PointerGetDatum(window)))),
				 errhint("Use for example '365 days' or '1 year'.")));

	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	segments = SegmentTable(code);
	ActivityFoldBefore(code, DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
																	  TimestampTzGetDatum(as_of),
																	  PointerGetDatum(window))));

	args[0] = CStringGetTextDatum(code);
	args[1] = TimestampTzGetDatum(as_of);
	args[2] = PointerGetDatum(window);
	LoyaltyRun(&rfm_aggregates, args, NULL, SPI_OK_SELECT);
	n = (int) SPI_processed;
	members = palloc(sizeof(RfmMember) * Max(n, 1));
	sorted = palloc(sizeof(RfmMember *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		members[i].member_id = LoyaltyGetDatum(i, 1);
		RfmIdBytes(members[i].member_id, &members[i].id, &members[i].id_len);
		members[i].recency_days = LoyaltyGetInt32(i, 2);
		members[i].frequency = LoyaltyGetInt32(i, 3);
		members[i].monetary = LoyaltyGetDatum(i, 4);
		members[i].last_order_at = DatumGetTimestampTz(LoyaltyGetDatum(i, 5));
		if (!MonetaryScaled(members[i].monetary, &members[i].monetary_e4))
			exact = true;
		sorted[i] = &members[i];
	}
	ereport(NOTICE,
			(errmsg("loyalty: score_rfm %s: %d members with orders in the window", code, n)));

	ScoreDimension(sorted, n, RecencyWorstFirst, offsetof(RfmMember, r));
	ScoreDimension(sorted, n, FrequencyWorstFirst, offsetof(RfmMember, f));
	ScoreDimension(sorted, n, exact ? MonetaryWorstFirstExact : MonetaryWorstFirst,
				   offsetof(RfmMember, m));
	CHECK_FOR_INTERRUPTS();

	written = RfmStore(code, as_of, window, members, n, segments);
	ereport(NOTICE,
			(errmsg("loyalty: score_rfm %s: " INT64_FORMAT " score rows written", code, written)));
	SPI_finish();
	PG_RETURN_INT64(n);
}
