/*
 * tier_state.c
 *		Members' tiers: the multiplier an order earns at, the upgrade a
 *		qualifying order gives at once, and loyalty.recalculate_tiers().
 *
 * A member's basis value is measured over the ladder's rolling window
 * ending at a time: net spend in base currency (orders less refunds),
 * orders with something left after refunds, or points earned (less
 * reversals).  Upgrades happen at once; downgrades only in a
 * recalculation, after the grace period, one level at a time (downgrade
 * step) or straight to the qualifying level (downgrade drop), never below
 * a floor that support set.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "activity.h"
#include "cluster.h"
#include "health.h"
#include "loyalty.h"
#include "program.h"
#include "spi_util.h"
#include "tier_ladder.h"
#include "accrual_hook.h"
#include "tier_state.h"

/*
 * A member's basis value over (as_of - window days, as_of], per basis:
 * $1 program, $2 as_of, $3 window days.  Spend and orders come from the
 * activity the trigger keeps (one row per member), points from the ledger.
 * WINDOW_FROM is $2 - $3 * interval '1 day', in parentheses: OPERATOR(...)
 * binds like any other operator, left to right, so the grouping that * and
 * - had by precedence is written out.
 */
#define WINDOW_FROM \
	"($2 OPERATOR(pg_catalog.-) ($3 OPERATOR(pg_catalog.*) interval '1 day'))"
#define EARNED_OR_REVERSED(kind) \
	"loyalty.ledger_kind_class(" kind ") OPERATOR(pg_catalog.=) ANY (ARRAY['earned', 'reversed'])"
#define SPEND_BASIS \
	"SELECT member_id, net_spend AS value" \
	"  FROM loyalty.member_activity($1, " WINDOW_FROM ", $2)"
#define POINTS_BASIS \
	"SELECT member_id, pg_catalog.sum(points)::numeric AS value FROM loyalty.ledger" \
	" WHERE program OPERATOR(pg_catalog.=) $1 AND " EARNED_OR_REVERSED("kind") \
	"   AND occurred_at OPERATOR(pg_catalog.>) " WINDOW_FROM \
	"   AND occurred_at OPERATOR(pg_catalog.<=) $2 GROUP BY member_id"
#define ORDERS_BASIS \
	"SELECT member_id, orders::numeric AS value" \
	"  FROM loyalty.member_activity($1, " WINDOW_FROM ", $2)"
/* The same on a Citus cluster (member_activity in the form Citus runs). */
#define SPEND_BASIS_CLUSTER \
	"SELECT member_id, net_spend AS value" \
	"  FROM loyalty.member_activity_cluster($1, " WINDOW_FROM ", $2)"
#define ORDERS_BASIS_CLUSTER \
	"SELECT member_id, orders::numeric AS value" \
	"  FROM loyalty.member_activity_cluster($1, " WINDOW_FROM ", $2)"

/*
 * One member's value ($4 the member), straight from its orders (the rule of
 * loyalty.counted_order) or ledger rows.
 */
#define MEMBER_ORDERS(value, who) \
	"SELECT " value " FROM loyalty.counted_order o" \
	" WHERE o.program OPERATOR(pg_catalog.=) $1 AND o.member_id OPERATOR(pg_catalog.=) " who \
	"   AND o.ordered_at OPERATOR(pg_catalog.>) " WINDOW_FROM \
	"   AND o.ordered_at OPERATOR(pg_catalog.<=) $2"
#define MEMBER_SPEND(who) MEMBER_ORDERS("coalesce(pg_catalog.sum(o.net), 0)", who)
#define MEMBER_ORDER_COUNT(who) MEMBER_ORDERS("pg_catalog.count(*)::numeric", who)
#define MEMBER_POINTS(who) \
	"SELECT coalesce(pg_catalog.sum(l.points), 0)::numeric FROM loyalty.ledger l" \
	" WHERE l.program OPERATOR(pg_catalog.=) $1 AND l.member_id OPERATOR(pg_catalog.=) " who \
	"   AND " EARNED_OR_REVERSED("l.kind") \
	"   AND l.occurred_at OPERATOR(pg_catalog.>) " WINDOW_FROM \
	"   AND l.occurred_at OPERATOR(pg_catalog.<=) $2"

/*
 * A chunk of members after $4 (at most $5), each with its value from its own
 * rows (an index scan per member), for runs in committed chunks.
 */
#define CHUNK_MEMBERS(basis) \
	"SELECT m.member_id, m.tier, m.tier_below_since, m.tier_floor, m.tier_floor_until," \
	"       (" basis ")" \
	"  FROM (SELECT * FROM loyalty.member" \
	"         WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.>) $4" \
	"         ORDER BY member_id LIMIT $5) m" \
	" ORDER BY m.member_id"

/*
 * The same on a Citus cluster, which cannot run a correlated subquery beside
 * a subquery in FROM: the member's value is a subquery of the select list
 * of the members themselves, ordered and limited (each node returns its
 * first members, the coordinator merges them).
 */
#define CHUNK_MEMBERS_CLUSTER(basis) \
	"SELECT m.member_id, m.tier, m.tier_below_since, m.tier_floor, m.tier_floor_until," \
	"       (" basis ")" \
	"  FROM loyalty.member m" \
	" WHERE m.program OPERATOR(pg_catalog.=) $1 AND m.member_id OPERATOR(pg_catalog.>) $4" \
	" ORDER BY m.member_id LIMIT $5"

/*
 * Every member of the program, its tier state and its value, in no
 * particular order (each member is decided alone; the changes are written
 * in one statement).
 */
#define ALL_MEMBERS(basis) \
	"SELECT m.member_id, m.tier, m.tier_below_since, m.tier_floor, m.tier_floor_until," \
	"       coalesce(b.value, 0)" \
	"  FROM loyalty.member m" \
	"  LEFT JOIN (" basis ") b ON m.member_id OPERATOR(pg_catalog.=) b.member_id" \
	" WHERE m.program OPERATOR(pg_catalog.=) $1"

static LoyaltyQuery member_basis[] = {
	[TIER_BASIS_SPEND] = {MEMBER_SPEND("$4"), 4, {TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID}, true},
	[TIER_BASIS_POINTS] = {MEMBER_POINTS("$4"), 4, {TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID}, true},
	[TIER_BASIS_ORDERS] = {MEMBER_ORDER_COUNT("$4"), 4, {TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID}, true},
};

static LoyaltyQuery chunk_basis[] = {
	[TIER_BASIS_SPEND] = {CHUNK_MEMBERS(MEMBER_SPEND("m.member_id")), 5,
	{TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID, INT4OID}},
	[TIER_BASIS_POINTS] = {CHUNK_MEMBERS(MEMBER_POINTS("m.member_id")), 5,
	{TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID, INT4OID}},
	[TIER_BASIS_ORDERS] = {CHUNK_MEMBERS(MEMBER_ORDER_COUNT("m.member_id")), 5,
	{TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID, INT4OID}},
};

static LoyaltyQuery chunk_basis_cluster[] = {
	[TIER_BASIS_SPEND] = {CHUNK_MEMBERS_CLUSTER(MEMBER_SPEND("m.member_id")), 5,
	{TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID, INT4OID}},
	[TIER_BASIS_POINTS] = {CHUNK_MEMBERS_CLUSTER(MEMBER_POINTS("m.member_id")), 5,
	{TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID, INT4OID}},
	[TIER_BASIS_ORDERS] = {CHUNK_MEMBERS_CLUSTER(MEMBER_ORDER_COUNT("m.member_id")), 5,
	{TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID, INT4OID}},
};

static LoyaltyQuery members_basis[] = {
	[TIER_BASIS_SPEND] = {ALL_MEMBERS(SPEND_BASIS), 3, {TEXTOID, TIMESTAMPTZOID, INT4OID}},
	[TIER_BASIS_POINTS] = {ALL_MEMBERS(POINTS_BASIS), 3, {TEXTOID, TIMESTAMPTZOID, INT4OID}},
	[TIER_BASIS_ORDERS] = {ALL_MEMBERS(ORDERS_BASIS), 3, {TEXTOID, TIMESTAMPTZOID, INT4OID}},
};

static LoyaltyQuery members_basis_cluster[] = {
	[TIER_BASIS_SPEND] = {ALL_MEMBERS(SPEND_BASIS_CLUSTER), 3, {TEXTOID, TIMESTAMPTZOID, INT4OID}},
	[TIER_BASIS_POINTS] = {ALL_MEMBERS(POINTS_BASIS), 3, {TEXTOID, TIMESTAMPTZOID, INT4OID}},
	[TIER_BASIS_ORDERS] = {ALL_MEMBERS(ORDERS_BASIS_CLUSTER), 3, {TEXTOID, TIMESTAMPTZOID, INT4OID}},
};

static LoyaltyQuery member_tier = {
	"SELECT tier FROM loyalty.member"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $2",
	2, {TEXTOID, TEXTOID}, true
};

static LoyaltyQuery tier_change = {
	"WITH u AS (SELECT * FROM unnest($3::pg_catalog.text[], $4::pg_catalog.text[], $5::pg_catalog.text[], $6::pg_catalog.text[], $7::numeric[],"
	"                               $8::pg_catalog.timestamptz[], $9::boolean[])"
	"             AS u(member_id, from_tier, to_tier, reason, basis_value, below_since, changed)),"
	" h AS (INSERT INTO loyalty.tier_history (program, member_id, from_tier, to_tier, reason,"
	"                                         basis_value, changed_at)"
	"       SELECT $1, member_id, from_tier, to_tier, reason, basis_value, $2 FROM u WHERE changed)"
	" UPDATE loyalty.member m"
	"    SET tier = u.to_tier, tier_below_since = u.below_since,"
	"        tier_since = CASE WHEN u.changed THEN $2 ELSE m.tier_since END"
	"   FROM u WHERE m.program OPERATOR(pg_catalog.=) $1 AND m.member_id OPERATOR(pg_catalog.=) u.member_id",
	9, {TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	NUMERICARRAYOID, TIMESTAMPTZARRAYOID, BOOLARRAYOID}
};

/*
 * The same on a Citus cluster, which refuses a data-modifying CTE over many
 * shards: the history, then the members (same arguments; each statement
 * uses those it needs).
 */
#define TIER_CHANGES_UNNEST \
	"unnest($3::pg_catalog.text[], $4::pg_catalog.text[], $5::pg_catalog.text[], $6::pg_catalog.text[], $7::numeric[]," \
	"       $8::pg_catalog.timestamptz[], $9::boolean[])" \
	" AS u(member_id, from_tier, to_tier, reason, basis_value, below_since, changed)"
static LoyaltyQuery tier_history_cluster = {
	"INSERT INTO loyalty.tier_history (program, member_id, from_tier, to_tier, reason, basis_value, changed_at)"
	" SELECT $1, u.member_id, u.from_tier, u.to_tier, u.reason, u.basis_value, $2"
	"   FROM " TIER_CHANGES_UNNEST " WHERE u.changed",
	9, {TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	NUMERICARRAYOID, TIMESTAMPTZARRAYOID, BOOLARRAYOID}
};
static LoyaltyQuery tier_member_cluster = {
	"UPDATE loyalty.member m"
	"    SET tier = u.to_tier, tier_below_since = u.below_since,"
	"        tier_since = CASE WHEN u.changed THEN $2 ELSE m.tier_since END"
	"   FROM " TIER_CHANGES_UNNEST
	"  WHERE m.program OPERATOR(pg_catalog.=) $1 AND m.member_id OPERATOR(pg_catalog.=) u.member_id",
	9, {TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	NUMERICARRAYOID, TIMESTAMPTZARRAYOID, BOOLARRAYOID}
};

/*
 * One member's change on a cluster: router statements (the member id a
 * value), which also run where an order's trigger fires, on the node that
 * holds the member's shard.
 */
static LoyaltyQuery tier_history_one = {
	"INSERT INTO loyalty.tier_history (program, member_id, from_tier, to_tier, reason, basis_value, changed_at)"
	" VALUES ($1, $3, $4, $5, $6, $7, $2)",
	7, {TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID}, true
};
static LoyaltyQuery tier_member_one = {
	"UPDATE loyalty.member m"
	"    SET tier = $4, tier_below_since = $5,"
	"        tier_since = CASE WHEN $6 THEN $2 ELSE m.tier_since END"
	"  WHERE m.program OPERATOR(pg_catalog.=) $1 AND m.member_id OPERATOR(pg_catalog.=) $3",
	6, {TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID}, true
};

/* The tier a member holds (NULL: the first level, or not enrolled yet). */
static char *
MemberTier(const LoyaltyProgram *prog, const char *member_id)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(prog->code);
	args[1] = CStringGetTextDatum(member_id);
	LoyaltyRun(&member_tier, args, NULL, SPI_OK_SELECT);
	return SPI_processed > 0 ? LoyaltyGetText(0, 1) : NULL;
}

/* What the tier hook keeps between pricing an order and its posting. */
typedef struct TierPriced
{
	char	   *tier;			/* the member's tier then (NULL: the first level) */
} TierPriced;

static bool
TierApplies(const LoyaltyProgram *prog)
{
	return prog->ladder != NULL;
}

/*
 * Pricing hook: the multiplier the member's current tier earns at.  Keeps
 * that tier, so the upgrade check need not read it again.
 */
static Datum
TierPrice(const LoyaltyProgram *prog, const char *member_id, Datum multiplier, void **state)
{
	TierPriced *priced = palloc0(sizeof(TierPriced));

	*state = priced;
	if (member_id == NULL)
		return multiplier;
	priced->tier = MemberTier(prog, member_id);
	return DirectFunctionCall2(numeric_mul, multiplier,
							   TierMultiplier(prog->ladder, TierLevelNamed(prog->ladder, priced->tier)));
}

/* Runs the ladder's basis query for one member. */
static void
RunBasis(const LoyaltyProgram *prog, const char *member_id, TimestampTz as_of)
{
	Datum		args[4];

	args[0] = CStringGetTextDatum(prog->code);
	args[1] = TimestampTzGetDatum(as_of);
	args[2] = Int32GetDatum(prog->ladder->window_days);
	args[3] = CStringGetTextDatum(member_id);
	LoyaltyRun(&member_basis[prog->ladder->basis], args, NULL, SPI_OK_SELECT);
}

/* One member's pending change, gathered for a single write. */
typedef struct TierChanges
{
	int			n;
	int			size;
	Datum	   *member_id;
	Datum	   *from_tier;
	bool	   *from_null;
	Datum	   *to_tier;
	Datum	   *reason;
	bool	   *reason_null;
	Datum	   *basis_value;
	Datum	   *below_since;
	bool	   *below_null;
	Datum	   *changed;
} TierChanges;

/* Sets each array of c to room for size changes (keeping those there). */
static void
TierChangesResize(TierChanges *c, int size)
{
#define RESIZE(field, type) \
	c->field = c->field ? repalloc_huge(c->field, sizeof(type) * size) : palloc(sizeof(type) * size)
	RESIZE(member_id, Datum);
	RESIZE(from_tier, Datum);
	RESIZE(from_null, bool);
	RESIZE(to_tier, Datum);
	RESIZE(reason, Datum);
	RESIZE(reason_null, bool);
	RESIZE(basis_value, Datum);
	RESIZE(below_since, Datum);
	RESIZE(below_null, bool);
	RESIZE(changed, Datum);
#undef RESIZE
	c->size = size;
}

static TierChanges *
TierChangesCreate(int capacity)
{
	TierChanges *c = palloc0(sizeof(TierChanges));

	TierChangesResize(c, Max(capacity, 1));
	return c;
}

static void
TierChangesAdd(TierChanges *c, const char *member_id, const char *from_tier, const char *to_tier,
			   const char *reason, Datum basis_value, bool has_below, TimestampTz below_since)
{
	int			i;

	if (c->n == c->size)
		TierChangesResize(c, 2 * c->size);
	i = c->n++;
	c->member_id[i] = CStringGetTextDatum(member_id);
	c->from_null[i] = from_tier == NULL;
	c->from_tier[i] = from_tier ? CStringGetTextDatum(from_tier) : (Datum) 0;
	c->to_tier[i] = CStringGetTextDatum(to_tier);
	c->reason_null[i] = reason == NULL;
	c->reason[i] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	c->basis_value[i] = basis_value;
	c->below_null[i] = !has_below;
	c->below_since[i] = TimestampTzGetDatum(below_since);
	c->changed[i] = BoolGetDatum(reason != NULL);
}

/*
 * The member locks of a pass's changes, taken in member order before the
 * write: the UPDATE would take them in the order its plan meets the rows,
 * and a pass racing a bulk INSERT (which locks its members in member order,
 * accrual_trigger.c) would deadlock with it.
 */
static LoyaltyQuery tier_members_lock = {
	"SELECT 1 FROM loyalty.member m"
	" WHERE m.program OPERATOR(pg_catalog.=) $1"
	"   AND m.member_id OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])"
	" ORDER BY m.member_id FOR NO KEY UPDATE",
	2, {TEXTOID, TEXTARRAYOID}
};

/* The cluster form of TierChangesWrite for one change (c->n is 1). */
static void
TierChangeWriteOne(const TierChanges *c, const char *program, TimestampTz at)
{
	Datum		args[7];
	char		nulls[7] = "       ";

	args[0] = CStringGetTextDatum(program);
	args[1] = TimestampTzGetDatum(at);
	args[2] = c->member_id[0];
	if (DatumGetBool(c->changed[0]))
	{
		args[3] = c->from_tier[0];
		nulls[3] = c->from_null[0] ? 'n' : ' ';
		args[4] = c->to_tier[0];
		args[5] = c->reason[0];
		nulls[5] = c->reason_null[0] ? 'n' : ' ';
		args[6] = c->basis_value[0];
		LoyaltyRun(&tier_history_one, args, nulls, SPI_OK_INSERT);
	}
	args[3] = c->to_tier[0];
	nulls[3] = ' ';
	args[4] = c->below_since[0];
	nulls[4] = c->below_null[0] ? 'n' : ' ';
	args[5] = c->changed[0];
	nulls[5] = ' ';
	LoyaltyRun(&tier_member_one, args, nulls, SPI_OK_UPDATE);
}

static void
TierChangesWrite(const TierChanges *c, const char *program, TimestampTz at)
{
	Datum		args[9];

	if (c->n == 0)
		return;
	if (c->n == 1 && LoyaltyDistributed())
	{
		TierChangeWriteOne(c, program, at);
		return;
	}
	/*
	 * Citus runs no multi-shard FOR UPDATE: on a cluster the members are
	 * locked by the UPDATE itself, and a deadlock with an order's
	 * transaction is broken by Citus's distributed deadlock detection.
	 */
	if (c->n > 1 && !LoyaltyDistributed())
	{
		args[0] = CStringGetTextDatum(program);
		args[1] = LoyaltyArray(c->member_id, NULL, c->n, TEXTOID);
		LoyaltyRun(&tier_members_lock, args, NULL, SPI_OK_SELECT);
	}
	args[0] = CStringGetTextDatum(program);
	args[1] = TimestampTzGetDatum(at);
	args[2] = LoyaltyArray(c->member_id, NULL, c->n, TEXTOID);
	args[3] = LoyaltyArray(c->from_tier, c->from_null, c->n, TEXTOID);
	args[4] = LoyaltyArray(c->to_tier, NULL, c->n, TEXTOID);
	args[5] = LoyaltyArray(c->reason, c->reason_null, c->n, TEXTOID);
	args[6] = LoyaltyArray(c->basis_value, NULL, c->n, NUMERICOID);
	args[7] = LoyaltyArray(c->below_since, c->below_null, c->n, TIMESTAMPTZOID);
	args[8] = LoyaltyArray(c->changed, NULL, c->n, BOOLOID);
	if (LoyaltyDistributed())
	{
		LoyaltyRun(&tier_history_cluster, args, NULL, SPI_OK_INSERT);
		LoyaltyRun(&tier_member_cluster, args, NULL, SPI_OK_UPDATE);
	}
	else
		LoyaltyRun(&tier_change, args, NULL, SPI_OK_UPDATE);
}

/*
 * Posting hook, after an order: if the member's basis value at the order's
 * time reaches a higher level than it holds, it moves up now.  The caller
 * holds the member's row (its earning locked it); state: the tier read
 * while pricing the order, or NULL when it was not priced now.
 */
static void
TierPosted(const LoyaltyProgram *prog, const char *member_id, TimestampTz at, void *state)
{
	TierPriced *priced = (TierPriced *) state;
	const char *tier;
	TierChanges *changes;
	int			current;
	int			reached;
	Datum		value;

	if (member_id == NULL)
		return;
	RunBasis(prog, member_id, at);
	if (SPI_processed == 0)
		return;
	value = LoyaltyGetDatum(0, 1);
	reached = TierLevelFor(prog->ladder, TierScaledValue(value));

	tier = priced != NULL ? priced->tier : MemberTier(prog, member_id);
	current = TierLevelNamed(prog->ladder, tier);
	if (reached <= current)
		return;

	changes = TierChangesCreate(1);
	TierChangesAdd(changes, member_id, tier, TierLevelName(prog->ladder, reached), "upgrade",
				   value, false, 0);
	TierChangesWrite(changes, prog->code, at);
}

static const AccrualHook tier_hook = {"tiers", TierApplies, TierPrice, TierPosted};

/* Plugs tiers into accrual (from _PG_init). */
void
TierAccrualHookInit(void)
{
	AccrualHookRegister(&tier_hook);
}

/*
 * One member's recalculation: the level it keeps or moves to, why, and the
 * grace clock.  Returns the reason of a change, NULL when the tier stays.
 */
static const char *
TierDecide(const TierLadder *ladder, int current, int qualifying, int floor_level,
		   bool *has_below, TimestampTz *below_since, TimestampTz as_of, int *next)
{
	int			target = Max(qualifying, floor_level);
	int64		grace = (int64) ladder->grace_days * USECS_PER_DAY;

	*next = current;
	if (target > current)
	{
		*next = target;
		*has_below = false;
		return floor_level > qualifying ? "floor" : "upgrade";
	}
	if (target == current)
	{
		*has_below = false;
		return NULL;
	}
	if (!*has_below)
	{
		*has_below = true;		/* fell below: the grace starts now */
		*below_since = as_of;
		return NULL;
	}
	if (as_of - *below_since < grace)
		return NULL;
	*next = ladder->downgrade == TIER_DOWNGRADE_STEP ? Max(current - 1, target) : target;
	*has_below = *next > target;	/* still above: another grace before the next step */
	*below_since = as_of;
	return "downgrade";
}

/* A SQL-callable's program argument, which must have a ladder. */
static void
RequireLadder(const LoyaltyProgram *prog)
{
	if (prog->ladder == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("program \"%s\" has no tier ladder", prog->code),
				 errhint("Set one with loyalty.set_tier_ladder().")));
}

/* A recalculation under way: the decisions so far. */
typedef struct TierPass
{
	const LoyaltyProgram *prog;
	TimestampTz as_of;
	int64	   *counts;			/* members, upgraded, downgraded, grace started, unchanged */
	TierChanges *changes;
} TierPass;

static char *
TextOrNull(const Datum *v, const bool *isnull, int i)
{
	return isnull[i] ? NULL : TextDatumGetCString(v[i]);
}

/*
 * Decides one member's tier from a row (member_id, tier, tier_below_since,
 * tier_floor, tier_floor_until, value) and keeps the change, if any, in keep.
 */
static void
DecideMember(const Datum *v, const bool *isnull, MemoryContext keep, void *arg)
{
	TierPass   *p = (TierPass *) arg;
	const TierLadder *ladder = p->prog->ladder;
	char	   *member_id = TextDatumGetCString(v[0]);
	char	   *tier = TextOrNull(v, isnull, 1);
	bool		has_below = !isnull[2];
	TimestampTz below = has_below ? DatumGetTimestampTz(v[2]) : 0;
	char	   *floor_tier = TextOrNull(v, isnull, 3);
	bool		floor_on = floor_tier != NULL && !isnull[4] && DatumGetTimestampTz(v[4]) > p->as_of;
	bool		had_below = has_below;
	int			current = TierLevelNamed(ladder, tier);
	int			next;
	const char *reason;

	reason = TierDecide(ladder, current, TierLevelFor(ladder, TierScaledValue(v[5])),
						floor_on ? TierLevelNamed(ladder, floor_tier) : 0,
						&has_below, &below, p->as_of, &next);
	p->counts[0]++;
	if (reason != NULL)
		p->counts[strcmp(reason, "downgrade") == 0 ? 2 : 1]++;
	else if (has_below && !had_below)
		p->counts[3]++;
	else
		p->counts[4]++;
	if (reason != NULL || has_below != had_below)
	{
		MemoryContext row = MemoryContextSwitchTo(keep);

		TierChangesAdd(p->changes, member_id, tier, TierLevelName(ladder, next), reason,
					   datumCopy(v[5], false, -1), has_below, below);
		MemoryContextSwitchTo(row);
	}
	if (p->counts[0] % 10000 == 0)
		CHECK_FOR_INTERRUPTS();
}

/*
 * Decides and writes the tiers of the members the last query returned (rows
 * as DecideMember reads them), adding to counts; returns the last member id
 * seen, NULL when there was none.
 */
static char *
RecalculateRows(const LoyaltyProgram *prog, TimestampTz as_of, int64 *counts)
{
	TierPass	p = {prog, as_of, counts, TierChangesCreate((int) SPI_processed)};
	SPITupleTable *rows = SPI_tuptable;
	uint64		n = SPI_processed;

	for (uint64 i = 0; i < n; i++)
	{
		Datum		v[6];
		bool		isnull[6];

		heap_deform_tuple(rows->vals[i], rows->tupdesc, v, isnull);
		DecideMember(v, isnull, CurrentMemoryContext, &p);
	}
	TierChangesWrite(p.changes, prog->code, as_of);
	return n > 0 ? SPI_getvalue(rows->vals[n - 1], rows->tupdesc, 1) : NULL;
}

/* The same for every member of the program, streamed from the basis query. */
static void
RecalculateAll(const LoyaltyProgram *prog, TimestampTz as_of, int64 *counts)
{
	TierPass	p = {prog, as_of, counts, TierChangesCreate(1024)};
	Datum		args[3];

	args[0] = CStringGetTextDatum(prog->code);
	args[1] = TimestampTzGetDatum(as_of);
	args[2] = Int32GetDatum(prog->ladder->window_days);
	LoyaltyStream(LoyaltyDistributed() ? &members_basis_cluster[prog->ladder->basis]
				  : &members_basis[prog->ladder->basis], args, NULL, DecideMember, &p);
	ereport(NOTICE,
			(errmsg("loyalty: recalculate_tiers %s: " INT64_FORMAT " members", prog->code, counts[0])));
	TierChangesWrite(p.changes, prog->code, as_of);
}

/* The summary row of a recalculation, with the last member first when asked. */
static Datum
SummaryRow(FunctionCallInfo fcinfo, const int64 *counts, bool with_last, const char *last)
{
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	int			k = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "loyalty: a tier recalculation must return a row");
	if (with_last)
	{
		nulls[0] = last == NULL;
		values[k++] = last ? CStringGetTextDatum(last) : (Datum) 0;
	}
	for (int i = 0; i < 5; i++)
		values[k++] = Int64GetDatum(counts[i]);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

PG_FUNCTION_INFO_V1(loyalty_recalculate_tiers);
/* loyalty.recalculate_tiers(program, as_of) returns (members, upgraded, downgraded, grace_started, unchanged). */
Datum
loyalty_recalculate_tiers(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	TimestampTz as_of = LoyaltyTimestampArg(fcinfo, 1, "as_of");
	LoyaltyProgram prog;
	int64		counts[5] = {0, 0, 0, 0, 0};
	TimestampTz started = GetCurrentTimestamp();

	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	RequireLadder(&prog);
	if (prog.ladder->basis != TIER_BASIS_POINTS)
		ActivityFoldBefore(code, as_of - (TimestampTz) prog.ladder->window_days * USECS_PER_DAY);
	RecalculateAll(&prog, as_of, counts);
	JobRunRecord("recalculate_tiers", code, started, counts[0],
				 psprintf("as_of %s: " INT64_FORMAT " members, " INT64_FORMAT " upgraded, "
						  INT64_FORMAT " downgraded", timestamptz_to_str(as_of),
						  counts[0], counts[1], counts[2]));
	SPI_finish();
	PG_RETURN_DATUM(SummaryRow(fcinfo, counts, false, NULL));
}

PG_FUNCTION_INFO_V1(loyalty_recalculate_tiers_chunk);
/* loyalty.recalculate_tiers_chunk(program, as_of, after, max_members): the next chunk of members. */
Datum
loyalty_recalculate_tiers_chunk(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	TimestampTz as_of = LoyaltyTimestampArg(fcinfo, 1, "as_of");
	char	   *after = PG_ARGISNULL(2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	int32		max_members = PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3);
	LoyaltyProgram prog;
	int64		counts[5] = {0, 0, 0, 0, 0};
	Datum		args[5];
	char	   *last;
	MemoryContext caller = CurrentMemoryContext;

	if (max_members <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_members must be positive, not %d", max_members)));
	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	RequireLadder(&prog);
	args[0] = CStringGetTextDatum(code);
	args[1] = TimestampTzGetDatum(as_of);
	args[2] = Int32GetDatum(prog.ladder->window_days);
	args[3] = CStringGetTextDatum(after);
	args[4] = Int32GetDatum(max_members);
	LoyaltyRun(LoyaltyDistributed() ? &chunk_basis_cluster[prog.ladder->basis]
			   : &chunk_basis[prog.ladder->basis], args, NULL, SPI_OK_SELECT);
	last = RecalculateRows(&prog, as_of, counts);
	if (last != NULL)
		last = MemoryContextStrdup(caller, last);	/* outlives SPI_finish */
	SPI_finish();
	PG_RETURN_DATUM(SummaryRow(fcinfo, counts, true, last));
}
