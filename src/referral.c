/*
 * referral.c
 *		The C pieces of referrals: the credit of a referral reward or a
 *		commission, and the as_of rule of loyalty.refer.
 *
 * Referral rewards and commissions are credits like any other: they go
 * through the one writer (CreditPost, CREDIT_WRITE), so a held member's
 * reward lands in a frozen lot like an order's points.  They are posted by
 * the extension itself (settle_referrals, the commission trigger), dated at
 * the settlement or at the order: the caller's as_of rules of loyalty.earn
 * do not apply, which is why they have their own, internal, entry point.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "caller.h"
#include "credit.h"
#include "ledger.h"
#include "loyalty.h"
#include "program.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(loyalty_referral_credit);
/*
 * loyalty.referral_credit(program, member_id, points, ref, reason,
 * occurred_at): an earn credit idempotent on (member, ref) (a replay
 * returns the first ledger id; the member's ref used for another amount is
 * LY003).
 * Internal: executable by the extension owner only.
 */
Datum
loyalty_referral_credit(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	char	   *member_id = LoyaltyTextArg(fcinfo, 1, "member_id");
	int64		points = LoyaltyPositivePointsArg(fcinfo, 2);
	char	   *ref = LoyaltyTextArg(fcinfo, 3, "ref");
	char	   *reason = LoyaltyTextArg(fcinfo, 4, "reason");
	TimestampTz occurred_at = LoyaltyTimestampArg(fcinfo, 5, "occurred_at");
	LoyaltyProgram prog;
	Credit		credit = {member_id, "earn", points, ref, NULL, reason, occurred_at};
	int64		id;

	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	id = CreditPostOnce(&prog, &credit);
	SPI_finish();
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(loyalty_check_referral_as_of);
/*
 * loyalty.check_referral_as_of(as_of): a referral is recorded when it
 * happens.  Neither ahead of the clock nor behind the transaction's start
 * (beyond the skew) unless the caller is an admin: a back-dated referral
 * would pass the "already ordered" check against orders placed since, a
 * post-dated one would start its pending time late.  Returns as_of.
 */
Datum
loyalty_check_referral_as_of(PG_FUNCTION_ARGS)
{
	TimestampTz as_of = LoyaltyCheckAsOf(LoyaltyTimestampArg(fcinfo, 0, "as_of"));

	LoyaltyCheckPastAsOfWith(as_of,
							 "Only members of loyalty_admin may record a referral at a time that has passed: the referee's orders placed since would not count as ordered before.",
							 "Leave as_of out (it defaults to now()); a replay of the same referral still returns the recorded one.");
	PG_RETURN_TIMESTAMPTZ(as_of);
}
