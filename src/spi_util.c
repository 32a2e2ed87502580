/*
 * spi_util.c
 *		Saved SPI plans and typed access to their result rows.
 *
 * Every statement lives in a static LoyaltyQuery next to the code that uses
 * it; it is planned once per backend and kept.  Callers are inside
 * SPI_connect()/SPI_finish(); values are always passed as parameters.
 */
#include "postgres.h"

#include "nodes/params.h"
#include "tcop/dest.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "spi_util.h"

/* The query's plan, prepared and kept on first use. */
static SPIPlanPtr
LoyaltyPlan(LoyaltyQuery *query)
{
	if (query->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(query->sql, query->nargs, query->argtypes,
											  query->by_member ? CURSOR_OPT_CUSTOM_PLAN : 0);

		if (plan == NULL)
			elog(ERROR, "loyalty: could not prepare \"%s\": %s",
				 query->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "loyalty: could not keep plan for \"%s\"", query->sql);
		query->plan = plan;
	}
	return query->plan;
}

/*
 * Runs a query with its arguments and checks the SPI return code, so a
 * caller can trust SPI_tuptable afterwards.
 */
int
LoyaltyRun(LoyaltyQuery *query, Datum *values, const char *nulls, int expected_rc)
{
	int			rc;

	rc = SPI_execute_plan(LoyaltyPlan(query), values, nulls, false, 0);
	if (rc != expected_rc)
		elog(ERROR, "loyalty: \"%s\" returned %s, expected %s",
			 query->sql, SPI_result_code_string(rc),
			 SPI_result_code_string(expected_rc));
	return rc;
}

/* Passes each result row of a streamed query to its callback. */
typedef struct RowReceiver
{
	DestReceiver pub;
	LoyaltyRowFn fn;
	void	   *arg;
	MemoryContext keep;			/* the caller's */
	MemoryContext row;			/* where fn runs, reset after each row */
	uint64		rows;
} RowReceiver;

static bool
RowReceive(TupleTableSlot *slot, DestReceiver *self)
{
	RowReceiver *r = (RowReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(r->row);

	slot_getallattrs(slot);
	r->fn(slot->tts_values, slot->tts_isnull, r->keep, r->arg);
	r->rows++;
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->row);
	return true;
}

/* Nothing to set up, end or free: the receiver lives on LoyaltyStream's stack. */
static void
RowStartup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
RowNothing(DestReceiver *self)
{
}

/*
 * Runs a query and hands each row's values to fn (with arg), without
 * collecting the rows in SPI_tuptable: for results of a million rows.
 * fn runs in a memory context reset after each row and may not run
 * statements; what it keeps of a row it must allocate in keep (the
 * caller's context).  Returns the rows.
 */
uint64
LoyaltyStream(LoyaltyQuery *query, Datum *values, const char *nulls, LoyaltyRowFn fn, void *arg)
{
	RowReceiver receiver = {{RowReceive, RowStartup, RowNothing, RowNothing, DestNone},
		fn, arg, CurrentMemoryContext,
	AllocSetContextCreate(CurrentMemoryContext, "loyalty streamed row", ALLOCSET_SMALL_SIZES), 0};
	ParamListInfo params = makeParamList(query->nargs);
	SPIExecuteOptions options = {0};
	int			rc;

	for (int i = 0; i < query->nargs; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = nulls != NULL && nulls[i] == 'n';
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = query->argtypes[i];
	}
	/* None when there are none: Citus 13 copies an empty list as NULL and crashes on it. */
	options.params = query->nargs > 0 ? params : NULL;
	options.dest = (DestReceiver *) &receiver;
	/* A SELECT sending its rows elsewhere than SPI reports SPI_OK_UTILITY. */
	rc = SPI_execute_plan_extended(LoyaltyPlan(query), &options);
	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "loyalty: \"%s\" returned %s, expected SPI_OK_UTILITY",
			 query->sql, SPI_result_code_string(rc));
	MemoryContextDelete(receiver.row);
	return receiver.rows;
}

bool
LoyaltyIsNull(int row, int col)
{
	bool		isnull;

	(void) SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
	return isnull;
}

/* The raw Datum of a column that must not be NULL. */
Datum
LoyaltyGetDatum(int row, int col)
{
	bool		isnull;
	Datum		d;

	d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
	if (isnull)
		elog(ERROR, "loyalty: unexpected NULL in column %d of \"%s\"", col,
			 SPI_fname(SPI_tuptable->tupdesc, col));
	return d;
}

int64
LoyaltyGetInt64(int row, int col)
{
	return DatumGetInt64(LoyaltyGetDatum(row, col));
}

int32
LoyaltyGetInt32(int row, int col)
{
	return DatumGetInt32(LoyaltyGetDatum(row, col));
}

bool
LoyaltyGetBool(int row, int col)
{
	return DatumGetBool(LoyaltyGetDatum(row, col));
}

/* A text column as a C string, NULL when the column is NULL. */
char *
LoyaltyGetText(int row, int col)
{
	bool		isnull;
	Datum		d;

	d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

Datum
LoyaltyTextOrNull(const char *str, char *null_flag)
{
	*null_flag = (str == NULL) ? 'n' : ' ';
	return (str == NULL) ? (Datum) 0 : CStringGetTextDatum(str);
}

/* Arrays carry a batch of rows into one statement (unnest on the SQL side). */
Datum
LoyaltyArray(Datum *values, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, elemtype,
											  typlen, typbyval, typalign));
}
