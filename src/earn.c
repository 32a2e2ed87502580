/*
 * earn.c
 *		loyalty.earn(): a credit outside the order flow (gift, goodwill,
 *		correction), idempotent on its reference.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "credit.h"
#include "caller.h"
#include "ledger.h"
#include "loyalty.h"
#include "program.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(loyalty_earn);
/* loyalty.earn(program, member_id, points, ref, reason, as_of) returns the ledger id. */
Datum
loyalty_earn(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	char	   *member_id = LoyaltyTextArg(fcinfo, 1, "member_id");
	int64		points = LoyaltyPositivePointsArg(fcinfo, 2);
	char	   *ref = LoyaltyTextArg(fcinfo, 3, "ref");
	char	   *reason = PG_ARGISNULL(4) ? "adjust" : LoyaltyTextArg(fcinfo, 4, "reason");
	TimestampTz as_of = LoyaltyCheckAsOf(LoyaltyTimestampArg(fcinfo, 5, "as_of"));

	/* The default reason is a manual adjustment; a named one is an earning. */
	const char *kind = strcmp(reason, "adjust") == 0 ? "adjust" : "earn";
	LoyaltyProgram prog;
	Credit		credit = {member_id, kind, points, ref, NULL, reason, as_of};
	int64		id;

	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	id = CreditPostOnce(&prog, &credit);
	SPI_finish();
	PG_RETURN_INT64(id);
}
