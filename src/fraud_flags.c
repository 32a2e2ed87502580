/*
 * fraud_flags.c
 *		The flags a run raises, written in bulk, and the holds they cause.
 *
 * Flags are collected as text (evidence as JSON text) and inserted
 * FRAUD_FLAG_BATCH at a time by one INSERT ... SELECT FROM unnest(...)
 * ON CONFLICT DO NOTHING: a flag of the same member, rule and subject is
 * never raised twice.  Rules whose subject depends on the period read
 * (a day, the period's first day) are also not raised again when a flag of
 * the same member and rule already holds one of the orders: a rerun over
 * an overlapping period finds nothing new in what it flagged before.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "cluster.h"
#include "fraud.h"
#include "spi_util.h"

#define FRAUD_FLAG_BATCH 10000

static LoyaltyQuery flag_insert = {
	"INSERT INTO loyalty.fraud_flag AS f (program, member_id, rule, subject, score, evidence,"
	"                                    raised_at, points_at_risk)"
	"SELECT $1, u.member_id, u.rule, u.subject, u.score::numeric, u.evidence::pg_catalog.jsonb, $2, u.points"
	"  FROM unnest($3::pg_catalog.text[], $4::pg_catalog.text[], $5::pg_catalog.text[],"
	"              $6::pg_catalog.float8[], $7::pg_catalog.text[], $8::pg_catalog.int8[])"
	"       AS u(member_id, rule, subject, score, evidence, points)"
	" WHERE NOT (pg_catalog.starts_with(u.subject, 'day:') OR pg_catalog.starts_with(u.subject, 'since:'))"
	"    OR NOT EXISTS (SELECT 1 FROM loyalty.fraud_flag o"
	"                    WHERE o.program OPERATOR(pg_catalog.=) $1"
	"                      AND o.member_id OPERATOR(pg_catalog.=) u.member_id"
	"                      AND o.rule OPERATOR(pg_catalog.=) u.rule"
	"                      AND (o.evidence OPERATOR(pg_catalog.->) 'orders') OPERATOR(pg_catalog.?|)"
	"                          ARRAY(SELECT pg_catalog.jsonb_array_elements_text("
	"                                  u.evidence::pg_catalog.jsonb OPERATOR(pg_catalog.->) 'orders')))"
	" ORDER BY u.member_id, u.rule, u.subject"
	" ON CONFLICT (program, member_id, rule, subject) DO NOTHING"
	" RETURNING f.member_id",
	8, {TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID,
	TEXTARRAYOID, INT8ARRAYOID}
};

/*
 * The same on a Citus cluster, which runs no correlated subquery beside
 * unnest(): the members' earlier flags are read first (a CTE that Citus
 * brings to the coordinator), and the rest runs there.  The INSERT is a
 * CTE too: Citus's INSERT ... SELECT with ON CONFLICT DO NOTHING RETURNING
 * counts the skipped rows, which SPI refuses ("consistency check on SPI
 * tuple count failed").
 */
static LoyaltyQuery flag_insert_cluster = {
	"WITH earlier AS MATERIALIZED ("
	"  SELECT o.member_id, o.rule, o.evidence OPERATOR(pg_catalog.->) 'orders' AS orders"
	"    FROM loyalty.fraud_flag o"
	"   WHERE o.program OPERATOR(pg_catalog.=) $1 AND o.member_id OPERATOR(pg_catalog.=) ANY ($3)),"
	" ins AS (INSERT INTO loyalty.fraud_flag AS f (program, member_id, rule, subject, score, evidence,"
	"                                    raised_at, points_at_risk)"
	"SELECT $1, u.member_id, u.rule, u.subject, u.score::numeric, u.evidence::pg_catalog.jsonb, $2, u.points"
	"  FROM unnest($3::pg_catalog.text[], $4::pg_catalog.text[], $5::pg_catalog.text[],"
	"              $6::pg_catalog.float8[], $7::pg_catalog.text[], $8::pg_catalog.int8[])"
	"       AS u(member_id, rule, subject, score, evidence, points)"
	" WHERE NOT (pg_catalog.starts_with(u.subject, 'day:') OR pg_catalog.starts_with(u.subject, 'since:'))"
	"    OR NOT EXISTS (SELECT 1 FROM earlier o"
	"                    WHERE o.member_id OPERATOR(pg_catalog.=) u.member_id"
	"                      AND o.rule OPERATOR(pg_catalog.=) u.rule"
	"                      AND o.orders OPERATOR(pg_catalog.?|)"
	"                          ARRAY(SELECT pg_catalog.jsonb_array_elements_text("
	"                                  u.evidence::pg_catalog.jsonb OPERATOR(pg_catalog.->) 'orders')))"
	" ORDER BY u.member_id, u.rule, u.subject"
	" ON CONFLICT (program, member_id, rule, subject) DO NOTHING"
	" RETURNING f.member_id)"
	"SELECT ins.member_id FROM ins",
	8, {TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID,
	TEXTARRAYOID, INT8ARRAYOID}
};

/*
 * Members with a new flag whose risk reached the program's threshold are
 * held (loyalty.hold_member, source fraud), in member order; not a member
 * never enrolled (an order without points, a referral's id) nor one
 * forgotten (hold_member refuses it), which would fail the whole pass.
 */
static LoyaltyQuery hold_risky = {
	"SELECT r.member_id, loyalty.hold_member($1, r.member_id, 'fraud',"
	"         pg_catalog.format('fraud risk %s reached the hold threshold %s', r.risk, r.threshold))"
	"  FROM (SELECT f.member_id, loyalty.combine_risk(pg_catalog.array_agg(f.score)) AS risk,"
	"               loyalty.hold_threshold_of($1) AS threshold"
	"          FROM loyalty.fraud_flag f"
	"         WHERE f.program OPERATOR(pg_catalog.=) $1 AND f.state OPERATOR(pg_catalog.=) 'open'"
	"           AND f.member_id OPERATOR(pg_catalog.=) ANY ($2)"
	"         GROUP BY f.member_id) r"
	" WHERE r.risk OPERATOR(pg_catalog.>=) r.threshold"
	"   AND EXISTS (SELECT 1 FROM loyalty.member m"
	"                WHERE m.program OPERATOR(pg_catalog.=) $1 AND m.member_id OPERATOR(pg_catalog.=) r.member_id"
	"                  AND m.status OPERATOR(pg_catalog.<>) 'forgotten')"
	" ORDER BY r.member_id",
	2, {TEXTOID, TEXTARRAYOID}, true
};

/*
 * On a Citus cluster the holds are not taken inside the query (Citus would
 * run hold_member on the workers, inside their shard queries): each node's
 * open scores come to the coordinator (CTEs), which computes the risks and
 * holds the risky members one by one.
 */
static LoyaltyQuery risky_cluster = {
	"WITH s AS MATERIALIZED ("
	"  SELECT f.member_id, pg_catalog.array_agg(f.score) AS scores FROM loyalty.fraud_flag f"
	"   WHERE f.program OPERATOR(pg_catalog.=) $1 AND f.state OPERATOR(pg_catalog.=) 'open'"
	"     AND f.member_id OPERATOR(pg_catalog.=) ANY ($2)"
	"   GROUP BY f.member_id),"
	" m AS MATERIALIZED ("
	"  SELECT m.member_id FROM loyalty.member m"
	"   WHERE m.program OPERATOR(pg_catalog.=) $1 AND m.member_id OPERATOR(pg_catalog.=) ANY ($2)"
	"     AND m.status OPERATOR(pg_catalog.<>) 'forgotten')"
	"SELECT r.member_id,"
	"       pg_catalog.format('fraud risk %s reached the hold threshold %s', r.risk, r.threshold)"
	"  FROM (SELECT s.member_id, loyalty.combine_risk(s.scores) AS risk, $3 AS threshold"
	"          FROM s JOIN m ON m.member_id OPERATOR(pg_catalog.=) s.member_id) r"
	" WHERE r.risk OPERATOR(pg_catalog.>=) r.threshold"
	" ORDER BY r.member_id",
	3, {TEXTOID, TEXTARRAYOID, NUMERICOID}, true
};

/*
 * The threshold, read on the coordinator: when the members are on one node
 * Citus sends the whole query there, where a function may not query.
 */
static LoyaltyQuery threshold_cluster = {
	"SELECT loyalty.hold_threshold_of($1)", 1, {TEXTOID}
};

static LoyaltyQuery hold_one = {
	"SELECT loyalty.hold_member($1, $2, 'fraud', $3)",
	3, {TEXTOID, TEXTOID, TEXTOID}
};

void
FraudFlagsInit(FraudFlags *flags)
{
	memset(flags, 0, sizeof(*flags));
	flags->size = 1024;
	flags->member = palloc(sizeof(Datum) * flags->size);
	flags->rule = palloc(sizeof(Datum) * flags->size);
	flags->subject = palloc(sizeof(Datum) * flags->size);
	flags->score = palloc(sizeof(Datum) * flags->size);
	flags->evidence = palloc(sizeof(Datum) * flags->size);
	flags->points = palloc(sizeof(Datum) * flags->size);
	flags->cxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty fraud flags",
									   ALLOCSET_DEFAULT_SIZES);
	flags->held_size = 1024;
	flags->held = palloc(sizeof(Datum) * flags->held_size);
}

static void
Grow(Datum **array, int size)
{
	*array = repalloc_huge(*array, sizeof(Datum) * size);
}

/*
 * Queues a flag.  The flags of a streamed source wait until it is read
 * (no statement may run meanwhile); the others are written every
 * FRAUD_FLAG_BATCH flags by the caller's FraudFlagsFlush.
 */
void
FraudFlagAdd(FraudRun *run, const char *member_id, FraudRuleId rule, const char *subject,
			 StringInfo evidence, int64 points_at_risk)
{
	FraudFlags *flags = &run->flags;
	MemoryContext old = MemoryContextSwitchTo(flags->cxt);
	int			i;

	if (flags->n == flags->size)
	{
		flags->size *= 2;
		Grow(&flags->member, flags->size);
		Grow(&flags->rule, flags->size);
		Grow(&flags->subject, flags->size);
		Grow(&flags->score, flags->size);
		Grow(&flags->evidence, flags->size);
		Grow(&flags->points, flags->size);
	}
	i = flags->n++;
	flags->member[i] = CStringGetTextDatum(member_id);
	flags->rule[i] = CStringGetTextDatum(FraudRuleNames[rule]);
	flags->subject[i] = CStringGetTextDatum(subject);
	flags->score[i] = Float8GetDatum(run->rules[rule].score);
	flags->evidence[i] = PointerGetDatum(cstring_to_text_with_len(evidence->data, evidence->len));
	flags->points[i] = Int64GetDatum(Max(points_at_risk, 0));
	MemoryContextSwitchTo(old);
}

/* Keeps the members of new flags for the hold step. */
static void
KeepNewFlagMembers(FraudFlags *flags, MemoryContext keep)
{
	MemoryContext old = MemoryContextSwitchTo(keep);

	for (uint64 row = 0; row < SPI_processed; row++)
	{
		if (flags->nheld == flags->held_size)
		{
			flags->held_size *= 2;
			Grow(&flags->held, flags->held_size);
		}
		flags->held[flags->nheld++] = datumCopy(LoyaltyGetDatum(row, 1), false, -1);
	}
	MemoryContextSwitchTo(old);
}

/* Writes the queued flags, FRAUD_FLAG_BATCH per statement. */
void
FraudFlagsFlush(FraudRun *run)
{
	FraudFlags *flags = &run->flags;
	MemoryContext keep = GetMemoryChunkContext(flags->held);

	for (int from = 0; from < flags->n; from += FRAUD_FLAG_BATCH)
	{
		int			n = Min(FRAUD_FLAG_BATCH, flags->n - from);
		Datum		args[8];

		args[0] = CStringGetTextDatum(run->program);
		args[1] = TimestampTzGetDatum(run->as_of);
		args[2] = LoyaltyArray(flags->member + from, NULL, n, TEXTOID);
		args[3] = LoyaltyArray(flags->rule + from, NULL, n, TEXTOID);
		args[4] = LoyaltyArray(flags->subject + from, NULL, n, TEXTOID);
		args[5] = LoyaltyArray(flags->score + from, NULL, n, FLOAT8OID);
		args[6] = LoyaltyArray(flags->evidence + from, NULL, n, TEXTOID);
		args[7] = LoyaltyArray(flags->points + from, NULL, n, INT8OID);
		if (LoyaltyDistributed())
			LoyaltyRun(&flag_insert_cluster, args, NULL, SPI_OK_SELECT);
		else
			LoyaltyRun(&flag_insert, args, NULL, SPI_OK_INSERT_RETURNING);
		flags->inserted += SPI_processed;
		KeepNewFlagMembers(flags, keep);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	flags->n = 0;
	MemoryContextReset(flags->cxt);
}

/*
 * The cluster form of hold_risky: reads the risky members, holds each;
 * leaves SPI_processed at the number held.
 */
static void
HoldRiskyOneByOne(Datum *args)
{
	SPITupleTable *risky;
	uint64		n;
	Datum		query[3];

	LoyaltyRun(&threshold_cluster, args, NULL, SPI_OK_SELECT);
	query[0] = args[0];
	query[1] = args[1];
	query[2] = LoyaltyGetDatum(0, 1);
	LoyaltyRun(&risky_cluster, query, NULL, SPI_OK_SELECT);
	risky = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		Datum		hold[3];

		SPI_tuptable = risky;
		hold[0] = args[0];
		hold[1] = LoyaltyGetDatum(i, 1);
		hold[2] = LoyaltyGetDatum(i, 2);
		LoyaltyRun(&hold_one, hold, NULL, SPI_OK_SELECT);
	}
	SPI_processed = n;
}

/* Holds the members of new flags whose risk reached the threshold. */
void
FraudHoldRisky(FraudRun *run)
{
	FraudFlags *flags = &run->flags;
	Datum		args[2];

	if (flags->nheld == 0)
		return;
	args[0] = CStringGetTextDatum(run->program);
	args[1] = LoyaltyArray(flags->held, NULL, flags->nheld, TEXTOID);
	if (LoyaltyDistributed())
		HoldRiskyOneByOne(args);
	else
		LoyaltyRun(&hold_risky, args, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(NOTICE,
				(errmsg("loyalty: fraud_check %s: " UINT64_FORMAT " members at or above the hold threshold",
						run->program, SPI_processed)));
}
