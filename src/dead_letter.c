/*
 * dead_letter.c
 *		Order events kept aside until the program's configuration is fixed.
 *
 * The accrual trigger never fails an order insert over loyalty
 * configuration: it writes the event here with the reason and raises a
 * WARNING.  loyalty.retry_dead_letters() replays the letters in the order
 * they were written, each in its own subtransaction: a letter whose replay
 * raises an error records it (reason, SQLSTATE, attempts) and the others
 * go on.  An order whose letter still fails keeps its later letters waiting
 * too, so its events are never applied out of order.  A later event of an
 * order that loyalty applies supersedes its open letters (the row as it is
 * now is what counts).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/numeric.h"

#include "cluster.h"
#include "dead_letter.h"
#include "loyalty.h"
#include "program.h"
#include "spi_util.h"

static LoyaltyQuery letter_pending = {
	"SELECT 1 FROM loyalty.dead_letter"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND order_id OPERATOR(pg_catalog.=) $2"
	"   AND resolved_at IS NULL LIMIT 1",
	2, {TEXTOID, TEXTOID}, true
};

static LoyaltyQuery letter_insert = {
	"INSERT INTO loyalty.dead_letter (program, event, order_id, member_id, amount, currency,"
	"       status, refunded_amount, ordered_at, reason, sqlstate)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
	11, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID, TEXTOID, TEXTOID, NUMERICOID,
	TIMESTAMPTZOID, TEXTOID, TEXTOID}
};

/*
 * The same lookups on a Citus cluster: the member id makes them router
 * statements (a trigger on a shard can run no other).  There a guest (no
 * member) keeps no letters.
 */
static LoyaltyQuery letter_pending_member = {
	"SELECT 1 FROM loyalty.dead_letter"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND order_id OPERATOR(pg_catalog.=) $2"
	"   AND member_id OPERATOR(pg_catalog.=) $3 AND resolved_at IS NULL LIMIT 1",
	3, {TEXTOID, TEXTOID, TEXTOID}, true
};

static LoyaltyQuery letters_supersede_member = {
	LETTERS_SUPERSEDE
	" WHERE d.program OPERATOR(pg_catalog.=) $1 AND d.order_id OPERATOR(pg_catalog.=) $2"
	"   AND d.member_id OPERATOR(pg_catalog.=) $3 AND d.resolved_at IS NULL",
	3, {TEXTOID, TEXTOID, TEXTOID}, true
};

static LoyaltyQuery letters_supersede = {
	LETTERS_SUPERSEDE
	" WHERE d.program OPERATOR(pg_catalog.=) $1 AND d.order_id OPERATOR(pg_catalog.=) $2"
	"   AND d.resolved_at IS NULL",
	2, {TEXTOID, TEXTOID}, true
};

static LoyaltyQuery letters_open = {
	"SELECT id, event, order_id, member_id, amount, currency, status, refunded_amount, ordered_at"
	"  FROM loyalty.dead_letter"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND resolved_at IS NULL AND order_id IS NOT NULL"
	" ORDER BY id FOR UPDATE",
	1, {TEXTOID}
};

/*
 * On a cluster: every node's letters, read through the coordinator (a
 * multi-shard read cannot lock); each is locked when it is resolved or
 * failed, by its id and member (a router statement).  The ids are drawn
 * per node, so one member's letters keep their order.
 */
static LoyaltyQuery letters_open_cluster = {
	"SELECT id, event, order_id, member_id, amount, currency, status, refunded_amount, ordered_at"
	"  FROM loyalty.dead_letter"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND resolved_at IS NULL AND order_id IS NOT NULL"
	" ORDER BY member_id, id",
	1, {TEXTOID}
};

static LoyaltyQuery letter_resolved = {
	"UPDATE loyalty.dead_letter SET attempts = attempts OPERATOR(pg_catalog.+) 1,"
	"       last_attempt_at = pg_catalog.now(), resolved_at = pg_catalog.now()"
	" WHERE id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}
};

static LoyaltyQuery letter_resolved_member = {
	"UPDATE loyalty.dead_letter SET attempts = attempts OPERATOR(pg_catalog.+) 1,"
	"       last_attempt_at = pg_catalog.now(), resolved_at = pg_catalog.now()"
	" WHERE id OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $2",
	2, {INT8OID, TEXTOID}
};

static LoyaltyQuery letter_superseded = {
	"UPDATE loyalty.dead_letter SET attempts = attempts OPERATOR(pg_catalog.+) 1,"
	"       last_attempt_at = pg_catalog.now(), resolved_at = pg_catalog.now(),"
	"       reason = $2 OPERATOR(pg_catalog.||) ' (superseded by a later event of the order)',"
	"       sqlstate = $3 WHERE id OPERATOR(pg_catalog.=) $1",
	3, {INT8OID, TEXTOID, TEXTOID}
};

static LoyaltyQuery letter_superseded_member = {
	"UPDATE loyalty.dead_letter SET attempts = attempts OPERATOR(pg_catalog.+) 1,"
	"       last_attempt_at = pg_catalog.now(), resolved_at = pg_catalog.now(),"
	"       reason = $2 OPERATOR(pg_catalog.||) ' (superseded by a later event of the order)',"
	"       sqlstate = $3 WHERE id OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $4",
	4, {INT8OID, TEXTOID, TEXTOID, TEXTOID}
};

static LoyaltyQuery letter_failed = {
	"UPDATE loyalty.dead_letter SET attempts = attempts OPERATOR(pg_catalog.+) 1,"
	"       last_attempt_at = pg_catalog.now(), reason = $2, sqlstate = $3"
	" WHERE id OPERATOR(pg_catalog.=) $1",
	3, {INT8OID, TEXTOID, TEXTOID}
};

static LoyaltyQuery letter_failed_member = {
	"UPDATE loyalty.dead_letter SET attempts = attempts OPERATOR(pg_catalog.+) 1,"
	"       last_attempt_at = pg_catalog.now(), reason = $2, sqlstate = $3"
	" WHERE id OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $4",
	4, {INT8OID, TEXTOID, TEXTOID, TEXTOID}
};

/* member_id: the order's (on a cluster its letters are the member's). */
bool
DeadLetterPending(const char *program, const char *member_id, const char *order_id)
{
	Datum		args[3];

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(order_id);
	if (!LoyaltyDistributed())
		LoyaltyRun(&letter_pending, args, NULL, SPI_OK_SELECT);
	else if (member_id == NULL)
		return false;
	else
	{
		args[2] = CStringGetTextDatum(member_id);
		LoyaltyRun(&letter_pending_member, args, NULL, SPI_OK_SELECT);
	}
	return SPI_processed > 0;
}

/* Resolves the open letters of an order: a later event has been applied. */
void
DeadLetterSupersede(const char *program, const char *member_id, const char *order_id)
{
	Datum		args[3];

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(order_id);
	if (!LoyaltyDistributed())
		LoyaltyRun(&letters_supersede, args, NULL, SPI_OK_UPDATE);
	else if (member_id != NULL)
	{
		args[2] = CStringGetTextDatum(member_id);
		LoyaltyRun(&letters_supersede_member, args, NULL, SPI_OK_UPDATE);
	}
}

/*
 * Keeps an event.  Nothing in it may make the insert fail: an order id too
 * long for the open-letter index (see LOYALTY_MAX_ID_CHARS) is kept as NULL,
 * its beginning in the reason; such a letter is never replayed (no order
 * with that id can be recorded).  Other values are kept as they came.
 */
void
DeadLetterWrite(const char *program, OrderEventKind kind, const OrderRow *row,
				const OrderProblem *problem)
{
	Datum		args[11];
	char		nulls[11];
	char	   *reason = problem->reason;

	/* On a cluster a letter lives with its member: a guest keeps none. */
	if (row->member_id == NULL && LoyaltyDistributed())
		return;
	memset(nulls, ' ', sizeof(nulls));
	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(OrderEventName(kind));
	if (row->order_id != NULL && strlen(row->order_id) > LOYALTY_MAX_ID_CHARS &&
		pg_mbstrlen(row->order_id) > LOYALTY_MAX_ID_CHARS)
	{
		reason = psprintf("%s; order id begins \"%s...\"", reason,
						  pnstrdup(row->order_id, pg_mbcliplen(row->order_id, strlen(row->order_id), 64)));
		args[2] = LoyaltyTextOrNull(NULL, &nulls[2]);
	}
	else
		args[2] = LoyaltyTextOrNull(row->order_id, &nulls[2]);
	args[3] = LoyaltyTextOrNull(row->member_id, &nulls[3]);
	args[4] = row->amount;
	nulls[4] = row->has_amount ? ' ' : 'n';
	args[5] = LoyaltyTextOrNull(row->currency, &nulls[5]);
	args[6] = LoyaltyTextOrNull(row->status, &nulls[6]);
	args[7] = row->refunded;
	nulls[7] = row->has_refunded ? ' ' : 'n';
	args[8] = TimestampTzGetDatum(row->ordered_at);
	args[9] = CStringGetTextDatum(reason);
	args[10] = CStringGetTextDatum(unpack_sql_state(problem->sqlstate));
	LoyaltyRun(&letter_insert, args, nulls, SPI_OK_INSERT);
}

static OrderEventKind
EventKindFromName(const char *name)
{
	if (strcmp(name, "INSERT") == 0)
		return ORDER_INSERT;
	if (strcmp(name, "UPDATE") == 0)
		return ORDER_UPDATE;
	return ORDER_DELETE;
}

/* A letter's row as the trigger saw it (its time is always recorded). */
static void
LetterRow(int i, OrderRow *row)
{
	memset(row, 0, sizeof(*row));
	row->order_id = LoyaltyGetText(i, 3);
	row->member_id = LoyaltyGetText(i, 4);
	row->has_amount = !LoyaltyIsNull(i, 5);
	row->amount = row->has_amount ? LoyaltyGetDatum(i, 5) : (Datum) 0;
	row->currency = LoyaltyGetText(i, 6);
	row->status = LoyaltyGetText(i, 7);
	row->has_refunded = !LoyaltyIsNull(i, 8);
	row->refunded = row->has_refunded ? LoyaltyGetDatum(i, 8) : (Datum) 0;
	row->has_time = true;
	row->ordered_at = DatumGetTimestampTz(LoyaltyGetDatum(i, 9));
	row->replayed = true;
}

static bool
ListHasString(List *list, const char *s)
{
	ListCell   *lc;

	foreach(lc, list)
		if (strcmp((char *) lfirst(lc), s) == 0)
			return true;
	return false;
}

/* Records a failed replay: the reason, SQLSTATE and one more attempt. */
static void
LetterFailed(LoyaltyQuery *query, LoyaltyQuery *member_query, int64 id, const char *member_id,
			 const char *reason, int sqlstate)
{
	Datum		args[4];

	args[0] = Int64GetDatum(id);
	args[1] = CStringGetTextDatum(reason);
	args[2] = CStringGetTextDatum(unpack_sql_state(sqlstate));
	args[3] = member_id != NULL ? CStringGetTextDatum(member_id) : (Datum) 0;
	if (LoyaltyDistributed() && member_id != NULL)
		LoyaltyRun(member_query, args, NULL, SPI_OK_UPDATE);
	else
		LoyaltyRun(query, args, NULL, SPI_OK_UPDATE);
}

/* Whether a letter after letter i (of the open letters) is of the same order. */
static bool
LaterLetterOf(SPITupleTable *letters, uint64 nletters, uint64 i, const char *order_id)
{
	SPITupleTable *saved = SPI_tuptable;
	bool		found = false;

	SPI_tuptable = letters;
	for (uint64 j = i + 1; j < nletters && !found; j++)
		found = strcmp(LoyaltyGetText(j, 3), order_id) == 0;
	SPI_tuptable = saved;
	return found;
}

/*
 * Replays letter i of the open letters in its own SPI connection and
 * subtransaction: true when resolved.  An error in the replay rolls back
 * what the letter wrote and is recorded on it (in the caller's connection);
 * the other letters go on.  A letter whose values the program cannot use
 * (SQLSTATE class 22) is superseded when a later letter of its order
 * holds the row as it was changed afterwards; any other failure keeps the
 * order's later letters waiting behind it.
 */
static bool
RetryLetter(const LoyaltyProgram *prog, SPITupleTable *letters, uint64 nletters, uint64 i,
			List **blocked, MemoryContext list_context)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	SPITupleTable *caller_tuptable = SPI_tuptable;
	OrderProblem problem = {0};
	int64		id;
	char	   *order_id;
	char	   *member_id;
	volatile bool done = false;
	bool		unrecorded;
	OrderEventKind kind;

	SPI_tuptable = letters;
	id = LoyaltyGetInt64(i, 1);
	order_id = LoyaltyGetText(i, 3);
	member_id = LoyaltyGetText(i, 4);
	if (ListHasString(*blocked, order_id))
		return false;			/* an earlier letter of the order still waits */

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	PG_TRY();
	{
		OrderRow	row;

		SPI_connect();
		SPI_tuptable = letters;
		LetterRow(i, &row);
		kind = EventKindFromName(LoyaltyGetText(i, 2));
		done = OrderEventApply(prog, kind, &row, &unrecorded, &problem);

		/*
		 * A letter of an order never recorded comes after earlier letters
		 * that were superseded: the row is the order's first sight.
		 */
		if (done && unrecorded && kind == ORDER_UPDATE)
			done = OrderEventApply(prog, ORDER_INSERT, &row, &unrecorded, &problem);
		if (done && LoyaltyDistributed() && member_id != NULL)
			LoyaltyRun(&letter_resolved_member,
					   (Datum[]) {Int64GetDatum(id), CStringGetTextDatum(member_id)}, NULL, SPI_OK_UPDATE);
		else if (done)
			LoyaltyRun(&letter_resolved, (Datum[]) {Int64GetDatum(id)}, NULL, SPI_OK_UPDATE);
		else if (ERRCODE_TO_CATEGORY(problem.sqlstate) == ERRCODE_DATA_EXCEPTION &&
				 LaterLetterOf(letters, nletters, i, order_id))
		{
			LetterFailed(&letter_superseded, &letter_superseded_member, id, member_id, problem.reason, problem.sqlstate);
			done = true;
		}
		else
			LetterFailed(&letter_failed, &letter_failed_member, id, member_id, problem.reason, problem.sqlstate);
		SPI_finish();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
		/* A cancel (or statement_timeout) stops the retry, as in PL/pgSQL. */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		LetterFailed(&letter_failed, &letter_failed_member, id, member_id, psprintf("replay failed: %s", edata->message),
					 edata->sqlerrcode);
		FreeErrorData(edata);
		done = false;
	}
	PG_END_TRY();
	SPI_tuptable = caller_tuptable;

	if (!done)
	{
		/* Later letters of this order wait behind this one. */
		MemoryContext old = MemoryContextSwitchTo(list_context);

		*blocked = lappend(*blocked, pstrdup(order_id));
		MemoryContextSwitchTo(old);
	}
	return done;
}

PG_FUNCTION_INFO_V1(loyalty_retry_dead_letters);
/* loyalty.retry_dead_letters(program): replays open letters; returns how many resolved. */
Datum
loyalty_retry_dead_letters(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	LoyaltyProgram prog;
	SPITupleTable *letters;
	uint64		nletters;
	List	   *blocked = NIL;
	int64		resolved = 0;

	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	LoyaltyRun(LoyaltyDistributed() ? &letters_open_cluster : &letters_open,
			   (Datum[]) {CStringGetTextDatum(code)}, NULL, SPI_OK_SELECT);
	letters = SPI_tuptable;
	nletters = SPI_processed;

	for (uint64 i = 0; i < nletters; i++)
		if (RetryLetter(&prog, letters, nletters, i, &blocked, CurrentMemoryContext))
			resolved++;

	if (nletters > 0)
		ereport(NOTICE,
				(errmsg("loyalty: " INT64_FORMAT " of " UINT64_FORMAT " dead letter(s) of program \"%s\" resolved",
						resolved, nletters, code),
				 list_length(blocked) > 0 ?
				 errhint("%d order(s) still wait; see the reason column of loyalty.dead_letter.",
						 list_length(blocked)) : 0));
	SPI_finish();
	PG_RETURN_INT64(resolved);
}
