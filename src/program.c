/*
 * program.c
 *		Reads a program's settings and terms, and caches them for the trigger.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "order_partition.h"
#include "cluster.h"
#include "program.h"
#include "tier_ladder.h"
#include "spi_util.h"

static LoyaltyQuery program_query = {
	"SELECT p.code, p.base_currency, p.archived_at IS NOT NULL, p.timezone,"
	"       s.orders IS NOT NULL, p.tier_ladder,"
	"       coalesce(s.closing_statuses, p.closing_statuses),"
	"       (SELECT pg_catalog.count(*) FROM loyalty.order_source o"
	"         WHERE o.program OPERATOR(pg_catalog.=) p.code)::pg_catalog.int4,"
	"       coalesce(s.amount_unit OPERATOR(pg_catalog.=) 'minor', false), s.timestamp_timezone"
	"  FROM loyalty.program p"
	"  LEFT JOIN loyalty.order_source s ON s.program OPERATOR(pg_catalog.=) p.code"
	"                                  AND s.orders OPERATOR(pg_catalog.=) $2"
	" WHERE p.code OPERATOR(pg_catalog.=) $1",
	2, {TEXTOID, OIDOID}
};

/* The program's closing statuses (a text[] of trimmed, lower-case names). */
static void
ClosingStatusesRead(Datum array, LoyaltyProgram *prog)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	prog->nclosing = 0;
	prog->closing = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			prog->closing[prog->nclosing++] = TextDatumGetCString(elems[i]);
}

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
	prog->archived = LoyaltyGetBool(0, 3);
	prog->timezone = LoyaltyGetText(0, 4);
	prog->attached = LoyaltyGetBool(0, 5);
	prog->orders = prog->attached ? orders_relid : InvalidOid;
	prog->ladder = LoyaltyIsNull(0, 6) ? NULL : DatumGetTierLadderP(LoyaltyGetDatum(0, 6));
	/* The table's own closing statuses when it has them, else the program's. */
	ClosingStatusesRead(LoyaltyGetDatum(0, 7), prog);
	prog->sources = LoyaltyGetInt32(0, 8);
	prog->amount_minor = LoyaltyGetBool(0, 9);
	prog->source_timezone = LoyaltyGetText(0, 10);
	LoyaltyTermsLoad(prog);		/* last: it runs a query of its own */
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
 * The accrual trigger reads the same program for every order: keep the last
 * one (and the tables it was checked attached to, partitions of a
 * partitioned orders table each on their own) for the life of the backend.
 * A statement trigger on loyalty.program, loyalty.program_terms and
 * loyalty.order_source (loyalty.invalidate_program_cache) sends a relcache invalidation for the
 * changed table whenever a row changes; every backend then drops its copy.
 * So does an invalidation of a cached table: ATTACH or DETACH PARTITION.
 */
#define PROGRAM_CACHE_RELATIONS 64

static MemoryContext program_cache_context = NULL;
static bool program_cache_valid = false;
static int	program_cache_nrels = 0;
static Oid	program_cache_rels[PROGRAM_CACHE_RELATIONS];	/* found attached */
static Oid	program_cache_orders[PROGRAM_CACHE_RELATIONS];	/* ... as part of */
static Oid	program_table = InvalidOid;
static Oid	source_table = InvalidOid;
static Oid	terms_table = InvalidOid;
static LoyaltyProgram program_cache;

static void
ProgramCacheReset(void)
{
	program_cache_valid = false;
	program_cache_nrels = 0;
	if (program_cache_context != NULL)
		MemoryContextReset(program_cache_context);
}

/* The cached entry of relid, -1 when there is none. */
static int
ProgramCacheFind(Oid relid)
{
	for (int i = 0; i < program_cache_nrels; i++)
		if (program_cache_rels[i] == relid)
			return i;
	return -1;
}

static void
ProgramCacheRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == program_table || relid == source_table ||
		relid == terms_table || ProgramCacheFind(relid) >= 0)
		ProgramCacheReset();
}

/* An aborted transaction may have created what was cached. */
static void
ProgramCacheXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
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
	CacheRegisterRelcacheCallback(ProgramCacheRelcacheCallback, (Datum) 0);
	RegisterXactCallback(ProgramCacheXactCallback, NULL);
	RegisterSubXactCallback(ProgramCacheSubXactCallback, NULL);
}

/* A deep copy of src in the current memory context. */
static void
ProgramCopy(LoyaltyProgram *dst, const LoyaltyProgram *src)
{
	*dst = *src;
	dst->code = pstrdup(src->code);
	dst->base_currency = pstrdup(src->base_currency);
	LoyaltyTermsCopy(dst, src);
	dst->timezone = pstrdup(src->timezone);
	dst->source_timezone = src->source_timezone ? pstrdup(src->source_timezone) : NULL;
	dst->closing = palloc(sizeof(char *) * Max(src->nclosing, 1));
	for (int i = 0; i < src->nclosing; i++)
		dst->closing[i] = pstrdup(src->closing[i]);
	dst->ladder = src->ladder == NULL ? NULL :
		(TierLadder *) DatumGetPointer(datumCopy(PointerGetDatum(src->ladder), false, -1));
}

/*
 * Whether two loads of a program read their tables the same way (mapping
 * options of order_source): one cache entry then serves both tables.
 */
static bool
SourceOptionsEqual(const LoyaltyProgram *a, const LoyaltyProgram *b)
{
	if (a->amount_minor != b->amount_minor || a->nclosing != b->nclosing ||
		(a->source_timezone == NULL) != (b->source_timezone == NULL) ||
		(a->source_timezone != NULL && strcmp(a->source_timezone, b->source_timezone) != 0))
		return false;
	for (int i = 0; i < a->nclosing; i++)
		if (strcmp(a->closing[i], b->closing[i]) != 0)
			return false;
	return true;
}

static void
ProgramCacheStore(const LoyaltyProgram *prog, Oid orders_relid)
{
	MemoryContext old;
	Oid			schema = get_namespace_oid("loyalty", false);

	/* Another table of the cached program: remember it too, while room. */
	if (program_cache_valid && strcmp(program_cache.code, prog->code) == 0 &&
		program_cache_nrels < PROGRAM_CACHE_RELATIONS && SourceOptionsEqual(&program_cache, prog))
	{
		program_cache_rels[program_cache_nrels] = orders_relid;
		program_cache_orders[program_cache_nrels++] = prog->orders;
		return;
	}
	if (program_cache_context == NULL)
		program_cache_context = AllocSetContextCreate(CacheMemoryContext,
													  "loyalty program cache",
													  ALLOCSET_SMALL_SIZES);
	ProgramCacheReset();
	program_table = get_relname_relid("program", schema);
	source_table = get_relname_relid("order_source", schema);
	terms_table = get_relname_relid("program_terms", schema);

	old = MemoryContextSwitchTo(program_cache_context);
	ProgramCopy(&program_cache, prog);
	program_cache.attached = true;
	MemoryContextSwitchTo(old);
	program_cache_rels[0] = orders_relid;
	program_cache_orders[0] = prog->orders;
	program_cache_nrels = 1;
	program_cache_valid = true;
}

/*
 * LoyaltyProgramLoad for the trigger: served from the cache when the same
 * program and table were found attached before.  A partition counts as
 * attached when a table it is a partition of is (prog->orders that table).
 */
bool
LoyaltyProgramLoadCached(const char *code, Oid orders_relid, LoyaltyProgram *prog)
{
	int			i;

	if (program_cache_valid && strcmp(program_cache.code, code) == 0 &&
		(i = ProgramCacheFind(orders_relid)) >= 0)
	{
		/*
		 * A copy, not the cache's own pointers: an invalidation processed
		 * while the caller still works (its own TRUNCATE's, at the first
		 * command counter increment of the trigger's SPI statements; a
		 * concurrent program change once a new relation is locked) resets
		 * the cache's memory under it.
		 */
		ProgramCopy(prog, &program_cache);
		prog->orders = program_cache_orders[i];
		return true;
	}
	if (!LoyaltyProgramLoad(code, orders_relid, prog))
		return false;
	if (!prog->attached && get_rel_relispartition(orders_relid))
	{
		Oid			ancestor = OrderPartitionAttachedAncestor(code, orders_relid);

		/* A partition reads through the mapping of the table attached. */
		if (OidIsValid(ancestor) && LoyaltyProgramLoad(code, ancestor, prog))
			prog->orders = ancestor;
		else
			prog->attached = false;
	}
	if (!prog->attached)
	{
		Oid			logical = LoyaltyShardOf(orders_relid);

		/* A Citus shard reads through the mapping of its distributed table. */
		if (OidIsValid(logical) && LoyaltyProgramLoad(code, logical, prog) && prog->attached)
			prog->orders = logical;
	}
	if (prog->attached)
		ProgramCacheStore(prog, orders_relid);
	return true;
}

PG_FUNCTION_INFO_V1(loyalty_invalidate_program_cache);
/* Trigger on program and order_source: every backend drops its cached program. */
Datum
loyalty_invalidate_program_cache(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "loyalty.invalidate_program_cache() must be called as a trigger");
	CacheInvalidateRelcache(td->tg_relation);
	/*
	 * On a Citus node it fires on a shard of the table (program_102008),
	 * which no backend's cache knows: the table itself stands for it.
	 */
	{
		char	   *name = pstrdup(RelationGetRelationName(td->tg_relation));
		char	   *suffix = strrchr(name, '_');
		Oid			table;

		if (suffix != NULL && suffix[1] != '\0' && strspn(suffix + 1, "0123456789") == strlen(suffix + 1))
		{
			*suffix = '\0';
			table = get_relname_relid(name, RelationGetNamespace(td->tg_relation));
			if (OidIsValid(table) && LoyaltyShardOf(RelationGetRelid(td->tg_relation)) == table)
				CacheInvalidateRelcacheByRelid(table);
		}
	}
	return PointerGetDatum(NULL);
}
