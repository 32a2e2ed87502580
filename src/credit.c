/*
 * credit.c
 *		The one writer of credits (see credit.h).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "credit.h"
#include "ledger.h"
#include "spi_util.h"

static LoyaltyQuery credit_post = {
	"WITH credit AS MATERIALIZED ("
	"   SELECT " CREDIT_NEXT_ID " AS id, $2::pg_catalog.text AS member_id,"
	"          $3::pg_catalog.text AS kind, $4::pg_catalog.int8 AS points,"
	"          $5::pg_catalog.text AS ref, $6::pg_catalog.text AS order_id,"
	"          $7::pg_catalog.text AS reason, $8::pg_catalog.timestamptz AS occurred_at,"
	"          $9::pg_catalog.timestamptz AS available_at, $10::pg_catalog.timestamptz AS expires_at),"
	CREDIT_WRITE
	" SELECT id FROM credit",
	10, {TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID}
};

/*
 * Posts one credit as a new lot, available and expiring by the program's
 * terms at its time, counted from it.  An archived program credits nothing.  Returns its ledger id.
 */
int64
CreditPost(const LoyaltyProgram *prog, const Credit *credit)
{
	Datum		args[10];
	char		nulls[10] = "          ";
	TimestampTz expires_at = 0;

	Assert(credit->points > 0);
	LoyaltyRequireNotArchived(prog);
	args[0] = CStringGetTextDatum(prog->code);
	args[1] = CStringGetTextDatum(credit->member_id);
	args[2] = CStringGetTextDatum(credit->kind);
	args[3] = Int64GetDatum(credit->points);
	args[4] = LoyaltyTextOrNull(credit->ref, &nulls[4]);
	args[5] = LoyaltyTextOrNull(credit->order_id, &nulls[5]);
	args[6] = LoyaltyTextOrNull(credit->reason, &nulls[6]);
	args[7] = TimestampTzGetDatum(credit->occurred_at);
	args[8] = TimestampTzGetDatum(LoyaltyAvailableAt(prog, credit->occurred_at));
	if (!LoyaltyExpiresAt(prog, credit->occurred_at, &expires_at))
		nulls[9] = 'n';
	args[9] = TimestampTzGetDatum(expires_at);
	LoyaltyRun(&credit_post, args, nulls, SPI_OK_SELECT);
	return LoyaltyGetInt64(0, 1);
}

/*
 * Posts a credit that carries a reference, once: the member is enrolled
 * and locked, and a replay returns the first ledger id (the member's
 * reference used for another kind or amount is LY003; another member's use
 * of the same reference is another operation).
 */
int64
CreditPostOnce(const LoyaltyProgram *prog, const Credit *credit)
{
	MemberAccount account;
	LedgerRow	first;

	Assert(credit->ref != NULL);
	LedgerEnsureMember(prog->code, credit->member_id, &account);
	if (LedgerFindRef(prog->code, credit->member_id, credit->ref, &first))
	{
		LedgerCheckReplay(prog->code, credit->ref, &first, credit->member_id, credit->kind,
						  credit->points);
		return first.id;
	}
	return CreditPost(prog, credit);
}
