/*
 * order_read.c
 *		Reading an orders row through its mapping, and keeping an event
 *		loyalty cannot apply in the dead letters (see order_read.h).
 *
 * The mapping's options (order_source: amount_unit, timestamp_timezone)
 * are applied here, so every figure downstream is in major units of the
 * order's currency and every time is a timestamptz.
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/formatting.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "dead_letter.h"
#include "member_alias.h"
#include "order_read.h"

/* Column number of a mapped column, 0 when not mapped, -1 when missing. */
int
OrderMappedColumn(TupleDesc desc, char **args, int arg)
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
MappedTypeUsable(TupleDesc desc, const char *relname, char **args, const int *cols, int arg,
				 const Oid *types, int ntypes, OrderProblem *problem)
{
	Oid			type;

	if (cols[arg] <= 0)
		return true;
	type = ColumnBaseType(desc, cols[arg]);
	for (int i = 0; i < ntypes; i++)
		if (types[i] == type)
			return true;
	problem->sqlstate = ERRCODE_DATATYPE_MISMATCH;
	problem->reason = psprintf("column \"%s\" of relation \"%s\" has type %s, which loyalty cannot read as %s",
							   args[arg], relname, format_type_be(TupleDescAttr(desc, cols[arg] - 1)->atttypid),
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
 * An amount_unit 'minor' mapping: the amount columns hold minor units of
 * the order's currency (ISO 4217: cents for USD, yen for JPY); loyalty
 * keeps major units.  A currency without a known minor unit cannot be
 * read: its amounts are dropped (a dead letter must never keep minor units
 * that a replay would read as major ones).
 */
static bool
AmountsToMajor(const LoyaltyProgram *prog, OrderRow *row, OrderProblem *problem)
{
	const char *currency = row->currency ? row->currency : prog->base_currency;
	int			minor = CurrencyMinorUnit(currency, strlen(currency));
	Datum		unit;

	if (minor < 0)
	{
		row->has_amount = row->has_refunded = false;
		problem->sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
		problem->reason = psprintf("currency \"%s\" is not an ISO 4217 code, so the minor units of its amount cannot be read",
								   currency);
		return false;
	}
	unit = NumericGetDatum(int64_div_fast_to_numeric(1, minor));
	if (row->has_amount)
		row->amount = DirectFunctionCall2(numeric_mul, row->amount, unit);
	if (row->has_refunded)
		row->refunded = DirectFunctionCall2(numeric_mul, row->refunded, unit);
	return true;
}

/*
 * Reads the mapped columns of tuple.  Returns false, with the problem set,
 * when a mapped column has been dropped or renamed since attach_orders().
 */
bool
OrderRowRead(TupleDesc desc, const char *relname, HeapTuple tuple, char **args,
			 const LoyaltyProgram *prog, OrderRow *row, OrderProblem *problem)
{
	int			cols[TRIGGER_NARGS];
	const char *timezone = prog->source_timezone ? prog->source_timezone : prog->timezone;

	memset(row, 0, sizeof(*row));
	for (int arg = ARG_ORDER_ID; arg < TRIGGER_NARGS; arg++)
		cols[arg] = OrderMappedColumn(desc, args, arg);

	row->order_id = ColumnText(tuple, desc, cols[ARG_ORDER_ID]);
	row->member_id = ColumnText(tuple, desc, cols[ARG_MEMBER_ID]);
	/* A merged member's orders are its new member's; a forgotten one's a guest's. */
	row->member_id = MemberAliasResolve(args[ARG_PROGRAM], row->member_id);
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
									   args[arg], relname);
			return false;
		}
	if (!MappedTypeUsable(desc, relname, args, cols, ARG_AMOUNT, amount_types, lengthof(amount_types), problem) ||
		!MappedTypeUsable(desc, relname, args, cols, ARG_REFUNDED, amount_types, lengthof(amount_types), problem) ||
		!MappedTypeUsable(desc, relname, args, cols, ARG_CREATED_AT, time_types, lengthof(time_types), problem))
		return false;
	if (row->order_id == NULL)
	{
		/* Kept for a person to look at: without an id it cannot be replayed. */
		problem->sqlstate = ERRCODE_NULL_VALUE_NOT_ALLOWED;
		problem->reason = psprintf("order id column \"%s\" is null", args[ARG_ORDER_ID]);
		return false;
	}
	if (prog->amount_minor)
		return AmountsToMajor(prog, row, problem);
	return true;
}


/*
 * Keeps an event loyalty cannot apply now, with a WARNING.  A value the
 * program cannot use (SQLSTATE class 22) is fixed in the order row: the
 * row as changed then replaces the letter.
 */
void
OrderDeadLetterKeep(const char *program, OrderEventKind kind, const OrderRow *row,
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

