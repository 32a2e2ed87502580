/*
 * backfill.c
 *		Earning the orders an attached table held before it was attached.
 *
 * loyalty.backfill_orders_chunk() (27_backfill.sql) keeps the run's place in
 * loyalty.backfill_run and calls loyalty.backfill_rows() for each chunk: the
 * next orders after that place, oldest first (the created-at column, then
 * the order id), that loyalty has not recorded and that wait in no dead
 * letter, locked FOR SHARE so that a refund, cancel or DELETE of one of
 * them waits until the chunk commits and then finds it recorded.
 *
 * Each row is read through the table's mapping and priced by the same code
 * as the accrual trigger (order_read.c, OrderRowCheck, OrderInsertTarget),
 * and the chunk's orders are written in one set-based statement (the
 * trigger's batch arrays, without what only a live INSERT needs: the
 * member lock, superseding dead letters, replaying known ids).  Rows the
 * batch cannot take go one by one through OrderBackfillApply: rows
 * refunded already, every row of a program whose features price orders
 * (tiers: each order's multiplier and upgrade depend on the ones before),
 * and rows of a member without room for the points (a dead letter then).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "accrual_hook.h"
#include "credit.h"
#include "loyalty.h"
#include "order_batch.h"
#include "order_event.h"
#include "order_read.h"
#include "program.h"
#include "spi_util.h"

/*
 * The chunk's orders in one statement: order states, then the credits of
 * those that earn (CREDIT_WRITE).  A repeated id counts once (its first
 * row); an id recorded meanwhile (a live INSERT of the same id) is left as
 * it is.  Returns the rows (1-based, as given) of members the points would
 * take above LOYALTY_MAX_BALANCE ($14): the caller sends them one by one.
 */
static LoyaltyQuery backfill_insert = {
	"WITH input AS ("
	"  SELECT DISTINCT ON (u.order_id) u.*"
	"    FROM unnest($2::pg_catalog.text[], $3::pg_catalog.text[], $4::numeric[], $5::pg_catalog.text[], $6::numeric[], $7::pg_catalog.int8[],"
	"                $8::numeric[], $9::pg_catalog.bool[], $10::pg_catalog.timestamptz[], $11::pg_catalog.timestamptz[],"
	"                $12::pg_catalog.timestamptz[], $13::numeric[])"
	"         WITH ORDINALITY AS u(order_id, member_id, amount, currency, fx_rate, points, refunded,"
	"                              closed, ordered_at, available_at, expires_at, multiplier, ord)"
	"   ORDER BY u.order_id, u.ord),"
	" full_member AS MATERIALIZED ("
	"  SELECT b.member_id"
	"    FROM (SELECT i.member_id, pg_catalog.sum(i.points) AS points FROM input i"
	"           WHERE i.points OPERATOR(pg_catalog.>) 0 GROUP BY i.member_id) b"
	"    JOIN loyalty.member m ON m.program OPERATOR(pg_catalog.=) $1"
	"                         AND m.member_id OPERATOR(pg_catalog.=) b.member_id"
	"   WHERE pg_catalog.int8larger(m.balance, m.lifetime_earned)"
	"         OPERATOR(pg_catalog.>) ($14 OPERATOR(pg_catalog.-) b.points)),"
	" s AS (INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, currency, fx_rate,"
	"         points, refunded_amount, reversed_target, earned_total, closed, ordered_at, multiplier)"
	"       SELECT $1, order_id, member_id, amount, currency, fx_rate, points, coalesce(refunded, 0),"
	"              0, points, closed, ordered_at, multiplier"
	"         FROM input i"
	"        WHERE NOT EXISTS (SELECT 1 FROM full_member f WHERE f.member_id OPERATOR(pg_catalog.=) i.member_id)"
	"        ORDER BY ord"
	"       ON CONFLICT DO NOTHING RETURNING order_id),"
	" credit AS MATERIALIZED ("
	"   SELECT " CREDIT_NEXT_ID " AS id, x.member_id, 'earn'::pg_catalog.text AS kind, x.points,"
	"          NULL::pg_catalog.text AS ref, x.order_id, NULL::pg_catalog.text AS reason,"
	"          x.ordered_at AS occurred_at, x.available_at, x.expires_at"
	"     FROM (SELECT i.* FROM input i JOIN s ON i.order_id OPERATOR(pg_catalog.=) s.order_id"
	"            WHERE i.points OPERATOR(pg_catalog.>) 0 ORDER BY i.ord) x),"
	CREDIT_WRITE
	" SELECT ARRAY(SELECT i.ord::pg_catalog.int4 FROM input i JOIN full_member f"
	"                ON f.member_id OPERATOR(pg_catalog.=) i.member_id ORDER BY i.ord)"
	"   FROM (SELECT pg_catalog.count(*) FROM s) AS written",
	14, {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, NUMERICARRAYOID,
	INT8ARRAYOID, NUMERICARRAYOID, BOOLARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
	TIMESTAMPTZARRAYOID, NUMERICARRAYOID, INT8OID}
};

/* The mapping of an attached table, as the trigger's arguments. */
static LoyaltyQuery source_mapping = {
	"SELECT s.order_id_column::pg_catalog.text, s.member_id_column::pg_catalog.text,"
	"       s.amount_column::pg_catalog.text, coalesce(s.currency_column::pg_catalog.text, ''),"
	"       coalesce(s.status_column::pg_catalog.text, ''),"
	"       coalesce(s.refunded_amount_column::pg_catalog.text, ''),"
	"       coalesce(s.created_at_column::pg_catalog.text, ''),"
	"       loyalty.backfill_select_sql(s, $3, $4, $5)"
	"  FROM loyalty.order_source s"
	" WHERE s.program OPERATOR(pg_catalog.=) $1 AND s.orders OPERATOR(pg_catalog.=) $2",
	5, {TEXTOID, OIDOID, INT4OID, TEXTOID, TEXTOID}
};

/* What a chunk did. */
typedef struct BackfillChunk
{
	int			done;			/* rows read */
	int			taken;			/* of them not recorded before: recorded now, or dead letters */
	int			letters;		/* of them kept in the dead letters */
	char	   *last_time;		/* the place after the last row read */
	char	   *last_id;
} BackfillChunk;

/* One row's problem: kept in the dead letters, as the trigger keeps it. */
static void
BackfillLetter(const LoyaltyProgram *prog, const OrderRow *row, const OrderProblem *problem,
			   BackfillChunk *chunk)
{
	OrderDeadLetterKeep(prog->code, ORDER_INSERT, row, problem);
	chunk->letters++;
}

/* One row by the one-row path (see the file's comment). */
static void
BackfillOne(const LoyaltyProgram *prog, OrderRow *row, bool history, BackfillChunk *chunk)
{
	OrderProblem problem = {0};

	if (!OrderBackfillApply(prog, row, history, &problem))
		BackfillLetter(prog, row, &problem, chunk);
}

/* Writes the batch; its rows of members without room go one by one. */
static void
BackfillFlush(OrderBatch *batch, const LoyaltyProgram *prog, BackfillChunk *chunk)
{
	Datum		args[ORDER_BATCH_NARGS + 1];
	ArrayType  *full;
	Datum	   *ord;
	bool	   *ord_null;
	int			nfull;

	if (batch->n == 0)
		return;
	OrderBatchArgs(batch, prog, args);
	args[ORDER_BATCH_NARGS] = Int64GetDatum(LOYALTY_MAX_BALANCE);
	LoyaltyRun(&backfill_insert, args, NULL, SPI_OK_SELECT);
	full = DatumGetArrayTypeP(LoyaltyGetDatum(0, 1));
	deconstruct_array(full, INT4OID, sizeof(int32), true, TYPALIGN_INT, &ord, &ord_null, &nfull);
	for (int k = 0; k < nfull; k++)
	{
		OrderRow	row;

		/* Rows with points: not history ones. */
		OrderBatchRow(batch, DatumGetInt32(ord[k]) - 1, &row);
		BackfillOne(prog, &row, false, chunk);
	}
	batch->n = 0;
}

/*
 * Whether an order back-fills as history (counts, earns nothing): every
 * order in mode history, the orders before earn_from in mode earn.
 */
static bool
BackfillHistory(bool all_history, bool has_earn_from, TimestampTz earn_from,
				const OrderRow *row)
{
	return all_history || (has_earn_from && row->ordered_at < earn_from);
}

/*
 * Reads, prices and records the rows of the chunk (SPI_tuptable of the
 * select) in their order.
 */
static void
BackfillRows(SPITupleTable *rows, uint64 nrows, const char *relname, char **args,
			 const LoyaltyProgram *prog, bool all_history, bool has_earn_from,
			 TimestampTz earn_from, BackfillChunk *chunk)
{
	OrderBatch *batch = OrderBatchCreate();
	bool		one_by_one = AccrualHooksApply(prog);

	for (uint64 i = 0; i < nrows; i++)
	{
		OrderRow	row;
		OrderTarget target;
		OrderProblem problem = {0};
		bool		history;
		bool		isnull;

		chunk->done++;
		/* The select's first column: whether the back-fill takes the row. */
		if (!DatumGetBool(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull)))
			continue;			/* recorded already, or waits in a dead letter */
		chunk->taken++;
		if (!OrderRowRead(rows->tupdesc, relname, rows->vals[i], args, prog, &row, &problem) ||
			!OrderRowCheck(prog, ORDER_INSERT, &row, &problem))
		{
			BackfillLetter(prog, &row, &problem, chunk);
			continue;
		}
		history = BackfillHistory(all_history, has_earn_from, earn_from, &row);
		if (one_by_one)
		{
			BackfillOne(prog, &row, history, chunk);
			continue;
		}
		if (!OrderInsertTarget(prog, &row, &target, &problem))
		{
			BackfillLetter(prog, &row, &problem, chunk);
			continue;
		}
		if (history)
			OrderTargetHistory(&target);
		if (target.reversal > 0)
		{
			/* Refunded already: earned and reversed at once, in its turn. */
			BackfillFlush(batch, prog, chunk);
			BackfillOne(prog, &row, history, chunk);
			continue;
		}
		OrderBatchAdd(batch, prog, &row, &target);
		if (batch->n == ORDER_BATCH_SIZE)
			BackfillFlush(batch, prog, chunk);
		CHECK_FOR_INTERRUPTS();
	}
	BackfillFlush(batch, prog, chunk);
}

/* A text datum of str in context. */
static text *
CopyTextIn(MemoryContext context, const char *str)
{
	MemoryContext old = MemoryContextSwitchTo(context);
	text	   *t = cstring_to_text(str);

	MemoryContextSwitchTo(old);
	return t;
}

/* The text of a column of the last row read, NULL when not mapped or NULL. */
static char *
LastValue(SPITupleTable *rows, uint64 nrows, char **args, int arg)
{
	int			attnum = OrderMappedColumn(rows->tupdesc, args, arg);

	if (nrows == 0 || attnum <= 0)
		return NULL;
	return SPI_getvalue(rows->vals[nrows - 1], rows->tupdesc, attnum);
}

PG_FUNCTION_INFO_V1(loyalty_backfill_rows);

/*
 * loyalty.backfill_rows(program, orders, phase, after_time, after_id,
 * chunk_size, history, earn_from): one chunk of a back-fill, see the
 * file's comment.  Returns the rows read, those taken (not recorded
 * before), the dead letters kept, and the place of the last row read (its
 * created-at and order id as text).  Internal: backfill_orders_chunk checks
 * the caller and keeps the place.
 */
Datum
loyalty_backfill_rows(PG_FUNCTION_ARGS)
{
	const char *program;
	Oid			orders;
	int32		chunk_size;
	bool		all_history;
	bool		has_earn_from = !PG_ARGISNULL(7);
	TimestampTz earn_from = has_earn_from ? PG_GETARG_TIMESTAMPTZ(7) : 0;
	LoyaltyProgram prog;
	BackfillChunk chunk = {0};
	char	   *args[TRIGGER_NARGS];
	TupleDesc	result_desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	Datum		margs[5];
	char		mnulls[5] = {' ', ' ', ' ', ' ', ' '};
	Oid			stypes[2] = {INT4OID, TEXTOID};
	Datum		sargs[2];
	MemoryContext caller = CurrentMemoryContext;
	SPITupleTable *rows;
	uint64		nrows;

	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "loyalty.backfill_rows must return a record");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(5) || PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("loyalty.backfill_rows: program, orders, phase, chunk_size and history must not be null")));
	program = text_to_cstring(PG_GETARG_TEXT_PP(0));
	orders = PG_GETARG_OID(1);
	chunk_size = PG_GETARG_INT32(5);
	all_history = PG_GETARG_BOOL(6);
	SPI_connect();
	if (!LoyaltyProgramLoad(program, orders, &prog) || !prog.attached)
		elog(ERROR, "loyalty: relation %u is not attached to program \"%s\"", orders, program);

	margs[0] = CStringGetTextDatum(program);
	margs[1] = ObjectIdGetDatum(orders);
	margs[2] = PG_GETARG_DATUM(2);
	for (int k = 3; k <= 4; k++)
	{
		mnulls[k] = PG_ARGISNULL(k) ? 'n' : ' ';
		margs[k] = PG_ARGISNULL(k) ? (Datum) 0 : PG_GETARG_DATUM(k);
	}
	LoyaltyRun(&source_mapping, margs, mnulls, SPI_OK_SELECT);
	args[ARG_PROGRAM] = prog.code;
	for (int arg = ARG_ORDER_ID; arg < TRIGGER_NARGS; arg++)
		args[arg] = LoyaltyGetText(0, arg);

	/* $1 the chunk size, $2 the program (see loyalty.backfill_select_sql). */
	sargs[0] = Int32GetDatum(chunk_size);
	sargs[1] = CStringGetTextDatum(program);
	if (SPI_execute_with_args(LoyaltyGetText(0, TRIGGER_NARGS), 2, stypes, sargs, NULL, false, 0)
		!= SPI_OK_SELECT)
		elog(ERROR, "loyalty: the back-fill's select failed");
	rows = SPI_tuptable;
	nrows = SPI_processed;
	BackfillRows(rows, nrows, get_rel_name(orders), args, &prog, all_history, has_earn_from,
				 earn_from, &chunk);
	chunk.last_time = LastValue(rows, nrows, args, ARG_CREATED_AT);
	chunk.last_id = LastValue(rows, nrows, args, ARG_ORDER_ID);

	values[0] = Int32GetDatum(chunk.done);
	values[1] = Int32GetDatum(chunk.taken);
	values[2] = Int32GetDatum(chunk.letters);
	nulls[3] = chunk.last_time == NULL;
	nulls[4] = chunk.last_id == NULL;
	/* Copied out of SPI memory, which SPI_finish frees. */
	values[3] = nulls[3] ? (Datum) 0 : PointerGetDatum(CopyTextIn(caller, chunk.last_time));
	values[4] = nulls[4] ? (Datum) 0 : PointerGetDatum(CopyTextIn(caller, chunk.last_id));
	SPI_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc), values, nulls)));
}
