/*
 * rfm_score.c
 *		loyalty.score_rfm(): recency, frequency and monetary scores for
 *		every member of a program, in one pass.
 *
 * The counted orders per member in the window come from the activity the
 * trigger keeps (one row per member, see activity.c; old days are folded
 * first); ranks and quintile scores are computed here in C (sorted int64
 * keys), the segment looked up in a 125-entry table built once per pass;
 * rfm_store.c compares with what the last pass stored and writes what
 * changed.
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
#include "cluster.h"
#include "health.h"
#include "loyalty.h"
#include "program.h"
#include "rfm.h"
#include "rfm_score.h"
#include "spi_util.h"

/* Counted orders per member in the window, from the activity the trigger keeps. */
static LoyaltyQuery rfm_window = {
	"SELECT member_id,"
	"       pg_catalog.floor(extract(epoch FROM $2 OPERATOR(pg_catalog.-) last_order_at)"
	"                        OPERATOR(pg_catalog./) 86400)::integer,"
	"       orders::integer, net_spend, last_order_at"
	"  FROM loyalty.member_activity($1, $2 OPERATOR(pg_catalog.-) $3, $2)"
	" WHERE net_spend OPERATOR(pg_catalog.>) 0",
	3, {TEXTOID, TIMESTAMPTZOID, INTERVALOID}
};

/*
 * The same on a Citus cluster: every node's members come to the
 * coordinator, which ranks them all here, so the quintiles are the global
 * ranks, exactly as on one node.
 */
static LoyaltyQuery rfm_window_cluster = {
	"SELECT member_id,"
	"       pg_catalog.floor(extract(epoch FROM $2 OPERATOR(pg_catalog.-) last_order_at)"
	"                        OPERATOR(pg_catalog./) 86400)::integer,"
	"       orders::integer, net_spend, last_order_at"
	"  FROM loyalty.member_activity_cluster($1, $2 OPERATOR(pg_catalog.-) $3, $2)"
	" WHERE net_spend OPERATOR(pg_catalog.>) 0",
	3, {TEXTOID, TIMESTAMPTZOID, INTERVALOID}
};

/* Its columns. */
enum
{
	W_MEMBER, W_RECENCY, W_FREQUENCY, W_MONETARY, W_LAST_ORDER, W_COLUMNS
};

/* The segment of every one of the 125 values, in r, f, m order. */
static LoyaltyQuery rfm_segments = {
	"SELECT loyalty.rfm_segment(loyalty.rfm(r, f, m), $1)"
	"  FROM pg_catalog.generate_series(1, 5) r, pg_catalog.generate_series(1, 5) f, pg_catalog.generate_series(1, 5) m"
	" ORDER BY r, f, m",
	1, {TEXTOID}
};

/* A member's key and its place in the members array, sorted by key for ranking. */
typedef struct RankedKey
{
	int64		key;
	int			member;
} RankedKey;

#define ST_SORT sort_ranked_keys
#define ST_ELEMENT_TYPE RankedKey
#define ST_COMPARE(a, b) (((a)->key > (b)->key) - ((a)->key < (b)->key))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* A member's value as a key that grows with the better: more recent, more orders, more spend. */
typedef int64 (*RfmKey) (const RfmMember *m);

static int64
RecencyKey(const RfmMember *m)
{
	return -(int64) m->recency_days;
}

static int64
FrequencyKey(const RfmMember *m)
{
	return m->frequency;
}

static int64
MonetaryKey(const RfmMember *m)
{
	return m->monetary_e4;
}

static void
SetScore(RfmMember *m, size_t score_offset, int64 rank, int n)
{
	*(int *) ((char *) m + score_offset) = 1 + (int) ((5 * (rank - 1)) / n);
}

/*
 * Scores one dimension: 1 + floor(5 * (rank - 1) / n), rank being 1 + the
 * number of members with a worse value, so ties share the rank of the
 * first of them (SQL's rank() ordered worst first).
 */
static void
ScoreDimension(RfmMember *members, int n, RfmKey key, size_t score_offset)
{
	RankedKey  *sorted = palloc(sizeof(RankedKey) * Max(n, 1));
	int			rank = 1;

	for (int i = 0; i < n; i++)
	{
		sorted[i].key = key(&members[i]);
		sorted[i].member = i;
	}
	sort_ranked_keys(sorted, n);
	for (int i = 0; i < n; i++)
	{
		if (i > 0 && sorted[i].key != sorted[i - 1].key)
			rank = i + 1;
		SetScore(&members[sorted[i].member], score_offset, rank, n);
	}
	pfree(sorted);
}

static int
MonetaryCompare(const void *a, const void *b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, (*(RfmMember *const *) a)->monetary,
											 (*(RfmMember *const *) b)->monetary));
}

/* The monetary dimension when some spend (over 10^14) does not fit a key: as numeric. */
static void
ScoreMonetaryExact(RfmMember *members, int n)
{
	RfmMember **sorted = palloc(sizeof(RfmMember *) * Max(n, 1));
	int			rank = 1;

	for (int i = 0; i < n; i++)
		sorted[i] = &members[i];
	qsort(sorted, n, sizeof(RfmMember *), MonetaryCompare);
	for (int i = 0; i < n; i++)
	{
		if (i > 0 && MonetaryCompare(&sorted[i - 1], &sorted[i]) != 0)
			rank = i + 1;
		SetScore(sorted[i], offsetof(RfmMember, m), rank, n);
	}
	pfree(sorted);
}

/* monetary x 10^4 as int64 (exact: it has 4 decimals); false when it does not fit. */
static bool
MonetaryScaled(Datum monetary, int64 *out)
{
	static Datum limit = (Datum) 0;
	static Datum scale = (Datum) 0;

	if (limit == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		limit = DirectFunctionCall1(int8_numeric, Int64GetDatum(PG_INT64_MAX / 10000));
		scale = DirectFunctionCall1(int8_numeric, Int64GetDatum(10000));
		MemoryContextSwitchTo(old);
	}
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, monetary, limit)) >= 0)
		return false;
	*out = DatumGetInt64(DirectFunctionCall1(numeric_int8,
											 DirectFunctionCall2(numeric_mul, monetary, scale)));
	return true;
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

/* The members read so far. */
typedef struct MemberReader
{
	RfmMember  *members;
	int			n;
	int			size;
	bool		exact;			/* some spend does not fit monetary_e4 */
} MemberReader;

/* A row of rfm_window: a scored member's figures (values copied). */
static void
ReadMember(const Datum *v, const bool *isnull, MemoryContext keep, void *arg)
{
	MemberReader *r = (MemberReader *) arg;
	RfmMember  *m;
	MemoryContext row;

	if (r->n == r->size)
	{
		r->size *= 2;
		r->members = repalloc_huge(r->members, sizeof(RfmMember) * r->size);
	}
	m = &r->members[r->n++];
	row = MemoryContextSwitchTo(keep);
	m->member_id = datumCopy(v[W_MEMBER], false, -1);
	m->monetary = datumCopy(v[W_MONETARY], false, -1);
	MemoryContextSwitchTo(row);
	m->recency_days = DatumGetInt32(v[W_RECENCY]);
	m->frequency = DatumGetInt32(v[W_FREQUENCY]);
	m->last_order_at = DatumGetTimestampTz(v[W_LAST_ORDER]);
	if (!MonetaryScaled(m->monetary, &m->monetary_e4))
		r->exact = true;
	if (r->n % 100000 == 0)
		CHECK_FOR_INTERRUPTS();
}

/* Every member with orders in the window. */
static RfmMember *
ReadMembers(Datum *args, int *n, bool *exact)
{
	MemberReader r = {palloc(sizeof(RfmMember) * 1024), 0, 1024, false};

	LoyaltyStream(LoyaltyDistributed() ? &rfm_window_cluster : &rfm_window, args, NULL, ReadMember, &r);
	*n = r.n;
	*exact = r.exact;
	return r.members;
}

PG_FUNCTION_INFO_V1(loyalty_score_rfm);
/* loyalty.score_rfm(program, as_of, lookback) returns the members scored. */
Datum
loyalty_score_rfm(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	TimestampTz as_of = LoyaltyTimestampArg(fcinfo, 1, "as_of");
	Interval   *lookback;
	LoyaltyProgram prog;
	RfmMember  *members;
	Datum	   *segments;
	Datum		args[3];
	int			n;
	int64		written;
	bool		exact;
	TimestampTz started = GetCurrentTimestamp();

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("lookback must not be null")));
	lookback = PG_GETARG_INTERVAL_P(2);
	if (lookback->month < 0 || lookback->day < 0 || lookback->time < 0 ||
		(lookback->month == 0 && lookback->day == 0 && lookback->time == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lookback must be a positive interval, not %s",
						DatumGetCString(DirectFunctionCall1(interval_out, PointerGetDatum(lookback)))),
				 errhint("Use for example '365 days' or '1 year'.")));

	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	segments = SegmentTable(code);
	ActivityFoldBefore(code, DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
																	  TimestampTzGetDatum(as_of),
																	  PointerGetDatum(lookback))));

	args[0] = CStringGetTextDatum(code);
	args[1] = TimestampTzGetDatum(as_of);
	args[2] = PointerGetDatum(lookback);
	members = ReadMembers(args, &n, &exact);
	ereport(NOTICE,
			(errmsg("loyalty: score_rfm %s: %d members with orders in the window", code, n)));

	ScoreDimension(members, n, RecencyKey, offsetof(RfmMember, r));
	ScoreDimension(members, n, FrequencyKey, offsetof(RfmMember, f));
	if (exact)
		ScoreMonetaryExact(members, n);
	else
		ScoreDimension(members, n, MonetaryKey, offsetof(RfmMember, m));
	CHECK_FOR_INTERRUPTS();
	written = RfmStore(code, as_of, lookback, members, n, segments);
	ereport(NOTICE,
			(errmsg("loyalty: score_rfm %s: " INT64_FORMAT " score rows written", code, written)));
	JobRunRecord("score_rfm", code, started, n,
				 psprintf("as_of %s: %d members scored", timestamptz_to_str(as_of), n));
	SPI_finish();
	PG_RETURN_INT64(n);
}
