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
#include "cluster.h"
#include "dead_letter.h"
#include "health.h"
#include "loyalty.h"
#include "member_alias.h"
#include "order_batch.h"
#include "order_event.h"
#include "order_partition.h"
#include "order_read.h"
#include "program.h"
#include "spi_util.h"

/* Reads a row of the trigger's table (see OrderRowRead). */
static bool
ReadTriggerRow(TriggerData *td, HeapTuple tuple, char **args, const LoyaltyProgram *prog,
			   OrderRow *row, OrderProblem *problem)
{
	return OrderRowRead(RelationGetDescr(td->tg_relation), RelationGetRelationName(td->tg_relation),
						tuple, args, prog, row, problem);
}

/* Whether an UPDATE changed any mapped column (if not, nothing to do). */
static bool
MappedColumnsChanged(TriggerData *td, char **args)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);

	for (int arg = ARG_ORDER_ID; arg < TRIGGER_NARGS; arg++)
	{
		int			attnum = OrderMappedColumn(desc, args, arg);
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
	int			attnum = OrderMappedColumn(desc, args, ARG_MEMBER_ID);
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
		if (!nulls[n])
		{
			/* ... and the member it stands for (merged, forgotten: a guest). */
			text = MemberAliasResolve(args[ARG_PROGRAM], text);
			nulls[n] = text == NULL;
		}
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

	/* On a cluster every loyalty row lives with its member: a guest records nothing. */
	if (row->member_id == NULL && LoyaltyDistributed())
		return true;
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
		DeadLetterSupersede(prog->code, row->member_id, row->order_id);
		return ok;
	}
	if (!DeadLetterPending(prog->code, row->member_id, row->order_id))
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
			OrderDeadLetterKeep(program, ORDER_INSERT, &row, &problem);
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
	/*
	 * Where features price orders (tiers), orders go one by one; so they do
	 * on a Citus cluster, where this runs on a shard of the orders table (or
	 * a plain table on the coordinator) and only router statements, one
	 * member's, can reach loyalty's tables.
	 */
	bool		distributed = LoyaltyDistributed();
	bool		single = tuplestore_tuple_count(rows) == 1 || distributed || AccrualHooksApply(prog);

	tuplestore_select_read_pointer(rows, tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND));
	if (prog_ok && !distributed)
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
		else if (!ReadTriggerRow(td, tuple, args, prog, &row, &problem) ||
				 !prog_ok || !OrderRowCheck(prog, ORDER_INSERT, &row, &problem) ||
				 !OrderInsertTarget(prog, &row, &target, &problem))
			OrderDeadLetterKeep(args[ARG_PROGRAM], ORDER_INSERT, &row, &problem);
		else if (target.reversal > 0 || single)
		{

			/* Refunded already, or a one-row INSERT: the one-statement path. */
			FlushNewRows(batch, prog, args[ARG_PROGRAM]);
			if (!ApplyEvent(prog, ORDER_INSERT, &row, &problem))
				OrderDeadLetterKeep(args[ARG_PROGRAM], ORDER_INSERT, &row, &problem);
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
			OrderDeadLetterKeep(args[ARG_PROGRAM], ORDER_DELETE, &row, &problem);
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

	if (!ReadTriggerRow(td, td->tg_trigtuple, args, prog, &old_row, &problem))
		return old_row.order_id == NULL ? ORDER_INSERT : ORDER_UPDATE;
	if (strcmp(old_row.order_id, row->order_id) == 0)
		return ORDER_UPDATE;
	if (!ApplyEvent(prog, ORDER_DELETE, &old_row, &problem))
		OrderDeadLetterKeep(args[ARG_PROGRAM], ORDER_DELETE, &old_row, &problem);
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
	if (ok)
		MemberAliasBarrier();
	if (!ok && problem.reason == NULL)
		;						/* not attached: ignored */
	else if (TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		AccrueNewRows(td, args, &prog, ok, &problem);
	else
	{
		if (kind == ORDER_DELETE && ok)
			MovedOrderRow(td, args, &prog, &kind, &tuple);
		ok = ReadTriggerRow(td, tuple, args, &prog, &row, &problem) && ok;
		if (ok && kind == ORDER_UPDATE)
			kind = OrderIdChange(td, args, &prog, &row);
		if (ok)
			ok = ApplyEvent(&prog, kind, &row, &problem);
		if (!ok)
			OrderDeadLetterKeep(args[ARG_PROGRAM], kind, &row, &problem);
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
