/*
 * order_event.c
 *		One order event (insert, update, delete) applied to the ledger.
 *
 * The rule is state based: from the row, work out what the order should
 * hold (member, points, reversal due), compare with what loyalty recorded in
 * order_earning, and post the difference.  So an event can be replayed from
 * the dead letters, and partial refunds add up exactly:
 *   - an order earns once: a second INSERT of its id changes nothing;
 *   - a refund takes back floor(points x refunded / amount), cumulatively;
 *   - cancel, refund status or DELETE takes back everything and closes it;
 *   - a new member or a new number of points starts a new generation:
 *     what is left of the old one is reversed and the order earns again.
 *   - an INSERT of an id whose order was closed (cancelled or deleted)
 *     opens it again: a new generation earns, since the table holds it again.
 * Configuration problems (no FX rate) and values the program cannot use
 * (OrderRowCheck) are found before anything is written.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "cluster.h"
#include "credit.h"
#include "dead_letter.h"
#include "fx.h"
#include "ledger.h"
#include "loyalty.h"
#include "order_event.h"
#include "spi_util.h"

/* What loyalty recorded for an order. */
typedef struct OrderState
{
	bool		exists;
	char	   *member_id;
	int64		points;
	int32		generation;
	int64		reversed_target;
	int64		earned_total;
	int64		reversed_total;
	bool		closed;
	TimestampTz ordered_at;
	Datum		multiplier;		/* numeric: what the current generation earned at */
} OrderState;


static LoyaltyQuery state_load = {
	"SELECT member_id, points, generation, reversed_target, earned_total, reversed_total,"
	"       closed, ordered_at, multiplier"
	"  FROM loyalty.order_earning"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND order_id OPERATOR(pg_catalog.=) $2 FOR UPDATE",
	2, {TEXTOID, TEXTOID}, true
};

/*
 * The first sight of an order, in one statement (the accrual hot path): its
 * state row, and when it earns, the ledger row, the lot and the member
 * (enrolled on first earn; the upsert locks its row).  The primary key of
 * order_earning makes the first of two sessions win; the loser's CTEs see
 * no row and write nothing.  A member whose balance or lifetime earned this
 * earn would take above LOYALTY_MAX_BALANCE ($14) is refused (g): nothing
 * is written.  Returns whether the state row was written, the ledger id (0:
 * nothing earned or the order was seen already) and whether g refused.
 */
static LoyaltyQuery first_seen = {
	"WITH g AS (SELECT $7 OPERATOR(pg_catalog.>) 0 AND EXISTS ("
	"             SELECT 1 FROM loyalty.member m"
	"              WHERE m.program OPERATOR(pg_catalog.=) $1 AND m.member_id OPERATOR(pg_catalog.=) $3"
	"                AND pg_catalog.int8larger(m.balance, m.lifetime_earned)"
	"                    OPERATOR(pg_catalog.>) ($14 OPERATOR(pg_catalog.-) $7)) AS no_room),"
	" s AS (INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, currency,"
	"             fx_rate, points, refunded_amount, reversed_target, earned_total, closed, ordered_at,"
	"             multiplier)"
	"           SELECT $1, $2, $3, $4, $5, $6, $7, coalesce($8, 0), 0, $7, $9, $10, $13 FROM g WHERE NOT g.no_room"
	"           ON CONFLICT DO NOTHING RETURNING points),"
	" sup AS (" LETTERS_SUPERSEDE
	"   WHERE $15 AND d.program OPERATOR(pg_catalog.=) $1 AND d.order_id OPERATOR(pg_catalog.=) $2"
	"     AND d.resolved_at IS NULL AND EXISTS (SELECT 1 FROM s)),"
	" credit AS MATERIALIZED ("
	"   SELECT " CREDIT_NEXT_ID " AS id, $3 AS member_id, 'earn'::pg_catalog.text AS kind,"
	"          s.points, NULL::pg_catalog.text AS ref, $2 AS order_id, NULL::pg_catalog.text AS reason,"
	"          $10 AS occurred_at, $11 AS available_at, $12 AS expires_at"
	"     FROM s WHERE s.points OPERATOR(pg_catalog.>) 0),"
	CREDIT_WRITE
	" SELECT (SELECT pg_catalog.count(*) FROM s), coalesce((SELECT id FROM credit), 0),"
	"        (SELECT no_room FROM g)",
	15, {TEXTOID, TEXTOID, TEXTOID, NUMERICOID, TEXTOID, NUMERICOID, INT8OID, NUMERICOID,
	BOOLOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, NUMERICOID, INT8OID, BOOLOID}
};

/* Balance and lifetime earned of a member: room for an earn? (see first_seen) */
static LoyaltyQuery member_room = {
	"SELECT pg_catalog.int8larger(m.balance, m.lifetime_earned) FROM loyalty.member m"
	" WHERE m.program OPERATOR(pg_catalog.=) $1 AND m.member_id OPERATOR(pg_catalog.=) $2",
	2, {TEXTOID, TEXTOID}, true
};

/*
 * On a Citus cluster an order's state lives with its member (order_earning
 * is distributed by member_id): found and saved by member, so that each is a
 * router statement (a trigger on a shard can run no other).  The member of
 * an order does not change there (Citus does not update a distribution
 * column; a plain orders table on the coordinator that changes an order's
 * member sees the order as new for that member: docs/scale-out.md).
 */
static LoyaltyQuery state_load_member = {
	"SELECT member_id, points, generation, reversed_target, earned_total, reversed_total,"
	"       closed, ordered_at, multiplier"
	"  FROM loyalty.order_earning"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND order_id OPERATOR(pg_catalog.=) $2"
	"   AND member_id OPERATOR(pg_catalog.=) $3 FOR UPDATE",
	3, {TEXTOID, TEXTOID, TEXTOID}, true
};

/* The state row of first_seen, alone (OrderFirstSeenRouted). */
static LoyaltyQuery first_seen_routed = {
	"INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, currency,"
	"       fx_rate, points, refunded_amount, reversed_target, earned_total, closed, ordered_at,"
	"       multiplier)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, 0), 0, $7, $9, $10, $11)"
	" ON CONFLICT DO NOTHING RETURNING points",
	11, {TEXTOID, TEXTOID, TEXTOID, NUMERICOID, TEXTOID, NUMERICOID, INT8OID, NUMERICOID,
	BOOLOID, TIMESTAMPTZOID, NUMERICOID}
};

static LoyaltyQuery state_save_member = {
	"UPDATE loyalty.order_earning"
	"   SET amount = $4, currency = $5, fx_rate = coalesce($6, fx_rate),"
	"       points = $7, generation = $8, refunded_amount = coalesce($9, refunded_amount),"
	"       reversed_target = $10, earned_total = $11, reversed_total = $12, closed = $13,"
	"       ordered_at = $14, multiplier = $15, updated_at = $16"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND order_id OPERATOR(pg_catalog.=) $2"
	"   AND member_id OPERATOR(pg_catalog.=) $3",
	16, {TEXTOID, TEXTOID, TEXTOID, NUMERICOID, TEXTOID, NUMERICOID, INT8OID, INT4OID,
	NUMERICOID, INT8OID, INT8OID, INT8OID, BOOLOID, TIMESTAMPTZOID, NUMERICOID, TIMESTAMPTZOID}
};

static LoyaltyQuery state_save = {
	"UPDATE loyalty.order_earning"
	"   SET member_id = $3, amount = $4, currency = $5, fx_rate = coalesce($6, fx_rate),"
	"       points = $7, generation = $8, refunded_amount = coalesce($9, refunded_amount),"
	"       reversed_target = $10, earned_total = $11, reversed_total = $12, closed = $13,"
	"       ordered_at = $14, multiplier = $15, updated_at = pg_catalog.now()"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND order_id OPERATOR(pg_catalog.=) $2",
	15, {TEXTOID, TEXTOID, TEXTOID, NUMERICOID, TEXTOID, NUMERICOID, INT8OID, INT4OID,
	NUMERICOID, INT8OID, INT8OID, INT8OID, BOOLOID, TIMESTAMPTZOID, NUMERICOID}
};

const char *
OrderEventName(OrderEventKind kind)
{
	switch (kind)
	{
		case ORDER_INSERT:
			return "INSERT";
		case ORDER_UPDATE:
			return "UPDATE";
		case ORDER_DELETE:
			return "DELETE";
	}
	return "?";
}

/*
 * Whether a status closes an order: one of the program's closing statuses
 * (stored trimmed and lower case), trimmed and lower-cased the way
 * loyalty.check_closing_statuses stores them (its trim set, lower() in the
 * database's collation), then compared exactly.
 */
static bool
StatusCloses(const LoyaltyProgram *prog, const char *status)
{
	const char *blank = " \t\n\r\f\v";	/* E' \t\n\r\f\013' in SQL */
	size_t		start;
	size_t		len;

	if (status == NULL)
		return false;
	start = strspn(status, blank);
	len = strlen(status + start);
	while (len > 0 && strchr(blank, status[start + len - 1]) != NULL)
		len--;
	if (prog->nclosing == 0 || len == 0)
		return false;

	/*
	 * Fold case as check_closing_statuses' lower() did when it stored the
	 * list (the database's collation), then compare exactly: pg_strncasecmp
	 * folds ASCII letters only, so 'ANNULÉ' would not match the stored
	 * 'annulé'.
	 */
	{
		char	   *folded = str_tolower(status + start, len, DEFAULT_COLLATION_OID);
		bool		found = false;

		for (int i = 0; i < prog->nclosing && !found; i++)
			found = strcmp(folded, prog->closing[i]) == 0;
		pfree(folded);
		return found;
	}
}

/* member_id: the event's (on a cluster the state is looked up by it). */
static void
OrderStateLoad(const char *program, const char *member_id, const char *order_id,
			   OrderState *state)
{
	Datum		args[3];

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(order_id);
	memset(state, 0, sizeof(*state));
	if (!LoyaltyDistributed())
		LoyaltyRun(&state_load, args, NULL, SPI_OK_SELECT);
	else if (member_id == NULL)
		return;					/* a guest: nothing recorded on a cluster */
	else
	{
		args[2] = CStringGetTextDatum(member_id);
		LoyaltyRun(&state_load_member, args, NULL, SPI_OK_SELECT);
	}
	state->exists = SPI_processed > 0;
	if (!state->exists)
		return;
	state->member_id = LoyaltyGetText(0, 1);
	state->points = LoyaltyGetInt64(0, 2);
	state->generation = LoyaltyGetInt32(0, 3);
	state->reversed_target = LoyaltyGetInt64(0, 4);
	state->earned_total = LoyaltyGetInt64(0, 5);
	state->reversed_total = LoyaltyGetInt64(0, 6);
	state->closed = LoyaltyGetBool(0, 7);
	state->ordered_at = DatumGetTimestampTz(LoyaltyGetDatum(0, 8));
	state->multiplier = LoyaltyGetDatum(0, 9);
}

static bool
SetProblem(OrderProblem *problem, int sqlstate, char *reason)
{
	problem->sqlstate = sqlstate;
	problem->reason = reason;
	return false;
}

/* The text of a numeric, for a reason: scientific notation when long. */
static char *
NumericText(Datum n)
{
	char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out, n));

	if (strlen(text) > 40)
		text = numeric_out_sci(DatumGetNumeric(n), 6);
	return text;
}

/* Why an amount column's value cannot be used, or NULL when it can. */
static const char *
AmountProblem(Datum n, int *sqlstate)
{
	Numeric		num = DatumGetNumeric(n);

	*sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
	if (numeric_is_nan(num))
		return "is not a number";
	if (numeric_is_inf(num))
	{
		*sqlstate = ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
		return "is infinite";
	}
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, n,
										  NumericGetDatum(int64_to_numeric(0)))) < 0)
		return "is negative";
	return NULL;
}

/* Whether an id is too long to be kept (LOYALTY_MAX_ID_CHARS). */
bool
OrderIdTooLong(const char *id)
{
	return id != NULL && strlen(id) > LOYALTY_MAX_ID_CHARS &&
		pg_mbstrlen(id) > LOYALTY_MAX_ID_CHARS;
}

/*
 * Values the program cannot use never reach a figure: returns false, with
 * the problem set, for an over-long order or member id, an order time that
 * is not finite, before 1900 or more than LOYALTY_MAX_FUTURE_DAYS ahead, an
 * amount or refunded amount that is NaN, infinite or negative, or a refund
 * above the amount.  An event that closes the order uses none of the
 * values: unusable ones are dropped (kept as NULL) and it goes ahead.
 */
bool
OrderRowCheck(const LoyaltyProgram *prog, OrderEventKind kind, OrderRow *row,
			  OrderProblem *problem)
{
	const char *why;
	int			sqlstate;
	bool		closes = kind == ORDER_DELETE || StatusCloses(prog, row->status);
	TimestampTz latest = GetCurrentTransactionStartTimestamp() +
		LOYALTY_MAX_FUTURE_DAYS * USECS_PER_DAY;
	TimestampTz earliest = -INT64CONST(3155673600) * USECS_PER_SEC;	/* 1900-01-01 UTC */

	if (OrderIdTooLong(row->order_id))
		return SetProblem(problem, ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
						  psprintf("order id is %d characters long, more than %d",
								   pg_mbstrlen(row->order_id), LOYALTY_MAX_ID_CHARS));
	if (OrderIdTooLong(row->member_id))
		return SetProblem(problem, ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
						  psprintf("member id is %d characters long, more than %d",
								   pg_mbstrlen(row->member_id), LOYALTY_MAX_ID_CHARS));

	if (row->has_time && (TIMESTAMP_NOT_FINITE(row->ordered_at) ||
						  row->ordered_at < earliest || row->ordered_at > latest))
	{
		if (closes)
			row->has_time = false;
		else
			return SetProblem(problem, ERRCODE_DATETIME_VALUE_OUT_OF_RANGE,
							  psprintf("order time %s is out of range (finite, from 1900 on, at most %d days after now)",
									   timestamptz_to_str(row->ordered_at), LOYALTY_MAX_FUTURE_DAYS));
	}
	if (row->has_amount && (why = AmountProblem(row->amount, &sqlstate)) != NULL)
	{
		if (closes)
			row->has_amount = false;
		else
			return SetProblem(problem, sqlstate,
							  psprintf("amount %s %s", NumericText(row->amount), why));
	}
	if (row->has_refunded && (why = AmountProblem(row->refunded, &sqlstate)) != NULL)
	{
		if (closes)
			row->has_refunded = false;
		else
			return SetProblem(problem, sqlstate,
							  psprintf("refunded amount %s %s", NumericText(row->refunded), why));
	}
	if (row->has_refunded && row->has_amount &&
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, row->refunded, row->amount)) > 0)
	{
		if (closes)
			row->has_refunded = false;
		else
			return SetProblem(problem, ERRCODE_INVALID_PARAMETER_VALUE,
							  psprintf("refunded amount %s is above the amount %s",
									   NumericText(row->refunded), NumericText(row->amount)));
	}
	return true;
}

/*
 * Whether member_id can earn points more: its balance and lifetime earned
 * stay at most LOYALTY_MAX_BALANCE (see first_seen).
 */
static bool
MemberHasRoom(const LoyaltyProgram *prog, const char *member_id, int64 points,
			  OrderProblem *problem)
{
	Datum		args[2];

	if (member_id == NULL || points <= 0)
		return true;
	args[0] = CStringGetTextDatum(prog->code);
	args[1] = CStringGetTextDatum(member_id);
	LoyaltyRun(&member_room, args, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0 || LoyaltyGetInt64(0, 1) <= LOYALTY_MAX_BALANCE - points)
		return true;
	return SetProblem(problem, ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
					  psprintf("member \"%s\" earning " INT64_FORMAT " points would hold more than " INT64_FORMAT,
							   member_id, points, LOYALTY_MAX_BALANCE));
}

/* Whether an order's multiplier marks a history order (0: never earns). */
static bool
OrderIsHistory(Datum multiplier)
{
	return numeric_is_nan(DatumGetNumeric(multiplier)) ? false :
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, multiplier,
										  NumericGetDatum(int64_to_numeric(0)))) == 0;
}

/*
 * Works out what the order should hold.  Returns false, with the problem set,
 * when the program's configuration cannot price it (no FX rate, overflow).
 */
static bool
OrderTargetCompute(const LoyaltyProgram *prog, OrderEventKind kind, const OrderRow *row,
				   const OrderState *state, OrderTarget *target, OrderProblem *problem)
{
	memset(target, 0, sizeof(*target));
	target->multiplier = DirectFunctionCall1(int4_numeric, Int32GetDatum(1));
	target->member_id = row->member_id;
	target->closed = (kind == ORDER_DELETE) || StatusCloses(prog, row->status);
	if (row->has_time)
		target->ordered_at = row->ordered_at;
	else if (state->exists)
		target->ordered_at = state->ordered_at;
	else
		target->ordered_at = GetCurrentTransactionStartTimestamp();

	/* Guests, closed orders and missing amounts earn nothing: no rate needed. */
	if (target->closed || target->member_id == NULL || !row->has_amount)
		return true;

	/*
	 * An order keeps the multiplier it earned at while its member stays; a
	 * history order (back-filled to count but not to earn: multiplier 0)
	 * keeps it whatever changes.
	 */
	if (state->exists && (OrderIsHistory(state->multiplier) ||
						  (state->member_id != NULL && strcmp(state->member_id, target->member_id) == 0)))
		target->multiplier = state->multiplier;
	else
	{
		AccrualPrice(prog, target->member_id, &target->pricing);
		target->multiplier = target->pricing.multiplier;
	}
	switch (LoyaltyPointsFor(prog, row->amount, row->currency, target->ordered_at,
							 target->multiplier, &target->points, &target->rate))
	{
		case POINTS_OK:
			break;
		case POINTS_NO_RATE:
			return SetProblem(problem, ERRCODE_LOYALTY_FX_RATE_MISSING,
							  psprintf("no FX rate from %s to %s valid at %s",
									   row->currency, prog->base_currency,
									   timestamptz_to_str(target->ordered_at)));
		case POINTS_OVERFLOW:
			return SetProblem(problem, ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
							  psprintf("amount %s %s earns more than " INT64_FORMAT " points, the most one order earns",
									   NumericText(row->amount),
									   row->currency ? row->currency : prog->base_currency,
									   LOYALTY_MAX_ORDER_POINTS));
	}
	if (row->has_refunded)
		target->reversal = LoyaltyShareOf(target->points, row->refunded, row->amount);
	return true;
}

/* What a newly inserted row should earn (see OrderTargetCompute). */
bool
OrderInsertTarget(const LoyaltyProgram *prog, const OrderRow *row, OrderTarget *target,
				  OrderProblem *problem)
{
	OrderState	none = {0};

	return OrderTargetCompute(prog, ORDER_INSERT, row, &none, target, problem);
}

/* Reverses the current generation up to target points taken back in all. */
static void
OrderReverseTo(const LoyaltyProgram *prog, const char *order_id, OrderState *state,
			   int64 target, const char *reason)
{
	if (target <= state->reversed_target)
		return;
	if (state->member_id != NULL)
		state->reversed_total += LedgerReverse(prog, state->member_id, order_id,
											   target - state->reversed_target, reason,
											   GetCurrentTransactionStartTimestamp(),
											   state->ordered_at);
	state->reversed_target = target;
}

/*
 * What the order's member still holds of it after its reversal: the points
 * a reversal could not take back (refund_policy within_balance, the points
 * were spent).  A new generation for the same member earns only what goes
 * beyond them, or a price correction or a delete and re-insert would pay
 * the spent points twice.  Zero for another member, and under the debt
 * policy (a reversal always takes everything back).
 */
static int64
OrderKeptByMember(const OrderState *state, const char *member_id)
{
	if (state->member_id == NULL || member_id == NULL ||
		strcmp(state->member_id, member_id) != 0)
		return 0;
	return Max(state->earned_total - state->reversed_total, 0);
}

/*
 * What closed an order, for the statement: a DELETE, a cancelling status
 * (cancelled, canceled, ...), or another closing status (refunded,
 * returned, chargeback: the money went back).
 */
static const char *
OrderClosingReason(OrderEventKind kind, const OrderRow *row)
{
	if (kind == ORDER_DELETE)
		return "delete";
	if (row->status != NULL && pg_strncasecmp(row->status + strspn(row->status, " \t\n\r\f\v"),
											  "cancel", 6) == 0)
		return "cancel";
	return "refund";
}

/* Whether a new generation belongs to another member (or a guest). */
static bool
OrderMemberMoved(const OrderState *state, const OrderTarget *target)
{
	if (state->member_id == NULL || target->member_id == NULL)
		return state->member_id != target->member_id;
	return strcmp(state->member_id, target->member_id) != 0;
}

/* Starts a generation: the order's member earns its points (and refunds). */
static void
OrderEarn(const LoyaltyProgram *prog, const char *order_id, OrderState *state,
		  const OrderTarget *target)
{
	int64		kept = OrderKeptByMember(state, target->member_id);
	int64		credit_points = target->points - kept;

	state->member_id = target->member_id;
	state->points = target->points;
	state->reversed_target = 0;
	state->ordered_at = target->ordered_at;
	state->multiplier = target->multiplier;
	if (credit_points > 0)
	{
		Credit		credit = {target->member_id, "earn", credit_points, NULL, order_id,
		NULL, target->ordered_at};

		CreditPost(prog, &credit);
		state->earned_total += credit_points;
	}
	OrderReverseTo(prog, order_id, state, target->reversal, "refund");
}

/*
 * The first six arguments of state_save and first_seen: program, order id,
 * member, amount, currency and rate.  nulls must be blank-filled.
 */
static void
OrderArgs(Datum *args, char *nulls, const LoyaltyProgram *prog, const OrderRow *row,
		  const char *member_id, const OrderTarget *target)
{
	args[0] = CStringGetTextDatum(prog->code);
	args[1] = CStringGetTextDatum(row->order_id);
	args[2] = LoyaltyTextOrNull(member_id, &nulls[2]);
	args[3] = row->amount;
	nulls[3] = row->has_amount ? ' ' : 'n';
	args[4] = LoyaltyTextOrNull(row->currency, &nulls[4]);
	args[5] = target->rate;
	nulls[5] = target->rate ? ' ' : 'n';
}

static void
OrderStateSave(const LoyaltyProgram *prog, const OrderRow *row, const OrderState *state,
			   const OrderTarget *target)
{
	Datum		args[15];
	char		nulls[15];

	memset(nulls, ' ', sizeof(nulls));
	OrderArgs(args, nulls, prog, row, state->member_id, target);
	args[6] = Int64GetDatum(state->points);
	args[7] = Int32GetDatum(state->generation);
	args[8] = row->refunded;
	nulls[8] = row->has_refunded ? ' ' : 'n';
	args[9] = Int64GetDatum(state->reversed_target);
	args[10] = Int64GetDatum(state->earned_total);
	args[11] = Int64GetDatum(state->reversed_total);
	args[12] = BoolGetDatum(state->closed);
	args[13] = TimestampTzGetDatum(state->ordered_at);
	args[14] = state->multiplier;
	if (LoyaltyDistributed())
	{
		Datum		more[16];

		memcpy(more, args, sizeof(args));
		more[15] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		LoyaltyRun(&state_save_member, more, nulls, SPI_OK_UPDATE);
		return;
	}
	LoyaltyRun(&state_save, args, nulls, SPI_OK_UPDATE);
}

/* What OrderFirstSeen did. */
typedef enum FirstSeenResult
{
	FIRST_SEEN_RECORDED,		/* the order is recorded (and earned) now */
	FIRST_SEEN_KNOWN,			/* its id was recorded before: nothing written */
	FIRST_SEEN_FULL				/* its member has no room for the points: nothing written */
} FirstSeenResult;

/*
 * first_seen on a Citus cluster, as router statements: the member's room,
 * the state row, the order's older letters, the credit (CreditPost).
 * args: first_seen's.  A guest records nothing there.
 */
static FirstSeenResult
OrderFirstSeenRouted(const LoyaltyProgram *prog, const OrderRow *row, const OrderTarget *target,
					 Datum *args, char *nulls)
{
	OrderProblem full = {0};
	int64		points;

	if (target->member_id == NULL)
		return FIRST_SEEN_RECORDED;
	if (!MemberHasRoom(prog, target->member_id, target->points, &full))
		return FIRST_SEEN_FULL;
	args[10] = args[12];		/* the multiplier */
	nulls[10] = nulls[12];
	LoyaltyRun(&first_seen_routed, args, nulls, SPI_OK_INSERT_RETURNING);
	if (SPI_processed == 0)
		return FIRST_SEEN_KNOWN;
	points = LoyaltyGetInt64(0, 1);
	if (!row->replayed)
		DeadLetterSupersede(prog->code, target->member_id, row->order_id);
	if (points > 0)
	{
		Credit		credit = {target->member_id, "earn", points, NULL, row->order_id,
		NULL, target->ordered_at};

		CreditPost(prog, &credit);
	}
	return FIRST_SEEN_RECORDED;
}

/*
 * The first event of an order: record it and earn, in one statement.  A
 * refund already on the row is reversed at once.
 */
static FirstSeenResult
OrderFirstSeen(const LoyaltyProgram *prog, const OrderRow *row, const OrderTarget *target)
{
	Datum		args[15];
	char		nulls[15];
	TimestampTz expires_at = 0;
	OrderState	state = {0};

	memset(nulls, ' ', sizeof(nulls));
	OrderArgs(args, nulls, prog, row, target->member_id, target);
	args[6] = Int64GetDatum(target->points);
	args[7] = row->refunded;
	nulls[7] = row->has_refunded ? ' ' : 'n';
	args[8] = BoolGetDatum(target->closed);
	args[9] = TimestampTzGetDatum(target->ordered_at);
	args[10] = TimestampTzGetDatum(LoyaltyAvailableAt(prog, target->ordered_at));
	if (!LoyaltyExpiresAt(prog, target->ordered_at, &expires_at))
		nulls[11] = 'n';
	args[11] = TimestampTzGetDatum(expires_at);
	args[12] = target->multiplier;
	args[13] = Int64GetDatum(LOYALTY_MAX_BALANCE);
	/* A live INSERT makes the order's older letters moot; a replay does not. */
	args[14] = BoolGetDatum(!row->replayed);
	if (LoyaltyDistributed())
	{
		FirstSeenResult seen = OrderFirstSeenRouted(prog, row, target, args, nulls);

		if (seen != FIRST_SEEN_RECORDED || target->member_id == NULL)
			return seen;
	}
	else
	{
		LoyaltyRun(&first_seen, args, nulls, SPI_OK_SELECT);
		if (LoyaltyGetBool(0, 3))
			return FIRST_SEEN_FULL;
		if (LoyaltyGetInt64(0, 1) == 0)
			return FIRST_SEEN_KNOWN;
	}
	if (!target->closed)
		AccrualPosted(prog, target->member_id, target->ordered_at, &target->pricing);
	if (target->reversal == 0)
		return FIRST_SEEN_RECORDED;

	/* Inserted already (partly) refunded. */
	state.exists = true;
	state.member_id = target->member_id;
	state.points = target->points;
	state.generation = 1;
	state.earned_total = target->points;
	state.ordered_at = target->ordered_at;
	state.multiplier = target->multiplier;
	OrderReverseTo(prog, row->order_id, &state, target->reversal, "refund");
	OrderStateSave(prog, row, &state, target);
	return FIRST_SEEN_RECORDED;
}

/*
 * An INSERT of an id loyalty knows.  An open order earns nothing again (a
 * second INSERT of the same order); a closed one (cancelled, deleted) is in
 * the table again and starts a new generation.  full: the first sight found
 * no room in the member's balance.
 */
static bool
OrderInsertKnown(const LoyaltyProgram *prog, OrderRow *row, OrderTarget *target,
				 bool full, OrderProblem *problem)
{
	OrderState	state;

	OrderStateLoad(prog->code, target->member_id, row->order_id, &state);
	if (state.exists && !state.closed)
		return true;			/* known and open: earns once */
	if (!MemberHasRoom(prog, target->member_id, target->points, problem))
		return false;
	if (!state.exists)
	{
		/* Room made since (or a race lost): the first sight again. */
		if (full || OrderFirstSeen(prog, row, target) == FIRST_SEEN_FULL)
			return SetProblem(problem, ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
							  psprintf("member \"%s\" earning " INT64_FORMAT " points would hold more than " INT64_FORMAT,
									   target->member_id, target->points, LOYALTY_MAX_BALANCE));
		return true;
	}
	if (target->closed)
		return true;			/* closed again: nothing to earn */
	state.closed = false;
	state.generation++;
	OrderEarn(prog, row->order_id, &state, target);
	AccrualPosted(prog, target->member_id, target->ordered_at, &target->pricing);
	OrderStateSave(prog, row, &state, target);
	return true;
}

/* An INSERT: the first sight of an order, or of an id loyalty knows. */
static bool
OrderInsertApply(const LoyaltyProgram *prog, OrderRow *row, OrderProblem *problem)
{
	OrderState	none = {0};
	OrderTarget target;
	FirstSeenResult seen;

	/* Earns no more; the trigger skips new orders, a replayed letter stays. */
	if (prog->archived)
		return SetProblem(problem, ERRCODE_LOYALTY_PROGRAM_ARCHIVED,
						  psprintf("program \"%s\" is archived: it earns no more", prog->code));
	if (!OrderRowCheck(prog, ORDER_INSERT, row, problem) ||
		!OrderTargetCompute(prog, ORDER_INSERT, row, &none, &target, problem))
		return false;
	seen = OrderFirstSeen(prog, row, &target);
	if (seen == FIRST_SEEN_RECORDED)
		return true;
	return OrderInsertKnown(prog, row, &target, seen == FIRST_SEEN_FULL, problem);
}

/*
 * Applies one event.  Returns true when done (or nothing to do), false with
 * *problem set when it must wait in the dead letters.  *unrecorded is set
 * when an UPDATE or DELETE found no record of the order: it predates the
 * attachment, or its first event waits in the dead letters, which only the
 * caller can tell (the dead letters replay through here; the trigger's
 * ApplyEvent keeps the letters of the orders it changes in step).
 */
bool
OrderEventApply(const LoyaltyProgram *prog, OrderEventKind kind, OrderRow *row,
				bool *unrecorded, OrderProblem *problem)
{
	OrderState	state;
	OrderTarget target;

	*unrecorded = false;
	/* An order earns once: first_seen writes nothing for a known id. */
	if (kind == ORDER_INSERT)
		return OrderInsertApply(prog, row, problem);

	OrderStateLoad(prog->code, row->member_id, row->order_id, &state);
	if (!state.exists)
	{
		*unrecorded = true;
		return true;
	}
	if (state.closed)
		return true;			/* cancelled or deleted: nothing more to do */
	if (!OrderRowCheck(prog, kind, row, problem))
		return false;

	if (!OrderTargetCompute(prog, kind, row, &state, &target, problem))
		return false;

	if (target.closed)
	{
		OrderReverseTo(prog, row->order_id, &state, state.points, OrderClosingReason(kind, row));
		state.closed = true;
	}
	else if (state.points == target.points &&
			 (state.member_id == NULL) == (target.member_id == NULL) &&
			 (state.member_id == NULL || strcmp(state.member_id, target.member_id) == 0))
		OrderReverseTo(prog, row->order_id, &state, target.reversal, "refund");
	else
	{
		/* New member or new points: reverse what is left, then earn again. */
		if (prog->archived)		/* it earns no more: the letter waits, visible */
			return SetProblem(problem, ERRCODE_LOYALTY_PROGRAM_ARCHIVED,
							  psprintf("program \"%s\" is archived: order \"%s\" cannot earn again",
									   prog->code, row->order_id));
		if (!MemberHasRoom(prog, target.member_id, target.points, problem))
			return false;
		OrderReverseTo(prog, row->order_id, &state, state.points,
					   OrderMemberMoved(&state, &target) ? "moved" : "changed");
		state.generation++;
		OrderEarn(prog, row->order_id, &state, &target);
		AccrualPosted(prog, target.member_id, target.ordered_at, &target.pricing);
	}
	OrderStateSave(prog, row, &state, &target);
	return true;
}

/*
 * Makes a target a history order's: it counts (activity, RFM, tiers) but
 * earns nothing, now or later (multiplier 0, see OrderTargetCompute).
 */
void
OrderTargetHistory(OrderTarget *target)
{
	target->points = 0;
	target->reversal = 0;
	target->multiplier = NumericGetDatum(int64_to_numeric(0));
}

/*
 * The back-fill of one order, one by one (refunded already, or a program
 * whose features price orders): the first sight of the order, as an INSERT
 * would record it.  An id loyalty knows is left as it is (the back-fill
 * skips what is recorded).  history: the order counts but earns nothing.
 */
bool
OrderBackfillApply(const LoyaltyProgram *prog, OrderRow *row, bool history,
				   OrderProblem *problem)
{
	OrderState	none = {0};
	OrderTarget target;

	if (!OrderRowCheck(prog, ORDER_INSERT, row, problem) ||
		!OrderTargetCompute(prog, ORDER_INSERT, row, &none, &target, problem))
		return false;
	if (history)
		OrderTargetHistory(&target);
	if (OrderFirstSeen(prog, row, &target) == FIRST_SEEN_FULL)
		return SetProblem(problem, ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
						  psprintf("member \"%s\" earning " INT64_FORMAT " points would hold more than " INT64_FORMAT,
								   target.member_id, target.points, LOYALTY_MAX_BALANCE));
	return true;
}
