/*
 * health.c
 *		Records what loyalty.health shows: a batch job's run (in
 *		loyalty.job_run, through loyalty.record_job_run) and an order event
 *		the accrual trigger ignores (counted in loyalty.ignored_event).
 *
 * Both run inside the caller's transaction: a job that fails leaves no
 * row (its transaction is gone), so loyalty.health shows the last run that
 * finished; loyalty.run_nightly_jobs records failures, catching them.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "cluster.h"
#include "health.h"
#include "spi_util.h"

static LoyaltyQuery job_run_record = {
	"SELECT loyalty.record_job_run($1, $2, $3, $4, true, $5)",
	5, {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID, TEXTOID}
};

/*
 * One event per order (or relation) and reason is a row; a repeat only
 * counts.  So a shop that keeps updating orders loyalty never saw adds no
 * rows, and concurrent events of different orders never wait on each other.
 */
static LoyaltyQuery ignored_event_count = {
	"INSERT INTO loyalty.ignored_event AS i (program, reason, subject)"
	" VALUES ($1, $2, $3)"
	" ON CONFLICT ON CONSTRAINT ignored_event_pkey DO UPDATE"
	"   SET events = i.events OPERATOR(pg_catalog.+) 1, last_at = pg_catalog.now()",
	3, {TEXTOID, TEXTOID, TEXTOID}
};

/*
 * Records a finished run of job (over program, NULL: every program) that
 * started at started_at and did rows (its result).  Needs SPI.
 */
void
JobRunRecord(const char *job, const char *program, TimestampTz started_at, int64 rows,
			 const char *detail)
{
	Datum		args[5];
	char		nulls[5] = "     ";

	args[0] = CStringGetTextDatum(job);
	args[1] = LoyaltyTextOrNull(program, &nulls[1]);
	args[2] = TimestampTzGetDatum(started_at);
	args[3] = Int64GetDatum(rows);
	args[4] = LoyaltyTextOrNull(detail, &nulls[4]);
	LoyaltyRun(&job_run_record, args, nulls, SPI_OK_SELECT);
}

/*
 * On a Citus cluster ignored_event is a reference table: written through the
 * coordinator, whose Citus wants the time as a value, not a function of the
 * update.  A worker cannot write it (see IgnoredEventCount).
 */
static LoyaltyQuery ignored_event_count_cluster = {
	"INSERT INTO loyalty.ignored_event AS i (program, reason, subject, first_at, last_at)"
	" VALUES ($1, $2, $3, $4, $4)"
	" ON CONFLICT ON CONSTRAINT ignored_event_pkey DO UPDATE"
	"   SET events = i.events OPERATOR(pg_catalog.+) 1, last_at = excluded.last_at",
	4, {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

/*
 * Counts an event the trigger ignored for reason; subject names what.  Needs
 * SPI.  On a Citus worker (a trigger on a shard) nothing is counted: a
 * reference table is written from the coordinator only.
 */
void
IgnoredEventCount(const char *program, const char *reason, const char *subject)
{
	Datum		args[4];

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(reason);
	args[2] = CStringGetTextDatum(subject != NULL ? subject : "");
	if (!LoyaltyDistributed())
		LoyaltyRun(&ignored_event_count, args, NULL, SPI_OK_INSERT);
	else if (!LoyaltyOnWorker())
	{
		args[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		LoyaltyRun(&ignored_event_count_cluster, args, NULL, SPI_OK_INSERT);
	}
}
