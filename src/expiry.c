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
#include "funcapi.h"
#include "access/htup_details.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "health.h"
#include "ledger.h"
#include "loyalty.h"
#include "lots.h"
#include "program.h"
#include "spi_util.h"

/* Members of one program per NOTICE of progress. */
#define EXPIRY_PROGRESS_EVERY 10000

static LoyaltyQuery members_with_expiry = {
	"SELECT DISTINCT program, member_id FROM loyalty.lot"
	" WHERE remaining OPERATOR(pg_catalog.>) 0 AND loyalty.lot_expired(expires_at, $2)"
	"   AND ($1::pg_catalog.text IS NULL OR program OPERATOR(pg_catalog.=) $1)"
	" ORDER BY program, member_id LIMIT $3",
	3, {TEXTOID, TIMESTAMPTZOID, INT4OID}
};

static LoyaltyQuery expire_member_lots = {
	"WITH old AS (SELECT id, remaining, order_id, expires_at FROM loyalty.lot"
	"              WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $2"
	"                AND remaining OPERATOR(pg_catalog.>) 0"
	"                AND loyalty.lot_expired(expires_at, $3)),"
	" e AS (INSERT INTO loyalty.ledger (program, member_id, kind, points, order_id, lot_id,"
	"                                   reason, occurred_at)"
	"       SELECT $1, $2, 'expire', OPERATOR(pg_catalog.-) old.remaining, old.order_id, old.id,"
	"              'expiry', old.expires_at"
	"         FROM old ORDER BY old.expires_at, old.id"
	"       RETURNING id, lot_id, OPERATOR(pg_catalog.-) points AS points),"
	" z AS (UPDATE loyalty.lot l SET remaining = 0 FROM old"
	"        WHERE l.id OPERATOR(pg_catalog.=) old.id AND l.member_id OPERATOR(pg_catalog.=) $2)"
	" INSERT INTO loyalty.lot_use (lot_id, ledger_id, program, member_id, points)"
	" SELECT e.lot_id, e.id, $1, $2, e.points FROM e"
	" RETURNING points",
	3, {TEXTOID, TEXTOID, TIMESTAMPTZOID}, true
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

/*
 * Expires the lots of up to max_members members (0: all) whose lots have
 * expired by as_of, one member at a time.  Sets *members to how many were
 * processed; returns the points expired.
 */
static int64
ExpireMembers(const char *code, TimestampTz as_of, int32 max_members, int64 *members)
{
	Datum		args[3];
	char		nulls[3] = "   ";
	SPITupleTable *found;
	uint64		nfound;
	int64		expired = 0;

	args[0] = LoyaltyTextOrNull(code, &nulls[0]);
	args[1] = TimestampTzGetDatum(as_of);
	args[2] = Int32GetDatum(max_members);
	if (max_members <= 0)
		nulls[2] = 'n';
	LoyaltyRun(&members_with_expiry, args, nulls, SPI_OK_SELECT);
	found = SPI_tuptable;
	nfound = SPI_processed;

	for (uint64 i = 0; i < nfound; i++)
	{
		SPI_tuptable = found;
		expired += ExpireMember(LoyaltyGetText(i, 1), LoyaltyGetText(i, 2), as_of);
		if ((i + 1) % EXPIRY_PROGRESS_EVERY == 0)
			ereport(NOTICE,
					(errmsg("loyalty: expiry %s: " UINT64_FORMAT " of " UINT64_FORMAT " members, " INT64_FORMAT " points expired",
							code ? code : "all programs", i + 1, nfound, expired)));
		CHECK_FOR_INTERRUPTS();
	}
	*members = (int64) nfound;
	return expired;
}

PG_FUNCTION_INFO_V1(loyalty_expire_points);
/* loyalty.expire_points(program, as_of) returns the points expired. */
Datum
loyalty_expire_points(PG_FUNCTION_ARGS)
{
	char	   *code = PG_ARGISNULL(0) ? NULL : LoyaltyTextArg(fcinfo, 0, "program");
	TimestampTz as_of = LoyaltyTimestampArg(fcinfo, 1, "as_of");
	LoyaltyProgram prog;
	int64		members;
	int64		expired;
	TimestampTz started = GetCurrentTimestamp();

	SPI_connect();
	if (code != NULL)
		LoyaltyProgramRequire(code, &prog);
	expired = ExpireMembers(code, as_of, 0, &members);
	JobRunRecord("expire_points", code, started, expired,
				 psprintf("as_of %s: " INT64_FORMAT " members, " INT64_FORMAT " points expired",
						  timestamptz_to_str(as_of), members, expired));
	SPI_finish();
	PG_RETURN_INT64(expired);
}

PG_FUNCTION_INFO_V1(loyalty_expire_points_chunk);
/* loyalty.expire_points_chunk(program, as_of, max_members) returns (members, points). */
Datum
loyalty_expire_points_chunk(PG_FUNCTION_ARGS)
{
	char	   *code = PG_ARGISNULL(0) ? NULL : LoyaltyTextArg(fcinfo, 0, "program");
	TimestampTz as_of = LoyaltyTimestampArg(fcinfo, 1, "as_of");
	int32		max_members = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	LoyaltyProgram prog;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	int64		members;

	if (max_members <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_members must be positive, not %d", max_members)));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "loyalty: expire_points_chunk must return a row");

	SPI_connect();
	if (code != NULL)
		LoyaltyProgramRequire(code, &prog);
	values[1] = Int64GetDatum(ExpireMembers(code, as_of, max_members, &members));
	values[0] = Int64GetDatum(members);
	SPI_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
