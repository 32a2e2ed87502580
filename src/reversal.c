/*
 * reversal.c
 *		Taking points back outside the order flow: what is left of an
 *		order's points (reverse_order) and a credit not tied to an order
 *		(take_back), for the fraud review and the referral features.
 *
 * Both post ledger rows of kind reverse through LedgerReverseWith, under
 * the member's row lock, the way a refund does; both are idempotent.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "caller.h"
#include "ledger.h"
#include "loyalty.h"
#include "program.h"
#include "spi_util.h"

/* The order's current generation, locked as the accrual trigger locks it. */
static LoyaltyQuery order_lock = {
	"SELECT member_id, points, reversed_target, ordered_at FROM loyalty.order_earning"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND order_id OPERATOR(pg_catalog.=) $2 FOR UPDATE",
	2, {TEXTOID, TEXTOID}, true
};

/*
 * The whole generation now counts as reversed: a later refund, cancel or
 * delete of the order calls for no more than reversed_target, so it takes
 * nothing more (OrderReverseTo in order_event.c).
 */
static LoyaltyQuery order_reversed = {
	"UPDATE loyalty.order_earning"
	"   SET reversed_target = points,"
	"       reversed_total = reversed_total OPERATOR(pg_catalog.+) $3, updated_at = pg_catalog.now()"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND order_id OPERATOR(pg_catalog.=) $2",
	3, {TEXTOID, TEXTOID, INT8OID}
};

static LoyaltyQuery take_back_find = {
	"SELECT id, member_id, kind::pg_catalog.text, points, reason, order_id, occurred_at"
	"  FROM loyalty.ledger"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $3"
	"   AND ref OPERATOR(pg_catalog.=) $2",
	3, {TEXTOID, TEXTOID, TEXTOID}
};

PG_FUNCTION_INFO_V1(loyalty_reverse_order);
/* loyalty.reverse_order(program, order_id, reason) returns the points reversed. */
Datum
loyalty_reverse_order(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	char	   *order_id = LoyaltyTextArg(fcinfo, 1, "order_id");
	char	   *reason = LoyaltyTextArg(fcinfo, 2, "reason");
	LoyaltyProgram prog;
	Datum		args[3];
	int64		left;
	int64		reversed = 0;

	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	args[0] = CStringGetTextDatum(code);
	args[1] = CStringGetTextDatum(order_id);
	LoyaltyRun(&order_lock, args, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("order \"%s\" is not known in program \"%s\"", order_id, code),
				 errhint("Only orders the accrual trigger recorded (loyalty.order_earning) can be reversed.")));
	left = LoyaltyGetInt64(0, 2) - LoyaltyGetInt64(0, 3);
	if (left <= 0)
	{
		SPI_finish();
		PG_RETURN_INT64(0);		/* reversed, refunded or closed already */
	}
	if (!LoyaltyIsNull(0, 1))
	{
		LedgerReversal rev = {LoyaltyGetText(0, 1), order_id, NULL, reason, left,
			GetCurrentTransactionStartTimestamp(), false,
		DatumGetTimestampTz(LoyaltyGetDatum(0, 4))};

		reversed = LedgerReverseWith(&prog, &rev);
	}
	args[2] = Int64GetDatum(reversed);
	LoyaltyRun(&order_reversed, args, NULL, SPI_OK_UPDATE);
	SPI_finish();
	PG_RETURN_INT64(reversed);
}

/*
 * A take_back replayed with its reference (the member's) must be the same
 * call: the same reason, and points that the first call took in full or, under
 * within_balance (of the terms when it was taken), took at most.  Anything else is LY003.
 */
static void
TakeBackCheckReplay(const LoyaltyProgram *prog, const char *ref, const char *member_id,
					int64 points, const char *reason)
{
	int64		id = LoyaltyGetInt64(0, 1);
	char	   *kind = LoyaltyGetText(0, 3);
	int64		taken = -LoyaltyGetInt64(0, 4);
	char	   *first_reason = LoyaltyIsNull(0, 5) ? "" : LoyaltyGetText(0, 5);
	TimestampTz occurred_at = DatumGetTimestampTz(LoyaltyGetDatum(0, 7));
	bool		same = strcmp(LoyaltyGetText(0, 2), member_id) == 0 &&
		strcmp(kind, "reverse") == 0 && LoyaltyIsNull(0, 6) &&
		strcmp(first_reason, reason) == 0 &&
		(taken == points || (LoyaltyTermsAt(prog, occurred_at)->within_balance && taken < points));

	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_REF_CONFLICT),
				 errmsg("reference \"%s\" was already used in program \"%s\" for another call", ref, prog->code),
				 errdetail("It recorded %s of " INT64_FORMAT " points for member \"%s\" (ledger id " INT64_FORMAT ").",
						   kind, taken, LoyaltyGetText(0, 2), id),
				 errhint("Use a new reference for a new operation; replay a call only with its original arguments.")));
}

PG_FUNCTION_INFO_V1(loyalty_take_back);
/*
 * loyalty.take_back(program, member_id, points, ref, reason, as_of) returns
 * the points taken back.
 */
Datum
loyalty_take_back(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	char	   *member_id = LoyaltyTextArg(fcinfo, 1, "member_id");
	int64		points = LoyaltyPositivePointsArg(fcinfo, 2);
	char	   *ref = LoyaltyTextArg(fcinfo, 3, "ref");
	char	   *reason = LoyaltyTextArg(fcinfo, 4, "reason");
	TimestampTz as_of = LoyaltyCheckAsOf(LoyaltyTimestampArg(fcinfo, 5, "as_of"));
	LoyaltyProgram prog;
	MemberAccount account;
	Datum		args[3];
	int64		taken;

	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	if (!LedgerLockMember(code, member_id, &account))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("member \"%s\" is not enrolled in program \"%s\"", member_id, code)));
	args[0] = CStringGetTextDatum(code);
	args[1] = CStringGetTextDatum(ref);
	args[2] = CStringGetTextDatum(member_id);
	LoyaltyRun(&take_back_find, args, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		TakeBackCheckReplay(&prog, ref, member_id, points, reason);
		taken = -LoyaltyGetInt64(0, 4);
	}
	else
	{
		LedgerReversal rev = {member_id, NULL, ref, reason, points, as_of, true, as_of};

		taken = LedgerReverseWith(&prog, &rev);
	}
	SPI_finish();
	PG_RETURN_INT64(taken);
}
