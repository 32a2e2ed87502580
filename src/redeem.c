/*
 * redeem.c
 *		Spending points and cancelling a spend.
 *
 * A redemption locks the member's row, checks the balance available at
 * as_of, pays any debt first, then takes the points from the lots that
 * expire soonest.  Two sessions redeeming one balance therefore queue on the
 * lock and the second sees what the first left: never overspent.
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
#include "lots.h"
#include "program.h"
#include "spi_util.h"

static LoyaltyQuery find_unredeem = {
	"SELECT id FROM loyalty.ledger"
	" WHERE kind OPERATOR(pg_catalog.=) 'unredeem' AND related_id OPERATOR(pg_catalog.=) $1"
	"   AND member_id OPERATOR(pg_catalog.=) $2",
	2, {INT8OID, TEXTOID}
};

/*
 * The ledger rows of a reference in a program, redemptions first: a
 * reference is unique per member, so several members may have used it.
 */
static LoyaltyQuery find_ref_rows = {
	"SELECT id, member_id, kind::pg_catalog.text, points FROM loyalty.ledger"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND ref OPERATOR(pg_catalog.=) $2"
	" ORDER BY kind OPERATOR(pg_catalog.<>) 'redeem', member_id COLLATE pg_catalog.\"C\" LIMIT 2",
	2, {TEXTOID, TEXTOID}
};

/*
 * The redemption a reference names in a program, for cancel_redemption
 * (which has no member): not found, or not a redemption, is an error; so
 * is a reference two members used for redemptions (LY003).
 */
static void
FindRedemption(const char *program, const char *ref, LedgerRow *row)
{
	LoyaltyRun(&find_ref_rows, (Datum[]) {CStringGetTextDatum(program), CStringGetTextDatum(ref)},
			   NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no redemption with reference \"%s\" in program \"%s\"", ref, program)));
	row->id = LoyaltyGetInt64(0, 1);
	row->member_id = LoyaltyGetText(0, 2);
	row->kind = LoyaltyGetText(0, 3);
	row->points = LoyaltyGetInt64(0, 4);
	if (strcmp(row->kind, "redeem") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reference \"%s\" in program \"%s\" is a ledger row of kind %s, not a redemption",
						ref, program, row->kind)));
	if (SPI_processed > 1 && strcmp(LoyaltyGetText(1, 3), "redeem") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_REF_CONFLICT),
				 errmsg("reference \"%s\" names redemptions of more than one member in program \"%s\"",
						ref, program),
				 errdetail("Members \"%s\" and \"%s\" each redeemed under it (a reference is unique per member).",
						   row->member_id, LoyaltyGetText(1, 2)),
				 errhint("Use references unique in the program for redemptions that may be cancelled.")));
}

static void
CheckMayRedeem(const char *program, const char *member_id, const MemberAccount *account,
			   int64 points, int64 lots_available, TimestampTz as_of)
{
	int64		available = lots_available - account->debt;

	if (strcmp(account->status, "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_MEMBER_NOT_ACTIVE),
				 errmsg("member \"%s\" of program \"%s\" is %s and cannot redeem",
						member_id, program, account->status),
				 errhint("Set the member active again with loyalty.set_member_status().")));
	if (points > available)
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_INSUFFICIENT_POINTS),
				 errmsg("insufficient points: member \"%s\" has " INT64_FORMAT " available, " INT64_FORMAT " requested",
						member_id, available, points),
				 account->debt > 0 ?
				 errdetail("The member owes " INT64_FORMAT " points from refunds, paid before any redemption.",
						   account->debt) :
				 errdetail("Points count as available after their pending days and until they expire, as of %s.",
						   timestamptz_to_str(as_of))));
}

PG_FUNCTION_INFO_V1(loyalty_redeem);
/* loyalty.redeem(program, member_id, points, ref, as_of) returns the ledger id. */
Datum
loyalty_redeem(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	char	   *member_id = LoyaltyTextArg(fcinfo, 1, "member_id");
	int64		points = LoyaltyPositivePointsArg(fcinfo, 2);
	char	   *ref = LoyaltyTextArg(fcinfo, 3, "ref");
	TimestampTz as_of = LoyaltyCheckAsOf(LoyaltyTimestampArg(fcinfo, 4, "as_of"));
	LoyaltyProgram prog;
	MemberAccount account;
	MemberDelta delta = {0};
	LedgerRow	first;
	int64		id;

	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	LedgerLockMember(code, member_id, &account);
	if (LedgerFindRef(code, member_id, ref, &first))
	{
		LedgerCheckReplay(code, ref, &first, member_id, "redeem", -points);
		SPI_finish();
		PG_RETURN_INT64(first.id);
	}
	LoyaltyCheckPastAsOf(as_of);
	CheckMayRedeem(code, member_id, &account, points,
				   LotsAvailable(code, member_id, as_of), as_of);

	if (account.debt > 0)
		delta.debt = -LotsSettleDebt(code, member_id, account.debt, LOTS_AVAILABLE, as_of);
	id = LedgerAppend(code, member_id, "redeem", -points, ref, NULL, 0, 0, NULL, as_of);
	if (LotsTake(code, member_id, points, LOTS_AVAILABLE, as_of, NULL, id) != points)
		elog(ERROR, "loyalty: lots of member \"%s\" do not hold the available balance", member_id);

	delta.balance = -points;
	delta.redeemed = points;
	LedgerApplyToMember(code, member_id, &delta);
	SPI_finish();
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(loyalty_cancel_redemption);
/* loyalty.cancel_redemption(program, ref) returns the unredeem ledger id. */
Datum
loyalty_cancel_redemption(PG_FUNCTION_ARGS)
{
	char	   *code = LoyaltyTextArg(fcinfo, 0, "program");
	char	   *ref = LoyaltyTextArg(fcinfo, 1, "ref");
	LoyaltyProgram prog;
	MemberAccount account;
	MemberDelta delta = {0};
	LedgerRow	redemption;
	int64		id;

	SPI_connect();
	LoyaltyProgramRequire(code, &prog);
	FindRedemption(code, ref, &redemption);

	LedgerLockMember(code, redemption.member_id, &account);
	LoyaltyRun(&find_unredeem,
			   (Datum[]) {Int64GetDatum(redemption.id), CStringGetTextDatum(redemption.member_id)},
			   NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		id = LoyaltyGetInt64(0, 1);		/* cancelled already: the same answer */
		SPI_finish();
		PG_RETURN_INT64(id);
	}

	id = LedgerAppend(code, redemption.member_id, "unredeem", -redemption.points, NULL, NULL,
					  0, redemption.id, "cancel_redemption", GetCurrentTransactionStartTimestamp());
	if (LotsGiveBack(redemption.member_id, redemption.id, id) != -redemption.points)
		elog(ERROR, "loyalty: lot uses of redemption " INT64_FORMAT " do not add up", redemption.id);

	delta.balance = -redemption.points;
	delta.redeemed = redemption.points;
	LedgerApplyToMember(code, redemption.member_id, &delta);
	SPI_finish();
	PG_RETURN_INT64(id);
}
