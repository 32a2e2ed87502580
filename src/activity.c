/*
 * activity.c
 *		Keeps each member's counted orders (loyalty.activity_total, per UTC
 *		day loyalty.activity_day) as loyalty.order_earning changes, and folds
 *		old days for the batch passes.
 *
 * The trigger runs once per statement on order_earning with its
 * transition tables: every row counts for what its state gives (see
 * 25_activity.sql), an UPDATE takes back what the old row counted and adds
 * what the new one counts, and the differences are added to the two tables
 * in batches, in key order.  Adding is commutative, so concurrent orders of
 * one member need no more than the row lock of the upsert.  When an order
 * stops counting, its member's last order time is read again from the
 * orders, in a statement after the upsert has the member's row locked.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "activity.h"
#include "cluster.h"
#include "spi_util.h"

/* Changes per upsert statement. */
#define ACTIVITY_BATCH 10000

/*
 * Days kept as day rows before a pass's window, so that a pass as of a day
 * or two earlier (a rerun) still reads the activity.
 */
#define FOLD_MARGIN_DAYS 2

static LoyaltyQuery activity_add = {
	"WITH c AS (SELECT * FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.date[], $4::pg_catalog.int4[], $5::numeric[],"
	"                                $6::pg_catalog.timestamptz[])"
	"             AS c(program, member_id, day, orders, net_spend, added_at)),"
	" d AS (INSERT INTO loyalty.activity_day AS d (program, day, member_id, orders, net_spend)"
	"       SELECT program, day, member_id, pg_catalog.sum(orders), pg_catalog.sum(net_spend) FROM c"
	"        GROUP BY program, day, member_id"
	"       HAVING pg_catalog.sum(orders) OPERATOR(pg_catalog.<>) 0"
	"           OR pg_catalog.sum(net_spend) OPERATOR(pg_catalog.<>) 0"
	"        ORDER BY program, day, member_id"
	"       ON CONFLICT (program, day, member_id) DO UPDATE"
	"       SET orders = d.orders OPERATOR(pg_catalog.+) excluded.orders,"
	"           net_spend = d.net_spend OPERATOR(pg_catalog.+) excluded.net_spend)"
	" INSERT INTO loyalty.activity_total AS t (program, member_id, orders, net_spend, last_order_at)"
	" SELECT program, member_id, pg_catalog.sum(orders), pg_catalog.sum(net_spend), pg_catalog.max(added_at) FROM c"
	"  GROUP BY program, member_id"
	" HAVING pg_catalog.sum(orders) OPERATOR(pg_catalog.<>) 0"
	"     OR pg_catalog.sum(net_spend) OPERATOR(pg_catalog.<>) 0"
	"     OR pg_catalog.max(added_at) IS NOT NULL"
	"  ORDER BY program, member_id"
	" ON CONFLICT (program, member_id) DO UPDATE"
	" SET orders = t.orders OPERATOR(pg_catalog.+) excluded.orders,"
	"     net_spend = t.net_spend OPERATOR(pg_catalog.+) excluded.net_spend,"
	"     last_order_at = greatest(t.last_order_at, excluded.last_order_at)",
	6, {TEXTARRAYOID, TEXTARRAYOID, DATEARRAYOID, INT4ARRAYOID, NUMERICARRAYOID,
	TIMESTAMPTZARRAYOID}
};

/* Members that lost an order at or after their last order time: read it again. */
static LoyaltyQuery activity_last_order = {
	"UPDATE loyalty.activity_total t"
	"   SET last_order_at = (SELECT pg_catalog.max(o.ordered_at) FROM loyalty.counted_order o"
	"                         WHERE o.program OPERATOR(pg_catalog.=) t.program"
	"                           AND o.member_id OPERATOR(pg_catalog.=) t.member_id)"
	"  FROM (SELECT program, member_id, pg_catalog.max(removed_at) AS removed_at"
	"          FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.timestamptz[]) AS r(program, member_id, removed_at)"
	"         GROUP BY program, member_id) r"
	" WHERE t.program OPERATOR(pg_catalog.=) r.program"
	"   AND t.member_id OPERATOR(pg_catalog.=) r.member_id"
	"   AND t.last_order_at OPERATOR(pg_catalog.<=) r.removed_at",
	3, {TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID}
};

/*
 * The same changes on a Citus cluster, one member's at a time (router
 * statements: the trigger runs on a shard of order_earning there, where a
 * statement over several members cannot run).  Adding is commutative, so
 * the totals are those of the batch.
 */
static LoyaltyQuery activity_day_routed = {
	"INSERT INTO loyalty.activity_day AS d (program, day, member_id, orders, net_spend)"
	" VALUES ($1, $3, $2, $4, $5)"
	" ON CONFLICT (program, day, member_id) DO UPDATE"
	" SET orders = d.orders OPERATOR(pg_catalog.+) excluded.orders,"
	"     net_spend = d.net_spend OPERATOR(pg_catalog.+) excluded.net_spend",
	5, {TEXTOID, TEXTOID, DATEOID, INT4OID, NUMERICOID}
};

static LoyaltyQuery activity_total_routed = {
	"INSERT INTO loyalty.activity_total AS t (program, member_id, orders, net_spend, last_order_at)"
	" VALUES ($1, $2, $3, $4, $5)"
	" ON CONFLICT (program, member_id) DO UPDATE"
	" SET orders = t.orders OPERATOR(pg_catalog.+) excluded.orders,"
	"     net_spend = t.net_spend OPERATOR(pg_catalog.+) excluded.net_spend,"
	"     last_order_at = greatest(t.last_order_at, excluded.last_order_at)",
	5, {TEXTOID, TEXTOID, INT4OID, NUMERICOID, TIMESTAMPTZOID}
};

static LoyaltyQuery activity_last_order_routed = {
	"UPDATE loyalty.activity_total t"
	"   SET last_order_at = (SELECT pg_catalog.max(o.ordered_at) FROM loyalty.counted_order o"
	"                         WHERE o.program OPERATOR(pg_catalog.=) $1"
	"                           AND o.member_id OPERATOR(pg_catalog.=) $2)"
	" WHERE t.program OPERATOR(pg_catalog.=) $1 AND t.member_id OPERATOR(pg_catalog.=) $2"
	"   AND t.last_order_at OPERATOR(pg_catalog.<=) $3",
	3, {TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

static LoyaltyQuery horizon_ensure = {
	"INSERT INTO loyalty.activity_horizon (program) VALUES ($1) ON CONFLICT DO NOTHING",
	1, {TEXTOID}
};

/* Day rows up to $2 (late ones included) move into activity_before. */
static LoyaltyQuery activity_fold = {
	"WITH h AS (SELECT program FROM loyalty.activity_horizon WHERE program OPERATOR(pg_catalog.=) $1"
	"           FOR UPDATE SKIP LOCKED),"
	" moved AS (DELETE FROM loyalty.activity_day d USING h"
	"            WHERE d.program OPERATOR(pg_catalog.=) h.program AND d.day OPERATOR(pg_catalog.<=) $2"
	"           RETURNING d.member_id, d.orders, d.net_spend),"
	" merged AS (INSERT INTO loyalty.activity_before AS b (program, member_id, orders, net_spend)"
	"            SELECT $1, member_id, pg_catalog.sum(orders), pg_catalog.sum(net_spend) FROM moved"
	"             GROUP BY member_id ORDER BY member_id"
	"            ON CONFLICT (program, member_id) DO UPDATE"
	"            SET orders = b.orders OPERATOR(pg_catalog.+) excluded.orders,"
	"                net_spend = b.net_spend OPERATOR(pg_catalog.+) excluded.net_spend)"
	" UPDATE loyalty.activity_horizon a SET through = greatest(a.through, $2)"
	"   FROM h WHERE a.program OPERATOR(pg_catalog.=) h.program",
	2, {TEXTOID, DATEOID}
};

/* Where order_earning keeps what counting an order needs. */
typedef struct ActivityColumns
{
	int			program;
	int			order_id;
	int			member_id;
	int			amount;
	int			fx_rate;
	int			refunded;
	int			closed;
	int			ordered_at;
} ActivityColumns;

/* What one order_earning row counts for. */
typedef struct Counted
{
	bool		counts;
	Datum		program;		/* text */
	Datum		order_id;		/* text */
	Datum		member_id;		/* text, when counts */
	TimestampTz ordered_at;
	Datum		net;			/* numeric, 4 decimals, when counts */
} Counted;

/* Differences waiting for the next upsert (room for size of each). */
typedef struct ActivityChanges
{
	int			size;
	int			n;
	Datum	   *program;
	Datum	   *member_id;
	Datum	   *day;
	Datum	   *orders;
	Datum	   *net;
	Datum	   *added_at;
	bool	   *added_null;
	int			nremoved;
	Datum	   *removed_program;
	Datum	   *removed_member;
	Datum	   *removed_at;
} ActivityChanges;

/* Room for the changes of rows rows (two each at most), up to a batch. */
static ActivityChanges *
ActivityChangesCreate(int64 rows)
{
	ActivityChanges *c = palloc0(sizeof(ActivityChanges));

	c->size = (int) Min(ACTIVITY_BATCH, 2 * rows + 2);
	c->program = palloc(sizeof(Datum) * c->size);
	c->member_id = palloc(sizeof(Datum) * c->size);
	c->day = palloc(sizeof(Datum) * c->size);
	c->orders = palloc(sizeof(Datum) * c->size);
	c->net = palloc(sizeof(Datum) * c->size);
	c->added_at = palloc(sizeof(Datum) * c->size);
	c->added_null = palloc(sizeof(bool) * c->size);
	c->removed_program = palloc(sizeof(Datum) * c->size);
	c->removed_member = palloc(sizeof(Datum) * c->size);
	c->removed_at = palloc(sizeof(Datum) * c->size);
	return c;
}

/* The UTC date a time falls on, as the date type counts (days from 2000-01-01). */
static DateADT
UtcDate(TimestampTz t)
{
	if (TIMESTAMP_IS_NOBEGIN(t))
	{
		DateADT		d;

		DATE_NOBEGIN(d);
		return d;
	}
	if (TIMESTAMP_IS_NOEND(t))
	{
		DateADT		d;

		DATE_NOEND(d);
		return d;
	}
	return (DateADT) (t / USECS_PER_DAY - (t % USECS_PER_DAY < 0 ? 1 : 0));
}

/*
 * The day row of an order time: the UTC day whose (midnight, next midnight]
 * holds it, closed at the end like the windows (the SQL twin is
 * loyalty.activity_day_of).
 */
static DateADT
ActivityDayOf(TimestampTz t)
{
	return UtcDate(TIMESTAMP_NOT_FINITE(t) ? t : t - 1);
}

static int
Column(TupleDesc desc, const char *name)
{
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "loyalty.order_earning has no column \"%s\"", name);
	return attnum;
}

static ActivityColumns
ActivityColumnsOf(TupleDesc desc)
{
	ActivityColumns c;

	c.program = Column(desc, "program");
	c.order_id = Column(desc, "order_id");
	c.member_id = Column(desc, "member_id");
	c.amount = Column(desc, "amount");
	c.fx_rate = Column(desc, "fx_rate");
	c.refunded = Column(desc, "refunded_amount");
	c.closed = Column(desc, "closed");
	c.ordered_at = Column(desc, "ordered_at");
	return c;
}

static bool
NumericLess(Datum a, Datum b)
{
	return DatumGetBool(DirectFunctionCall2(numeric_lt, a, b));
}

/*
 * What a row counts for: once, at its net value rounded to 4 decimals, when
 * it has a member, is open, has a positive amount, a rate, and something
 * left after refunds (the rule of the view loyalty.counted_order, which the
 * SQL side reads).  Values are copied: the slot is reused.
 */
static void
CountRow(TupleTableSlot *slot, const ActivityColumns *col, Counted *out)
{
	bool		null_member,
				null_amount,
				null_rate,
				isnull;
	Datum		member = slot_getattr(slot, col->member_id, &null_member);
	Datum		amount = slot_getattr(slot, col->amount, &null_amount);
	Datum		rate = slot_getattr(slot, col->fx_rate, &null_rate);
	Datum		refunded = slot_getattr(slot, col->refunded, &isnull);
	bool		closed = DatumGetBool(slot_getattr(slot, col->closed, &isnull));

	out->program = datumCopy(slot_getattr(slot, col->program, &isnull), false, -1);
	out->order_id = datumCopy(slot_getattr(slot, col->order_id, &isnull), false, -1);
	out->ordered_at = DatumGetTimestampTz(slot_getattr(slot, col->ordered_at, &isnull));
	out->counts = !null_member && !closed && !null_amount && !null_rate &&
		NumericLess(NumericGetDatum(int64_to_numeric(0)), amount) &&
		NumericLess(refunded, amount);
	if (!out->counts)
		return;
	out->member_id = datumCopy(member, false, -1);
	out->net = DirectFunctionCall2(numeric_round,
								   DirectFunctionCall2(numeric_mul,
													   DirectFunctionCall2(numeric_sub, amount, refunded),
													   rate),
								   Int32GetDatum(4));
}

/* ActivityFlush on a Citus cluster (see activity_day_routed). */
static void
ActivityFlushRouted(ActivityChanges *c)
{
	Datum		zero = NumericGetDatum(int64_to_numeric(0));

	for (int i = 0; i < c->n; i++)
	{
		bool		changes = DatumGetInt32(c->orders[i]) != 0 ||
			!DatumGetBool(DirectFunctionCall2(numeric_eq, c->net[i], zero));

		if (changes)
			LoyaltyRun(&activity_day_routed,
					   (Datum[]) {c->program[i], c->member_id[i], c->day[i], c->orders[i], c->net[i]},
					   NULL, SPI_OK_INSERT);
		if (changes || !c->added_null[i])
			LoyaltyRun(&activity_total_routed,
					   (Datum[]) {c->program[i], c->member_id[i], c->orders[i], c->net[i], c->added_at[i]},
					   c->added_null[i] ? "    n" : "     ", SPI_OK_INSERT);
	}
	for (int i = 0; i < c->nremoved; i++)
		LoyaltyRun(&activity_last_order_routed,
				   (Datum[]) {c->removed_program[i], c->removed_member[i], c->removed_at[i]},
				   NULL, SPI_OK_UPDATE);
	c->n = 0;
	c->nremoved = 0;
}

static void
ActivityFlush(ActivityChanges *c)
{
	Datum		args[6];

	if (LoyaltyDistributed())
	{
		ActivityFlushRouted(c);
		return;
	}
	if (c->n > 0)
	{
		args[0] = LoyaltyArray(c->program, NULL, c->n, TEXTOID);
		args[1] = LoyaltyArray(c->member_id, NULL, c->n, TEXTOID);
		args[2] = LoyaltyArray(c->day, NULL, c->n, DATEOID);
		args[3] = LoyaltyArray(c->orders, NULL, c->n, INT4OID);
		args[4] = LoyaltyArray(c->net, NULL, c->n, NUMERICOID);
		args[5] = LoyaltyArray(c->added_at, c->added_null, c->n, TIMESTAMPTZOID);
		LoyaltyRun(&activity_add, args, NULL, SPI_OK_INSERT);
	}
	if (c->nremoved > 0)
	{
		args[0] = LoyaltyArray(c->removed_program, NULL, c->nremoved, TEXTOID);
		args[1] = LoyaltyArray(c->removed_member, NULL, c->nremoved, TEXTOID);
		args[2] = LoyaltyArray(c->removed_at, NULL, c->nremoved, TIMESTAMPTZOID);
		LoyaltyRun(&activity_last_order, args, NULL, SPI_OK_UPDATE);
	}
	c->n = 0;
	c->nremoved = 0;
}

/* One difference: orders and net added to the member's day; added: an order time. */
static void
ActivityAdd(ActivityChanges *c, const Counted *k, int orders, Datum net, bool added)
{
	int			i = c->n++;

	c->program[i] = k->program;
	c->member_id[i] = k->member_id;
	c->day[i] = DateADTGetDatum(ActivityDayOf(k->ordered_at));
	c->orders[i] = Int32GetDatum(orders);
	c->net[i] = net;
	c->added_at[i] = TimestampTzGetDatum(k->ordered_at);
	c->added_null[i] = !added;
}

static void
ActivityCount(ActivityChanges *c, const Counted *k)
{
	ActivityAdd(c, k, 1, k->net, true);
}

static void
ActivityUncount(ActivityChanges *c, const Counted *k)
{
	int			i = c->nremoved++;

	ActivityAdd(c, k, -1, DirectFunctionCall1(numeric_uminus, k->net), false);
	c->removed_program[i] = k->program;
	c->removed_member[i] = k->member_id;
	c->removed_at[i] = TimestampTzGetDatum(k->ordered_at);
}

/* Two text values with the same bytes. */
static bool
SameText(Datum a, Datum b)
{
	return datum_image_eq(a, b, false, -1);
}

/* An order changed from old to new: the difference in what it counts for. */
static void
ActivityChange(ActivityChanges *c, const Counted *old, const Counted *new)
{
	if (old->counts && new->counts && SameText(old->program, new->program) &&
		SameText(old->member_id, new->member_id) && old->ordered_at == new->ordered_at)
	{
		/* Same member, same time: only the net value can differ (a refund). */
		if (!DatumGetBool(DirectFunctionCall2(numeric_eq, old->net, new->net)))
			ActivityAdd(c, new, 0, DirectFunctionCall2(numeric_sub, new->net, old->net), false);
		return;
	}
	if (old->counts)
		ActivityUncount(c, old);
	if (new->counts)
		ActivityCount(c, new);
}

/* Reads the next row of a transition table; false at its end. */
static bool
NextRow(Tuplestorestate *rows, TupleTableSlot *slot, const ActivityColumns *col, Counted *out)
{
	if (rows == NULL || !tuplestore_gettupleslot(rows, true, false, slot))
		return false;
	CountRow(slot, col, out);
	return true;
}

static TupleTableSlot *
RowsSlot(Tuplestorestate *rows, TupleDesc desc)
{
	if (rows == NULL)
		return NULL;
	tuplestore_select_read_pointer(rows, tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND));
	tuplestore_rescan(rows);
	return MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
}

/*
 * Walks the old and new rows side by side (an UPDATE captures them in the
 * same order; a row without its pair still adds up right, only the
 * unchanged-row shortcut is lost).
 */
static void
ActivityFromRows(TriggerData *td)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	ActivityColumns col = ActivityColumnsOf(desc);
	Tuplestorestate *old_rows = TRIGGER_FIRED_BY_INSERT(td->tg_event) ? NULL : td->tg_oldtable;
	Tuplestorestate *new_rows = TRIGGER_FIRED_BY_DELETE(td->tg_event) ? NULL : td->tg_newtable;
	TupleTableSlot *old_slot = RowsSlot(old_rows, desc);
	TupleTableSlot *new_slot = RowsSlot(new_rows, desc);
	ActivityChanges *changes = ActivityChangesCreate(Max(old_rows ? tuplestore_tuple_count(old_rows) : 0,
														 new_rows ? tuplestore_tuple_count(new_rows) : 0));
	MemoryContext rows_context = AllocSetContextCreate(CurrentMemoryContext,
													   "loyalty activity rows",
													   ALLOCSET_DEFAULT_SIZES);
	MemoryContext old_context = MemoryContextSwitchTo(rows_context);

	for (;;)
	{
		Counted		old,
					new;
		bool		has_old = NextRow(old_rows, old_slot, &col, &old);
		bool		has_new = NextRow(new_rows, new_slot, &col, &new);

		if (!has_old && !has_new)
			break;
		if (has_old && has_new && SameText(old.program, new.program) &&
			SameText(old.order_id, new.order_id))
			ActivityChange(changes, &old, &new);
		else
		{
			if (has_old && old.counts)
				ActivityUncount(changes, &old);
			if (has_new && new.counts)
				ActivityCount(changes, &new);
		}
		if (changes->n + 2 > changes->size)
		{
			ActivityFlush(changes);
			MemoryContextReset(rows_context);
		}
		CHECK_FOR_INTERRUPTS();
	}
	ActivityFlush(changes);
	MemoryContextSwitchTo(old_context);
	MemoryContextDelete(rows_context);
	if (old_slot)
		ExecDropSingleTupleTableSlot(old_slot);
	if (new_slot)
		ExecDropSingleTupleTableSlot(new_slot);
}

PG_FUNCTION_INFO_V1(loyalty_activity_trigger);
/* Trigger on loyalty.order_earning, once per statement, with transition tables. */
Datum
loyalty_activity_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("loyalty.activity_trigger() must be an AFTER ... FOR EACH STATEMENT trigger"),
				 errhint("The extension installs it on loyalty.order_earning; it serves no other table.")));
	if (!LoyaltyIsTable(td->tg_relation, "order_earning"))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("loyalty.activity_trigger() fired on \"%s\", not on loyalty.order_earning",
						RelationGetRelationName(td->tg_relation)),
				 errhint("The extension installs it on loyalty.order_earning; it serves no other table.")));
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		return PointerGetDatum(NULL);

	SPI_connect();
	ActivityFromRows(td);
	SPI_finish();
	return PointerGetDatum(NULL);
}

void
ActivityFoldBefore(const char *program, TimestampTz after)
{
	DateADT		through = UtcDate(after);
	Datum		args[2];

	if (DATE_NOT_FINITE(through))
		return;
	args[0] = CStringGetTextDatum(program);
	args[1] = DateADTGetDatum(through - 1 - FOLD_MARGIN_DAYS);
	LoyaltyRun(&horizon_ensure, args, NULL, SPI_OK_INSERT);
	LoyaltyRun(&activity_fold, args, NULL, SPI_OK_UPDATE);
}
