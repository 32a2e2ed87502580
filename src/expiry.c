/*
 * expiry.c
 *		loyalty.expire_points(): what is left of lots past their expiry
 *		leaves the balance, one ledger row per lot, dated at its expiry.
 *
 * Debt is paid from expiring points first (they would be lost anyway).
 * Idempotent: an expired lot has nothing left, so a second run takes nothing.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "ledger.h"
#include "loyalty.h"
#include "lots.h"
#include "program.h"
#include "spi_util.h"

/* Members of one program per NOTICE of progress. */
#define EXPIRY_PROGRESS_EVERY 10000

static LoyaltyQuery members_with_expiry = {
	"SELECT DISTINCT program, member_id FROM loyalty.lot"
	" WHERE remaining > 0 AND expires_at <= $2 AND ($1::text IS NULL OR program = $1)"
	" ORDER BY program, member_id",
	2, {TEXTOID, TIMESTAMPTZOID}
};

static LoyaltyQuery expire_member_lots = {
	"WITH old AS (SELECT id, remaining, order_id, expires_at FROM loyalty.lot"
	"              WHERE program = $1 AND member_id = $2 AND remaining > 0 AND expires_at <= $3),"
	" e AS (INSERT INTO loyalty.ledger (program, member_id, kind, points, order_id, lot_id,"
	"                                   reason, occurred_at)"
	"       SELECT $1, $2, 'expire', -old.remaining, old.order_id, old.id, 'expiry', old.expires_at"
	"         FROM old ORDER BY old.expires_at, old.id"
	"       RETURNING id, lot_id, -points AS points),"
	" z AS (UPDATE loyalty.lot l SET remaining = 0 FROM old WHERE l.id = old.id)"
	" INSERT INTO loyalty.lot_use (lot_id, ledger_id, program, member_id, points)"
	" SELECT e.lot_id, e.id, $1, $2, e.points FROM e"
	" RETURNING points",
	3, {TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

/* Expires one member's lots under the member's lock; returns the points. */
static int64
ExpireMember(const char *program, const char *member_id, TimestampTz as_of)
{
	MemberAccount account;
	MemberDelta delta = {0};
	Datum		args[3];

	SPI_connect();
	LedgerLockMember(program, member_id, &account);
	if (account.debt > 0)
		delta.debt = -LotsSettleDebt(program, member_id, account.debt, LOTS_EXPIRED, as_of);

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(member_id);
	args[2] = TimestampTzGetDatum(as_of);
	LoyaltyRun(&expire_member_lots, args, NULL, SPI_OK_INSERT_RETURNING);
	for (uint64 i = 0; i < SPI_processed; i++)
		delta.expired += LoyaltyGetInt64(i, 1);

	delta.balance = -delta.expired;
	if (delta.expired != 0 || delta.debt != 0)
		LedgerApplyToMember(program, member_id, &delta);
	SPI_finish();
	return delta.expired;
}

PG_FUNCTION_INFO_V1(loyalty_expire_points);
/* loyalty.expire_points(program, as_of) returns the points expired. */
Datum
loyalty_expire_points(PG_FUNCTION_ARGS)
{
	char	   *code = PG_ARGISNULL(0) ? NULL : LoyaltyTextArg(fcinfo, 0, "program");
	TimestampTz as_of = LoyaltyTimestampArg(fcinfo, 1, "as_of");
	LoyaltyProgram prog;
	Datum		args[2];
	char		nulls[2] = "  ";
	SPITupleTable *members;
	uint64		nmembers;
	int64		expired = 0;

	SPI_connect();
	if (code != NULL)
		LoyaltyProgramRequire(code, &prog);
	args[0] = LoyaltyTextOrNull(code, &nulls[0]);
	args[1] = TimestampTzGetDatum(as_of);
	LoyaltyRun(&members_with_expiry, args, nulls, SPI_OK_SELECT);
	members = SPI_tuptable;
	nmembers = SPI_processed;

	for (uint64 i = 0; i < nmembers; i++)
	{
		SPI_tuptable = members;
		expired += ExpireMember(LoyaltyGetText(i, 1), LoyaltyGetText(i, 2), as_of);
		if ((i + 1) % EXPIRY_PROGRESS_EVERY == 0)
			ereport(NOTICE,
					(errmsg("loyalty: expiry %s: " UINT64_FORMAT " of " UINT64_FORMAT " members, " INT64_FORMAT " points expired",
							code ? code : "all programs", i + 1, nmembers, expired)));
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	PG_RETURN_INT64(expired);
}
