/*
 * accrual_trigger.c
 *		The AFTER ROW trigger on the application's orders table.
 *
 * Created by loyalty.attach_orders() with arguments: program, then the
 * column names of order id, member id, amount, currency, status, refunded
 * amount and created at ('' where not mapped).  It reads those columns,
 * hands the event to OrderEventApply() and, when the program's configuration
 * cannot price the order, keeps the event in loyalty.dead_letter with a
 * WARNING: a valid order insert never fails because of loyalty.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/formatting.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "dead_letter.h"
#include "loyalty.h"
#include "order_event.h"
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

/* An amount column (numeric, integer or float types) as numeric. */
static bool
ColumnNumeric(HeapTuple tuple, TupleDesc desc, int attnum, Datum *out)
{
	bool		isnull;
	Datum		d;

	if (attnum <= 0)
		return false;
	d = SPI_getbinval(tuple, desc, attnum, &isnull);
	if (isnull)
		return false;
	switch (SPI_gettypeid(desc, attnum))
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
 * program's time zone: a shop's local order time.
 */
static bool
ColumnTime(HeapTuple tuple, TupleDesc desc, int attnum, const char *timezone,
		   TimestampTz *out)
{
	bool		isnull;
	Datum		d;
	Datum		zone = CStringGetTextDatum(timezone);

	if (attnum <= 0)
		return false;
	d = SPI_getbinval(tuple, desc, attnum, &isnull);
	if (isnull)
		return false;
	switch (SPI_gettypeid(desc, attnum))
	{
		case TIMESTAMPTZOID:
			*out = DatumGetTimestampTz(d);
			break;
		case TIMESTAMPOID:
			*out = DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone, zone, d));
			break;
		case DATEOID:
			*out = DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone, zone,
														   DirectFunctionCall1(date_timestamp, d)));
			break;
		default:
			return false;
	}
	return !TIMESTAMP_NOT_FINITE(*out);
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

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("loyalty.orders_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		td->tg_trigger->tgnargs != TRIGGER_NARGS)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("loyalty.orders_trigger() must be an AFTER ROW trigger with %d arguments",
						TRIGGER_NARGS),
				 errhint("Install it with loyalty.attach_orders().")));
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
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		kind = ORDER_INSERT, tuple = td->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		kind = ORDER_UPDATE, tuple = td->tg_newtuple;
	else
		kind = ORDER_DELETE, tuple = td->tg_trigtuple;

	if (kind == ORDER_UPDATE && !MappedColumnsChanged(td, args))
		return PointerGetDatum(NULL);

	SPI_connect();
	ok = LoyaltyProgramLoad(args[ARG_PROGRAM], RelationGetRelid(td->tg_relation), &prog);
	if (ok && !prog.attached)
	{
		/* Not an order source of the program: nothing to keep or replay. */
		ereport(WARNING,
				(errcode(ERRCODE_LOYALTY_SOURCE_NOT_ATTACHED),
				 errmsg("loyalty: relation \"%s\" is not attached to program \"%s\"; event ignored",
						RelationGetRelationName(td->tg_relation), args[ARG_PROGRAM]),
				 errhint("Attach order tables with loyalty.attach_orders(), not CREATE TRIGGER.")));
		SPI_finish();
		return PointerGetDatum(NULL);
	}
	ok = ReadOrderRow(td->tg_relation, tuple, args, ok ? prog.timezone : "UTC", &row, &problem) && ok;
	if (problem.reason == NULL && !ok)
	{
		problem.sqlstate = ERRCODE_UNDEFINED_OBJECT;
		problem.reason = psprintf("program \"%s\" does not exist", args[ARG_PROGRAM]);
	}

	if (ok)
		ok = OrderEventApply(&prog, kind, &row, false, &problem);
	if (!ok)
	{
		DeadLetterWrite(args[ARG_PROGRAM], kind, &row, &problem);
		ereport(WARNING,
				(errcode(problem.sqlstate),
				 errmsg("loyalty: %s of order \"%s\" kept in loyalty.dead_letter: %s",
						OrderEventName(kind), row.order_id ? row.order_id : "(null)",
						problem.reason),
				 errhint("Fix the program's configuration, then run loyalty.retry_dead_letters('%s').",
						 args[ARG_PROGRAM])));
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
