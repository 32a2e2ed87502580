/*
 * program.c
 *		Reads a program's settings and derives lot times from them.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "program.h"
#include "spi_util.h"

static LoyaltyQuery program_query = {
	"SELECT p.code, p.base_currency, p.earn_rate, p.pending_days, p.expire_after,"
	"       p.refund_policy = 'within_balance', p.timezone, s.orders IS NOT NULL"
	"  FROM loyalty.program p"
	"  LEFT JOIN loyalty.order_source s ON s.program = p.code AND s.orders = $2"
	" WHERE p.code = $1",
	2, {TEXTOID, OIDOID}
};

/*
 * Loads a program into prog (in the current SPI memory context).  When
 * orders_relid is valid, prog->attached tells whether that table is attached.
 * Returns false when the program does not exist.
 */
bool
LoyaltyProgramLoad(const char *code, Oid orders_relid, LoyaltyProgram *prog)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(code);
	args[1] = ObjectIdGetDatum(orders_relid);
	LoyaltyRun(&program_query, args, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;

	prog->code = LoyaltyGetText(0, 1);
	prog->base_currency = LoyaltyGetText(0, 2);
	prog->earn_rate = LoyaltyGetDatum(0, 3);
	prog->pending_days = LoyaltyGetInt32(0, 4);
	prog->expires = !LoyaltyIsNull(0, 5);
	prog->expire_after = prog->expires ? LoyaltyGetDatum(0, 5) : (Datum) 0;
	prog->within_balance = LoyaltyGetBool(0, 6);
	prog->timezone = LoyaltyGetText(0, 7);
	prog->attached = LoyaltyGetBool(0, 8);
	return true;
}

/* Like LoyaltyProgramLoad, but a missing program is the caller's error. */
void
LoyaltyProgramRequire(const char *code, LoyaltyProgram *prog)
{
	if (!LoyaltyProgramLoad(code, InvalidOid, prog))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("program \"%s\" does not exist", code),
				 errhint("Create it with loyalty.create_program().")));
}

/*
 * The accrual trigger reads the same program for every row of a statement:
 * keep the last one for the rest of the transaction.  Programs cannot be
 * changed by the API, only created, so a cached copy cannot go stale
 * within a transaction; it is dropped at its end (and on any subtransaction
 * abort, in case the program was created in it).
 */
static bool program_cache_valid = false;
static Oid	program_cache_relid = InvalidOid;
static LoyaltyProgram program_cache;

static void
ProgramCacheReset(void)
{
	program_cache_valid = false;
}

static void
ProgramCacheXactCallback(XactEvent event, void *arg)
{
	ProgramCacheReset();
}

static void
ProgramCacheSubXactCallback(SubXactEvent event, SubTransactionId my_subid,
							SubTransactionId parent_subid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		ProgramCacheReset();
}

void
LoyaltyProgramCacheInit(void)
{
	RegisterXactCallback(ProgramCacheXactCallback, NULL);
	RegisterSubXactCallback(ProgramCacheSubXactCallback, NULL);
}

/*
 * LoyaltyProgramLoad for the trigger: served from the transaction's cache
 * when the same program and table were attached-checked before.
 */
bool
LoyaltyProgramLoadCached(const char *code, Oid orders_relid, LoyaltyProgram *prog)
{
	MemoryContext old;

	if (program_cache_valid && program_cache_relid == orders_relid &&
		strcmp(program_cache.code, code) == 0)
	{
		*prog = program_cache;
		return true;
	}
	if (!LoyaltyProgramLoad(code, orders_relid, prog))
		return false;
	if (!prog->attached)
		return true;			/* not worth keeping: no trigger should fire */

	old = MemoryContextSwitchTo(TopTransactionContext);
	program_cache.code = pstrdup(prog->code);
	program_cache.base_currency = pstrdup(prog->base_currency);
	program_cache.earn_rate = datumCopy(prog->earn_rate, false, -1);
	program_cache.pending_days = prog->pending_days;
	program_cache.expires = prog->expires;
	program_cache.expire_after = prog->expires ?
		datumCopy(prog->expire_after, false, sizeof(Interval)) : (Datum) 0;
	program_cache.within_balance = prog->within_balance;
	program_cache.timezone = pstrdup(prog->timezone);
	program_cache.attached = true;
	MemoryContextSwitchTo(old);
	program_cache_relid = orders_relid;
	program_cache_valid = true;
	return true;
}

/* Points earned at earned_at may be spent pending_days later. */
TimestampTz
LoyaltyAvailableAt(const LoyaltyProgram *prog, TimestampTz earned_at)
{
	Interval	pending = {0};

	if (prog->pending_days == 0)
		return earned_at;
	pending.day = prog->pending_days;
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												   TimestampTzGetDatum(earned_at),
												   PointerGetDatum(&pending)));
}

/* Sets *expires_at and returns true when the program's points expire. */
bool
LoyaltyExpiresAt(const LoyaltyProgram *prog, TimestampTz earned_at, TimestampTz *expires_at)
{
	if (!prog->expires)
		return false;
	*expires_at = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														  TimestampTzGetDatum(earned_at),
														  prog->expire_after));
	return true;
}
