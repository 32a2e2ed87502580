/*
 * signal_trigger.c
 *		The signal trigger attach_orders() installs when signal columns are
 *		mapped: the keyed hashes of each new order's signals, written in one
 *		set-based statement per INSERT.
 *
 * AFTER INSERT FOR EACH STATEMENT with the new rows as the transition
 * table loyalty_new_signals.  Arguments: program, the order id, member id
 * and created at columns, then the six signal columns in the order of
 * SignalKinds ('' where not mapped).  The current key is read once; one
 * INSERT ... SELECT over the transition table hashes every row with it
 * (loyalty.signal_digest) into loyalty.order_signal.  Values are read as
 * text through their type's output function (format('%s')), as the
 * accrual trigger reads ids.
 *
 * The order insert is sacred: a mapped column dropped or renamed since
 * leaves its signal NULL, and a missing key or program writes nothing.
 * The statement is built from the columns as they are now and its plan
 * kept per trigger, made again when the text or the layout it was made
 * for (every column's number and type) changes.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "member_alias.h"
#include "program.h"
#include "signal_hash.h"
#include "spi_util.h"

enum
{
	SIG_ARG_PROGRAM,
	SIG_ARG_ORDER_ID,
	SIG_ARG_MEMBER_ID,
	SIG_ARG_CREATED_AT,
	SIG_ARG_FIRST_SIGNAL,
	SIG_NARGS = SIG_ARG_FIRST_SIGNAL + SIGNAL_ORDER_KINDS
};

/* The statement and plan of one trigger. */
typedef struct SignalPlan
{
	Oid			tgoid;			/* hash key */
	char	   *ident;			/* layout and text, in TopMemoryContext */
	SPIPlanPtr	plan;
} SignalPlan;

static HTAB *signal_plans = NULL;

static void
CheckSignalTriggerCall(FunctionCallInfo fcinfo)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("loyalty.signal_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(td->tg_event) || td->tg_newtable == NULL ||
		td->tg_trigger->tgnargs != SIG_NARGS)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("loyalty.signal_trigger() must be an AFTER INSERT statement trigger with a transition table, with %d arguments",
						SIG_NARGS),
				 errhint("Install it with loyalty.attach_orders().")));
}

/* The number of a mapped column, 0 when not mapped or gone. */
static AttrNumber
SignalColumn(TupleDesc desc, const char *name)
{
	if (name[0] == '\0')
		return 0;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return 0;
}

/*
 * The order time: a timestamp without time zone or a date is read in the
 * program's time zone ($4), as the accrual trigger reads it; a time out of
 * the range 1900 to 9999 or a column not mapped reads as the transaction's
 * start, as it does for an order without a time.
 */
static void
AppendOrderTime(StringInfo sql, StringInfo layout, TupleDesc desc, const char *name)
{
	AttrNumber	attnum = SignalColumn(desc, name);
	Oid			type = attnum > 0 ? getBaseType(TupleDescAttr(desc, attnum - 1)->atttypid) : InvalidOid;
	const char *col = quote_identifier(name);

	if (type == TIMESTAMPTZOID)
		appendStringInfo(sql, "coalesce(n.%s, pg_catalog.transaction_timestamp())", col);
	else if (type == TIMESTAMPOID || type == DATEOID)
	{
		const char *t = type == DATEOID ? "pg_catalog.date" : "pg_catalog.timestamp";

		appendStringInfo(sql,
						 "coalesce(CASE WHEN n.%s OPERATOR(pg_catalog.>=) '1900-01-01'::%s"
						 " AND n.%s OPERATOR(pg_catalog.<) '9999-01-01'::%s"
						 " THEN pg_catalog.timezone($4, n.%s::pg_catalog.timestamp) END,"
						 " pg_catalog.transaction_timestamp())",
						 col, t, col, t, col);
	}
	else
		appendStringInfoString(sql, "pg_catalog.transaction_timestamp()");
	appendStringInfo(layout, "%d:%u ", attnum, type);
}

/*
 * The statement that writes the signals of the new rows, or NULL when the
 * order id column is gone (the accrual trigger keeps those rows in its
 * dead letters).  layout gets the number and type of every column it reads.
 */
static char *
SignalInsertSql(TupleDesc desc, char **args, StringInfo layout)
{
	StringInfoData sql;
	AttrNumber	order_col = SignalColumn(desc, args[SIG_ARG_ORDER_ID]);
	AttrNumber	member_col = SignalColumn(desc, args[SIG_ARG_MEMBER_ID]);
	const char *order_id = quote_identifier(args[SIG_ARG_ORDER_ID]);

	if (order_col == 0)
		return NULL;
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO loyalty.order_signal (program, order_id, member_id, ordered_at, key_id,"
					 " ip, device_id, payment_fingerprint, shipping_address, billing_country, ip_country)"
					 " SELECT $1, pg_catalog.format('%%s', n.%s), ", order_id);
	/* The member the accrual trigger credits: merged ids resolved, forgotten ones a guest's. */
	if (member_col > 0 && MemberAliasesExist())
		appendStringInfo(&sql, "CASE WHEN n.%s IS NOT NULL THEN loyalty.member_alias($1, pg_catalog.format('%%s', n.%s)) END, ",
						 quote_identifier(args[SIG_ARG_MEMBER_ID]),
						 quote_identifier(args[SIG_ARG_MEMBER_ID]));
	else if (member_col > 0)
		appendStringInfo(&sql, "CASE WHEN n.%s IS NOT NULL THEN pg_catalog.format('%%s', n.%s) END, ",
						 quote_identifier(args[SIG_ARG_MEMBER_ID]),
						 quote_identifier(args[SIG_ARG_MEMBER_ID]));
	else
		appendStringInfoString(&sql, "NULL, ");
	appendStringInfo(layout, "%d:%u %d:%u ", order_col, TupleDescAttr(desc, order_col - 1)->atttypid,
					 member_col, member_col > 0 ? TupleDescAttr(desc, member_col - 1)->atttypid : InvalidOid);
	AppendOrderTime(&sql, layout, desc, args[SIG_ARG_CREATED_AT]);
	appendStringInfoString(&sql, ", $3");
	for (int k = 0; k < SIGNAL_ORDER_KINDS; k++)
	{
		const char *name = args[SIG_ARG_FIRST_SIGNAL + k];
		AttrNumber	attnum = SignalColumn(desc, name);

		if (attnum > 0)
		{
			appendStringInfo(&sql, ", loyalty.signal_digest($2, '%s', pg_catalog.format('%%s', n.%s))",
							 SignalKinds[k], quote_identifier(name));
			appendStringInfo(layout, "%d:%u ", attnum, TupleDescAttr(desc, attnum - 1)->atttypid);
		}
		else
			appendStringInfoString(&sql, ", NULL::pg_catalog.bytea");
	}
	appendStringInfo(&sql,
					 " FROM loyalty_new_signals n WHERE n.%s IS NOT NULL"
					 " ON CONFLICT DO NOTHING", order_id);
	return sql.data;
}

/* The kept plan of a trigger's statement, made again when ident (layout and text) changed. */
static SPIPlanPtr
SignalPlanFor(Oid tgoid, const char *sql, const char *ident)
{
	static Oid	argtypes[4] = {TEXTOID, BYTEAOID, INT4OID, TEXTOID};
	SignalPlan *entry;
	bool		found;

	if (signal_plans == NULL)
	{
		HASHCTL		ctl = {0};

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(SignalPlan);
		signal_plans = hash_create("loyalty signal plans", 16, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	entry = hash_search(signal_plans, &tgoid, HASH_ENTER, &found);
	if (!found)
		entry->ident = NULL;
	if (entry->ident != NULL && strcmp(entry->ident, ident) == 0)
		return entry->plan;
	if (entry->ident != NULL)
	{
		pfree(entry->ident);
		SPI_freeplan(entry->plan);
	}
	/* No ident until the plan is kept: an error below leaves it to be made again. */
	entry->ident = NULL;
	/* One generic plan: the statement's shape never depends on its arguments. */
	entry->plan = SPI_prepare_cursor(sql, 4, argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (entry->plan == NULL)
	{
		hash_search(signal_plans, &tgoid, HASH_REMOVE, NULL);
		elog(ERROR, "loyalty: SPI_prepare failed for the signal statement: %s",
			 SPI_result_code_string(SPI_result));
	}
	SPI_keepplan(entry->plan);
	entry->ident = MemoryContextStrdup(TopMemoryContext, ident);
	return entry->plan;
}

PG_FUNCTION_INFO_V1(loyalty_signal_trigger);
/* The signal trigger (see the file's comment). */
Datum
loyalty_signal_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	char	  **args;
	LoyaltyProgram prog;
	SignalKey	key;
	char	   *sql;
	StringInfoData layout;
	Datum		values[4];
	bytea	   *key_bytes;
	int			rc;

	CheckSignalTriggerCall(fcinfo);
	args = td->tg_trigger->tgargs;
	if (tuplestore_tuple_count(td->tg_newtable) == 0)
		return PointerGetDatum(NULL);

	initStringInfo(&layout);
	SPI_connect();
	/* A program gone or a table not attached: the accrual trigger says so. */
	if (!LoyaltyProgramLoadCached(args[SIG_ARG_PROGRAM], RelationGetRelid(td->tg_relation), &prog) ||
		!prog.attached ||
		(sql = SignalInsertSql(RelationGetDescr(td->tg_relation), args, &layout)) == NULL)
	{
		SPI_finish();
		return PointerGetDatum(NULL);
	}
	if (!SignalKeyCurrent(&key))
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("loyalty: no current signal key: the signals of these orders are not kept"),
				 errhint("Make one with loyalty.rotate_signal_key().")));
		SPI_finish();
		return PointerGetDatum(NULL);
	}
	key_bytes = palloc(VARHDRSZ + SIGNAL_KEY_BYTES);
	SET_VARSIZE(key_bytes, VARHDRSZ + SIGNAL_KEY_BYTES);
	memcpy(VARDATA(key_bytes), key.key, SIGNAL_KEY_BYTES);
	values[0] = CStringGetTextDatum(prog.code);
	values[1] = PointerGetDatum(key_bytes);
	values[2] = Int32GetDatum(key.id);
	values[3] = CStringGetTextDatum(prog.timezone);

	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "loyalty: could not register the transition table");
	appendStringInfoString(&layout, sql);
	rc = SPI_execute_plan(SignalPlanFor(td->tg_trigger->tgoid, sql, layout.data), values, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "loyalty: writing order signals failed: %s", SPI_result_code_string(rc));
	memset(VARDATA(key_bytes), 0, SIGNAL_KEY_BYTES);
	SPI_finish();
	return PointerGetDatum(NULL);
}
