/*
 * accrual_trigger.c
 *		The AFTER ROW trigger on the application's orders table.
 *
 * loyalty.attach_orders() creates two triggers with this function and the
 * same arguments: program, then the column names of order id, member id,
 * amount, currency, status, refunded amount and created at ('' where not
 * mapped).
 *   - AFTER INSERT FOR EACH STATEMENT, with the new rows as a transition
 *     table: new orders are priced row by row and earned in batches
 *     (order_batch.c), so a bulk INSERT or COPY costs a few statements.
 *   - AFTER UPDATE OR DELETE FOR EACH ROW: refunds, cancels, moves, through
 *     OrderEventApply().  An UPDATE that changes the order id is a DELETE
 *     of the old id and an INSERT of the new one.
 *   - AFTER TRUNCATE FOR EACH STATEMENT: every open order of the program
 *     that no other of its order tables holds is closed, as by a DELETE.
 * When the program's configuration cannot price an order, the event is
 * kept in loyalty.dead_letter with a WARNING: a valid order insert never
 * fails because of loyalty.
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"
#include "utils/formatting.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "accrual_hook.h"
#include "dead_letter.h"
#include "health.h"
#include "loyalty.h"
#include "order_batch.h"
#include "order_event.h"
#include "order_partition.h"
#include "program.h"
#include "spi_util.h"

/* Positions of the trigger arguments. */
enum
{
	ARG_PROGRAM,
	ARG_ORDER_ID,
	ARG_MEMBER_ID,
	ARG_AMOUNT,
	ARG_CURRENCY,
	ARG_STATUS,
	ARG_REFUNDED,
	ARG_CREATED_AT,
	TRIGGER_NARGS
};

/* Column number of a mapped column, 0 when not mapped, -1 when missing. */
static int
MappedColumn(TupleDesc desc, char **args, int arg)
{
	int			attnum;

	if (args[arg][0] == '\0')
		return 0;
	attnum = SPI_fnumber(desc, args[arg]);
	return attnum > 0 ? attnum : -1;
}

/* A column's value as text (its output function), NULL when NULL. */
static char *
ColumnText(HeapTuple tuple, TupleDesc desc, int attnum)
{
	char	   *value;

	if (attnum <= 0)
		return NULL;
	value = SPI_getvalue(tuple, desc, attnum);
	if (value != NULL && value[0] == '\0')
		return NULL;
	return value;
}

/* A mapped column's value: false when not mapped, missing or NULL. */
static bool
ColumnValue(HeapTuple tuple, TupleDesc desc, int attnum, Datum *value)
{
	bool		isnull;

	if (attnum <= 0)
		return false;
	*value = SPI_getbinval(tuple, desc, attnum, &isnull);
	return !isnull;
}

/*
 * A column's type, a domain read as its base type.  Built-in types are not
 * domains: only a user's type costs a catalog look-up.
 */
static Oid
ColumnBaseType(TupleDesc desc, int attnum)
{
	Oid			type = TupleDescAttr(desc, attnum - 1)->atttypid;

	return type < FirstNormalObjectId ? type : getBaseType(type);
}

/* The types loyalty reads an amount and an order time from. */
static const Oid amount_types[] = {NUMERICOID, INT2OID, INT4OID, INT8OID, FLOAT4OID, FLOAT8OID};
static const Oid time_types[] = {TIMESTAMPTZOID, TIMESTAMPOID, DATEOID};

/*
 * Whether mapped column arg still has a type loyalty can read (one of
 * types): attach_orders checked it, but ALTER TABLE ... TYPE may have
 * changed it since.  If not, sets the problem (the event waits).
 */
static bool
MappedTypeUsable(Relation rel, char **args, const int *cols, int arg, const Oid *types,
				 int ntypes, OrderProblem *problem)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			type;

	if (cols[arg] <= 0)
		return true;
	type = ColumnBaseType(desc, cols[arg]);
	for (int i = 0; i < ntypes; i++)
		if (types[i] == type)
			return true;
	problem->sqlstate = ERRCODE_DATATYPE_MISMATCH;
	problem->reason = psprintf("column \"%s\" of relation \"%s\" has type %s, which loyalty cannot read as %s",
							   args[arg], RelationGetRelationName(rel),
							   format_type_be(TupleDescAttr(desc, cols[arg] - 1)->atttypid),
							   types == time_types ? "an order time" : "an amount");
	return false;
}

/* An amount column (numeric, integer or float types) as numeric. */
static bool
ColumnNumeric(HeapTuple tuple, TupleDesc desc, int attnum, Datum *out)
{
	Datum		d;

	if (!ColumnValue(tuple, desc, attnum, &d))
		return false;
	switch (ColumnBaseType(desc, attnum))
	{
		case NUMERICOID:
			*out = d;
			break;
		case INT2OID:
			*out = DirectFunctionCall1(int2_numeric, d);
			break;
		case INT4OID:
			*out = DirectFunctionCall1(int4_numeric, d);
			break;
		case INT8OID:
			*out = DirectFunctionCall1(int8_numeric, d);
			break;
		case FLOAT4OID:
			*out = DirectFunctionCall1(float4_numeric, d);
			break;
		case FLOAT8OID:
			*out = DirectFunctionCall1(float8_numeric, d);
			break;
		default:
			return false;
	}
	return true;
}

/*
 * The order time.  A timestamp without time zone (or a date) is read in the
 * program's time zone: a shop's local order time.  A time too close to the
 * ends of the timestamp range to convert (or to add days to) reads as
 * infinity, which OrderRowCheck refuses like any time out of range.
 */
static bool
ColumnTime(HeapTuple tuple, TupleDesc desc, int attnum, const char *timezone,
		   TimestampTz *out)
{
	Datum		d;
	Datum		zone = CStringGetTextDatum(timezone);
	int64		margin = 2 * USECS_PER_DAY;

	if (!ColumnValue(tuple, desc, attnum, &d))
		return false;
	switch (ColumnBaseType(desc, attnum))
	{
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
			*out = DatumGetTimestamp(d);
			break;
		case DATEOID:
			if (DATE_NOT_FINITE(DatumGetDateADT(d)) ||
				DatumGetDateADT(d) >= TIMESTAMP_END_JULIAN - POSTGRES_EPOCH_JDATE - 2 ||
				DatumGetDateADT(d) < DATETIME_MIN_JULIAN - POSTGRES_EPOCH_JDATE + 2)
				*out = DatumGetDateADT(d) > 0 ? DT_NOEND : DT_NOBEGIN;
			else
				*out = DatumGetTimestamp(DirectFunctionCall1(date_timestamp, d));
			break;
		default:
			return false;
	}
	if (TIMESTAMP_NOT_FINITE(*out))
		return true;
	if (*out >= END_TIMESTAMP - margin)
		*out = DT_NOEND;
	else if (*out < MIN_TIMESTAMP + margin)
		*out = DT_NOBEGIN;
	else if (SPI_gettypeid(desc, attnum) != TIMESTAMPTZOID)
		*out = DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone, zone,
													   TimestampGetDatum(*out)));
	return true;
}

/*
 * Reads the mapped columns of tuple.  Returns false, with the problem set,
 * when a mapped column has been dropped or renamed since attach_orders().
 */
static bool
ReadOrderRow(Relation rel, HeapTuple tuple, char **args, const char *timezone,
			 OrderRow *row, OrderProblem *problem)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			cols[TRIGGER_NARGS];

	memset(row, 0, sizeof(*row));
	for (int arg = ARG_ORDER_ID; arg < TRIGGER_NARGS; arg++)
		cols[arg] = MappedColumn(desc, args, arg);

	row->order_id = ColumnText(tuple, desc, cols[ARG_ORDER_ID]);
	row->member_id = ColumnText(tuple, desc, cols[ARG_MEMBER_ID]);
	row->has_amount = ColumnNumeric(tuple, desc, cols[ARG_AMOUNT], &row->amount);
	row->currency = ColumnText(tuple, desc, cols[ARG_CURRENCY]);
	if (row->currency != NULL)
		row->currency = str_toupper(row->currency, strlen(row->currency), C_COLLATION_OID);
	row->status = ColumnText(tuple, desc, cols[ARG_STATUS]);
	row->has_refunded = ColumnNumeric(tuple, desc, cols[ARG_REFUNDED], &row->refunded);
	row->has_time = ColumnTime(tuple, desc, cols[ARG_CREATED_AT], timezone, &row->ordered_at);
	if (!row->has_time)
		row->ordered_at = GetCurrentTransactionStartTimestamp();

	for (int arg = ARG_ORDER_ID; arg < TRIGGER_NARGS; arg++)
		if (cols[arg] < 0)
		{
			problem->sqlstate = ERRCODE_UNDEFINED_COLUMN;
			problem->reason = psprintf("column \"%s\" of relation \"%s\" no longer exists",
									   args[arg], RelationGetRelationName(rel));
			return false;
		}
	if (!MappedTypeUsable(rel, args, cols, ARG_AMOUNT, amount_types, lengthof(amount_types), problem) ||
		!MappedTypeUsable(rel, args, cols, ARG_REFUNDED, amount_types, lengthof(amount_types), problem) ||
		!MappedTypeUsable(rel, args, cols, ARG_CREATED_AT, time_types, lengthof(time_types), problem))
		return false;
	if (row->order_id == NULL)
	{
		/* Kept for a person to look at: without an id it cannot be replayed. */
		problem->sqlstate = ERRCODE_NULL_VALUE_NOT_ALLOWED;
		problem->reason = psprintf("order id column \"%s\" is null", args[ARG_ORDER_ID]);
		return false;
	}
	return true;
}

/* Whether an UPDATE changed any mapped column (if not, nothing to do). */
static bool
MappedColumnsChanged(TriggerData *td, char **args)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);

	for (int arg = ARG_ORDER_ID; arg < TRIGGER_NARGS; arg++)
	{
		int			attnum = MappedColumn(desc, args, arg);
		Form_pg_attribute att;
		bool		old_null;
		bool		new_null;
		Datum		old_value;
		Datum		new_value;

		if (attnum == 0)
			continue;
		if (attnum < 0)
			return true;
		att = TupleDescAttr(desc, attnum - 1);
		old_value = heap_getattr(td->tg_trigtuple, attnum, desc, &old_null);
		new_value = heap_getattr(td->tg_newtuple, attnum, desc, &new_null);
		if (old_null != new_null)
			return true;
		if (!old_null && !datum_image_eq(old_value, new_value, att->attbyval, att->attlen))
			return true;
	}
	return false;
}

static void
CheckTriggerCall(FunctionCallInfo fcinfo)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	bool		statement_insert;
	bool		statement_truncate;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("loyalty.orders_trigger() must be called as a trigger")));
	statement_insert = TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) &&
		TRIGGER_FIRED_BY_INSERT(td->tg_event) && td->tg_newtable != NULL;
	statement_truncate = TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) &&
		TRIGGER_FIRED_BY_TRUNCATE(td->tg_event);
	if (!TRIGGER_FIRED_AFTER(td->tg_event) ||
		!(TRIGGER_FIRED_FOR_ROW(td->tg_event) || statement_insert || statement_truncate) ||
		td->tg_trigger->tgnargs != TRIGGER_NARGS)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("loyalty.orders_trigger() must be an AFTER ROW trigger, an AFTER INSERT statement trigger with a transition table or an AFTER TRUNCATE statement trigger, with %d arguments",
						TRIGGER_NARGS),
				 errhint("Install it with loyalty.attach_orders().")));
}

/*
 * Keeps an event loyalty cannot apply now, with a WARNING.  A value the
 * program cannot use (SQLSTATE class 22) is fixed in the order row: the
 * row as changed then replaces the letter.
 */
static void
KeepDeadLetter(const char *program, OrderEventKind kind, const OrderRow *row,
			   const OrderProblem *problem)
{
	const char *shown = row->order_id ? row->order_id : "(null)";

	/* An over-long id is shown by its beginning. */
	if (strlen(shown) > 64)
		shown = psprintf("%s...", pnstrdup(shown, pg_mbcliplen(shown, strlen(shown), 64)));
	DeadLetterWrite(program, kind, row, problem);
	ereport(WARNING,
			(errcode(problem->sqlstate),
			 errmsg("loyalty: %s of order \"%s\" kept in loyalty.dead_letter: %s",
					OrderEventName(kind), shown, problem->reason),
			 ERRCODE_TO_CATEGORY(problem->sqlstate) == ERRCODE_DATA_EXCEPTION ?
			 errhint("Correct the order row, then run loyalty.retry_dead_letters('%s').", program) :
			 errhint("Fix the program's configuration, then run loyalty.retry_dead_letters('%s').",
					 program)));
}

/*
 * Loads the program and checks the table is one of its order sources.
 * False, with the problem set, when the program is missing; false without a
 * problem (and a WARNING) when the table is not attached: such events are
 * not the program's, so nothing is kept that a retry could turn into points.
 */
static bool
TriggerProgram(TriggerData *td, char **args, LoyaltyProgram *prog, OrderProblem *problem)
{
	memset(prog, 0, sizeof(*prog));
	if (!LoyaltyProgramLoadCached(args[ARG_PROGRAM], RelationGetRelid(td->tg_relation), prog))
	{
		problem->sqlstate = ERRCODE_UNDEFINED_OBJECT;
		problem->reason = psprintf("program \"%s\" does not exist", args[ARG_PROGRAM]);
		prog->timezone = "UTC";
		return false;
	}
	if (!prog->attached)
	{
		IgnoredEventCount(args[ARG_PROGRAM], "not_attached",
						  RelationGetRelationName(td->tg_relation));
		ereport(WARNING,
				(errcode(ERRCODE_LOYALTY_SOURCE_NOT_ATTACHED),
				 errmsg("loyalty: relation \"%s\" is not attached to program \"%s\"; event ignored",
						RelationGetRelationName(td->tg_relation), args[ARG_PROGRAM]),
				 errhint("Attach order tables with loyalty.attach_orders(), not CREATE TRIGGER.")));
	}
	return prog->attached;
}

/*
 * The member lock of a statement's new orders, in one statement: every
 * member, enrolled if new, locked in member order.  Without it each batch
 * locks its own members, and two bulk loads whose members come in opposite
 * order deadlock on loyalty.member, which the application's own statements
 * would not.  ON CONFLICT DO UPDATE ... WHERE false locks a known member's
 * row without writing it.
 */
static LoyaltyQuery members_lock = {
	"INSERT INTO loyalty.member AS m (program, member_id)"
	" SELECT DISTINCT $1::pg_catalog.text, u.member_id"
	"   FROM pg_catalog.unnest($2::pg_catalog.text[]) AS u(member_id)"
	"  WHERE u.member_id IS NOT NULL"
	"  ORDER BY 2"
	" ON CONFLICT (program, member_id) DO UPDATE SET member_id = excluded.member_id WHERE false",
	2, {TEXTOID, TEXTARRAYOID}
};

/*
 * Locks the members of a statement's new rows (see members_lock).  A
 * one-row statement locks its one member when it posts: nothing to order.
 */
static void
LockNewRowsMembers(TriggerData *td, char **args, TupleTableSlot *slot)
{
	Tuplestorestate *rows = td->tg_newtable;
	int64		nrows = tuplestore_tuple_count(rows);
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	int			attnum = MappedColumn(desc, args, ARG_MEMBER_ID);
	MemoryContext scan_context;
	MemoryContext old;
	Datum	   *ids;
	bool	   *nulls;
	int64		n = 0;
	Datum		qargs[2];
	Oid			typoutput;
	bool		typvarlena;

	if (nrows <= 1 || attnum <= 0 || (Size) nrows > MaxAllocSize / sizeof(Datum))
		return;
	scan_context = AllocSetContextCreate(CurrentMemoryContext, "loyalty member lock",
										 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(scan_context);
	ids = palloc(sizeof(Datum) * nrows);
	nulls = palloc(sizeof(bool) * nrows);
	getTypeOutputInfo(TupleDescAttr(desc, attnum - 1)->atttypid, &typoutput, &typvarlena);
	tuplestore_rescan(rows);
	/* The slot owns what it fetches: fetch outside scan_context. */
	MemoryContextSwitchTo(old);
	while (tuplestore_gettupleslot(rows, true, false, slot))
	{
		bool		isnull;
		Datum		value = slot_getattr(slot, attnum, &isnull);
		char	   *text;

		MemoryContextSwitchTo(scan_context);
		text = isnull ? NULL : OidOutputFunctionCall(typoutput, value);
		/* As ReadOrderRow reads it: an empty member id is a guest; an over-long one is refused. */
		nulls[n] = text == NULL || text[0] == '\0' || OrderIdTooLong(text);
		ids[n] = nulls[n] ? (Datum) 0 : CStringGetTextDatum(text);
		n++;
		MemoryContextSwitchTo(old);
	}
	MemoryContextSwitchTo(scan_context);
	qargs[0] = CStringGetTextDatum(args[ARG_PROGRAM]);
	qargs[1] = LoyaltyArray(ids, nulls, (int) n, TEXTOID);
	LoyaltyRun(&members_lock, qargs, NULL, SPI_OK_INSERT);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scan_context);
}

/* See loyalty.order_held_elsewhere (the program has several tables). */
static LoyaltyQuery held_elsewhere = {
	"SELECT loyalty.order_held_elsewhere($1, $2, $3)",
	3, {TEXTOID, OIDOID, TEXTOID}, true
};

static bool
OrderHeldElsewhere(const LoyaltyProgram *prog, const char *order_id)
{
	Datum		args[3];

	args[0] = CStringGetTextDatum(prog->code);
	args[1] = ObjectIdGetDatum(prog->orders);
	args[2] = CStringGetTextDatum(order_id);
	LoyaltyRun(&held_elsewhere, args, NULL, SPI_OK_SELECT);
	return LoyaltyGetBool(0, 1);
}

/*
 * Applies an event of the application's own statement (a replay of the
 * dead letters applies its events itself).  An UPDATE or DELETE of an
 * order loyalty has not recorded waits behind the order's first event when
 * that waits in the dead letters; one of a recorded order makes the order's
 * older letters moot, since the row as it is now is what counts.  A DELETE
 * of an order another of the program's tables holds closes nothing.
 */
static bool
ApplyEvent(const LoyaltyProgram *prog, OrderEventKind kind, OrderRow *row,
		   OrderProblem *problem)
{
	bool		unrecorded;
	bool		ok;

	if (kind == ORDER_DELETE && prog->sources > 1 && OrderHeldElsewhere(prog, row->order_id))
		return true;			/* moved to another of the program's tables */
	if (kind == ORDER_INSERT && prog->archived)
		return true;			/* an archived program earns no more (its tables
								 * stay attached for refunds) */
	ok = OrderEventApply(prog, kind, row, &unrecorded, problem);

	if (kind == ORDER_INSERT)
		return ok;
	if (!unrecorded)
	{
		DeadLetterSupersede(prog->code, row->order_id);
		return ok;
	}
	if (!DeadLetterPending(prog->code, row->order_id))
	{
		/* The order predates the attachment: counted for loyalty.health. */
		IgnoredEventCount(prog->code, "unknown_order", row->order_id);
		return true;
	}
	problem->sqlstate = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	problem->reason = psprintf("an earlier event of order \"%s\" waits in loyalty.dead_letter",
							   row->order_id);
	return false;
}

/*
 * Writes the batch, then sends the rows it left (a known id, a member
 * without room) down the one-row path.
 */
static void
FlushNewRows(OrderBatch *batch, const LoyaltyProgram *prog, const char *program)
{
	OrderBatchFlush(batch, prog);
	for (int k = 0; k < batch->nreplay; k++)
	{
		OrderRow	row;
		OrderProblem problem = {0};

		OrderBatchRow(batch, batch->replay[k], &row);
		if (!ApplyEvent(prog, ORDER_INSERT, &row, &problem))
			KeepDeadLetter(program, ORDER_INSERT, &row, &problem);
	}
	batch->nreplay = 0;
}

/*
 * INSERT, once per statement: prices every new row and earns them in
 * batches.  A single row (the usual web order), and rows inserted already
 * refunded, take the lighter one-row path; rows that cannot be priced go to
 * the dead letters.
 *
 * Memory: the slot owns each tuple it fetches from the transition table
 * (read back from disk once the table outgrows work_mem) and frees it at
 * the next fetch, so fetches happen in the trigger's context; what a row
 * leaves for the batch lives in batch_context, emptied after each flush.
 */
static void
AccrueNewRows(TriggerData *td, char **args, const LoyaltyProgram *prog, bool prog_ok,
			  const OrderProblem *prog_problem)
{
	Tuplestorestate *rows = td->tg_newtable;
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(td->tg_relation),
													&TTSOpsMinimalTuple);
	OrderBatch *batch = OrderBatchCreate();
	MemoryContext trigger_context = CurrentMemoryContext;
	MemoryContext batch_context = AllocSetContextCreate(CurrentMemoryContext,
														"loyalty order batch",
														ALLOCSET_DEFAULT_SIZES);
	/* Where features price orders (tiers), orders go one by one. */
	bool		single = tuplestore_tuple_count(rows) == 1 || AccrualHooksApply(prog);

	tuplestore_select_read_pointer(rows, tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND));
	if (prog_ok)
		LockNewRowsMembers(td, args, slot);
	tuplestore_rescan(rows);
	while (tuplestore_gettupleslot(rows, true, false, slot))
	{
		HeapTuple	tuple;
		OrderRow	row;
		OrderTarget target;
		OrderProblem problem = *prog_problem;

		MemoryContextSwitchTo(batch_context);
		tuple = ExecFetchSlotHeapTuple(slot, false, NULL);
		if (prog_ok && prog->archived)
			;					/* an archived program earns no more */
		else if (!ReadOrderRow(td->tg_relation, tuple, args, prog->timezone, &row, &problem) ||
				 !prog_ok || !OrderRowCheck(prog, ORDER_INSERT, &row, &problem) ||
				 !OrderInsertTarget(prog, &row, &target, &problem))
			KeepDeadLetter(args[ARG_PROGRAM], ORDER_INSERT, &row, &problem);
		else if (target.reversal > 0 || single)
		{

			/* Refunded already, or a one-row INSERT: the one-statement path. */
			FlushNewRows(batch, prog, args[ARG_PROGRAM]);
			if (!ApplyEvent(prog, ORDER_INSERT, &row, &problem))
				KeepDeadLetter(args[ARG_PROGRAM], ORDER_INSERT, &row, &problem);
		}
		else
			OrderBatchAdd(batch, prog, &row, &target);

		if (batch->n == ORDER_BATCH_SIZE)
			FlushNewRows(batch, prog, args[ARG_PROGRAM]);
		MemoryContextSwitchTo(trigger_context);
		if (batch->n == 0)
			MemoryContextReset(batch_context);	/* nothing refers to it now */
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(batch_context);
	FlushNewRows(batch, prog, args[ARG_PROGRAM]);
	MemoryContextSwitchTo(trigger_context);
	MemoryContextDelete(batch_context);
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * A DELETE on a partition of the attached table may be half of a move (an
 * UPDATE of the partition key): when the order is still in the attached
 * table, the event is an UPDATE to the row found there (order_partition.c).
 */
static void
MovedOrderRow(TriggerData *td, char **args, const LoyaltyProgram *prog,
			  OrderEventKind *kind, HeapTuple *tuple)
{
	HeapTuple	moved;

	if (prog->orders == RelationGetRelid(td->tg_relation))
		return;
	moved = OrderPartitionMovedRow(td->tg_relation, prog->orders, args[ARG_ORDER_ID], *tuple);
	if (moved == NULL)
		return;
	*kind = ORDER_UPDATE;
	*tuple = moved;
}

/* The open orders a TRUNCATE took away (see loyalty.truncated_orders). */
static LoyaltyQuery truncated_orders = {
	"SELECT t.order_id, t.member_id, t.amount, t.currency, t.refunded_amount, t.ordered_at"
	"  FROM loyalty.truncated_orders($1, $2) t",
	2, {TEXTOID, OIDOID}
};

/*
 * TRUNCATE: every open order of the program that no other of its order
 * tables holds is gone, and closes as a DELETE would (its recorded values
 * as the row).  Each order in its own SPI connection, so memory stays flat.
 */
static void
CloseTruncatedOrders(TriggerData *td, char **args, const LoyaltyProgram *prog)
{
	Datum		qargs[2];
	SPITupleTable *rows;
	uint64		nrows;

	qargs[0] = CStringGetTextDatum(prog->code);
	qargs[1] = ObjectIdGetDatum(RelationGetRelid(td->tg_relation));
	LoyaltyRun(&truncated_orders, qargs, NULL, SPI_OK_SELECT);
	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (uint64 i = 0; i < nrows; i++)
	{
		OrderRow	row;
		OrderProblem problem = {0};

		SPI_connect();
		SPI_tuptable = rows;
		memset(&row, 0, sizeof(row));
		row.order_id = LoyaltyGetText(i, 1);
		row.member_id = LoyaltyGetText(i, 2);
		row.has_amount = !LoyaltyIsNull(i, 3);
		row.amount = row.has_amount ? LoyaltyGetDatum(i, 3) : (Datum) 0;
		row.currency = LoyaltyGetText(i, 4);
		row.has_refunded = !LoyaltyIsNull(i, 5);
		row.refunded = row.has_refunded ? LoyaltyGetDatum(i, 5) : (Datum) 0;
		row.has_time = true;
		row.ordered_at = DatumGetTimestampTz(LoyaltyGetDatum(i, 6));
		if (!ApplyEvent(prog, ORDER_DELETE, &row, &problem))
			KeepDeadLetter(args[ARG_PROGRAM], ORDER_DELETE, &row, &problem);
		SPI_finish();
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * An UPDATE that changed the order id: the old order is gone (a DELETE of
 * the old row) and the row is a new order.  Returns the kind of event the
 * new row is: INSERT when the id changed (or the old row had none).
 */
static OrderEventKind
OrderIdChange(TriggerData *td, char **args, const LoyaltyProgram *prog, const OrderRow *row)
{
	OrderRow	old_row;
	OrderProblem problem = {0};

	if (!ReadOrderRow(td->tg_relation, td->tg_trigtuple, args, prog->timezone, &old_row, &problem))
		return old_row.order_id == NULL ? ORDER_INSERT : ORDER_UPDATE;
	if (strcmp(old_row.order_id, row->order_id) == 0)
		return ORDER_UPDATE;
	if (!ApplyEvent(prog, ORDER_DELETE, &old_row, &problem))
		KeepDeadLetter(args[ARG_PROGRAM], ORDER_DELETE, &old_row, &problem);
	return ORDER_INSERT;
}

PG_FUNCTION_INFO_V1(loyalty_orders_trigger);
/* Trigger: accrues on INSERT, reverses on refund, cancel and DELETE. */
Datum
loyalty_orders_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	char	  **args;
	OrderEventKind kind;
	HeapTuple	tuple;
	LoyaltyProgram prog;
	OrderRow	row;
	OrderProblem problem = {0};
	bool		ok;

	CheckTriggerCall(fcinfo);
	args = td->tg_trigger->tgargs;
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		SPI_connect();
		if (TriggerProgram(td, args, &prog, &problem))
			CloseTruncatedOrders(td, args, &prog);
		else if (problem.reason != NULL)
			ereport(WARNING,
					(errcode(problem.sqlstate),
					 errmsg("loyalty: TRUNCATE of \"%s\" not applied: %s",
							RelationGetRelationName(td->tg_relation), problem.reason)));
		SPI_finish();
		return PointerGetDatum(NULL);
	}
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		kind = ORDER_INSERT, tuple = td->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		kind = ORDER_UPDATE, tuple = td->tg_newtuple;
	else
		kind = ORDER_DELETE, tuple = td->tg_trigtuple;

	if (kind == ORDER_UPDATE && !MappedColumnsChanged(td, args))
		return PointerGetDatum(NULL);

	SPI_connect();
	ok = TriggerProgram(td, args, &prog, &problem);
	if (!ok && problem.reason == NULL)
		;						/* not attached: ignored */
	else if (TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		AccrueNewRows(td, args, &prog, ok, &problem);
	else
	{
		if (kind == ORDER_DELETE && ok)
			MovedOrderRow(td, args, &prog, &kind, &tuple);
		ok = ReadOrderRow(td->tg_relation, tuple, args, prog.timezone, &row, &problem) && ok;
		if (ok && kind == ORDER_UPDATE)
			kind = OrderIdChange(td, args, &prog, &row);
		if (ok)
			ok = ApplyEvent(&prog, kind, &row, &problem);
		if (!ok)
			KeepDeadLetter(args[ARG_PROGRAM], kind, &row, &problem);
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
