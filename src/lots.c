/*
 * lots.c
 *		Earn lots: what is left of each credit, consumed soonest-expiry first.
 *
 * Every point taken from or given back to a lot is written to lot_use, so
 * earned - remaining always equals the sum of a lot's uses (verify() checks).
 * Callers hold the member's lock.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/lsyscache.h"

#include "cluster.h"
#include "lots.h"
#include "spi_util.h"

static LoyaltyQuery lots_available = {
	"SELECT coalesce(pg_catalog.sum(remaining), 0)::bigint FROM loyalty.lot"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $2"
	"   AND remaining OPERATOR(pg_catalog.>) 0"
	"   AND loyalty.lot_spendable(available_at, expires_at, $3)",
	3, {TEXTOID, TEXTOID, TIMESTAMPTZOID}, true
};

/*
 * Lots in the order they are spent: the order's own lots first (a refund
 * takes back its own points), then soonest expiry, never-expiring last.
 */
static LoyaltyQuery lots_to_take = {
	"SELECT id, remaining FROM loyalty.lot"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $2"
	"   AND remaining OPERATOR(pg_catalog.>) 0"
	"   AND CASE WHEN $3 OPERATOR(pg_catalog.=) 1 THEN true"
	"            WHEN $3 OPERATOR(pg_catalog.=) 2 THEN loyalty.lot_expired(expires_at, $4)"
	"            ELSE loyalty.lot_spendable(available_at, expires_at, $4) END"
	" ORDER BY (order_id OPERATOR(pg_catalog.=) $5) IS TRUE DESC, expires_at NULLS LAST,"
	"          available_at, id",
	5, {TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID}, true
};

static LoyaltyQuery lots_use = {
	"WITH u AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS u(lot_id, take)),"
	" taken AS (UPDATE loyalty.lot l SET remaining = l.remaining OPERATOR(pg_catalog.-) u.take"
	"             FROM u WHERE l.id OPERATOR(pg_catalog.=) u.lot_id AND l.member_id OPERATOR(pg_catalog.=) $5)"
	" INSERT INTO loyalty.lot_use (lot_id, ledger_id, program, member_id, points)"
	" SELECT u.lot_id, $3, $4, $5, u.take FROM u",
	5, {INT8ARRAYOID, INT8ARRAYOID, INT8OID, TEXTOID, TEXTOID}
};

static LoyaltyQuery lots_give_back = {
	"WITH u AS (SELECT lot_id, pg_catalog.sum(points) AS points FROM loyalty.lot_use"
	"            WHERE ledger_id OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $3"
	"            GROUP BY lot_id HAVING pg_catalog.sum(points) OPERATOR(pg_catalog.>) 0),"
	" back AS (UPDATE loyalty.lot l SET remaining = l.remaining OPERATOR(pg_catalog.+) u.points"
	"            FROM u WHERE l.id OPERATOR(pg_catalog.=) u.lot_id AND l.member_id OPERATOR(pg_catalog.=) $3"
	"            RETURNING l.id, l.program, l.member_id)"
	" INSERT INTO loyalty.lot_use (lot_id, ledger_id, program, member_id, points)"
	" SELECT u.lot_id, $2, back.program, back.member_id, OPERATOR(pg_catalog.-) u.points"
	"   FROM u JOIN back ON back.id OPERATOR(pg_catalog.=) u.lot_id"
	" RETURNING OPERATOR(pg_catalog.-) points",
	3, {INT8OID, INT8OID, TEXTOID}
};

/* Points of a member's lots that can be spent at as_of (before debt). */
int64
LotsAvailable(const char *program, const char *member_id, TimestampTz as_of)
{
	Datum		args[3];

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(member_id);
	args[2] = TimestampTzGetDatum(as_of);
	LoyaltyRun(&lots_available, args, NULL, SPI_OK_SELECT);
	return LoyaltyGetInt64(0, 1);
}

/* lots_use on a Citus cluster: one lot at a time, by member (router statements). */
static LoyaltyQuery lot_take_routed = {
	"UPDATE loyalty.lot SET remaining = remaining OPERATOR(pg_catalog.-) $4"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $2"
	"   AND id OPERATOR(pg_catalog.=) $3",
	4, {TEXTOID, TEXTOID, INT8OID, INT8OID}
};

static LoyaltyQuery lot_use_routed = {
	"INSERT INTO loyalty.lot_use (lot_id, ledger_id, program, member_id, points)"
	" VALUES ($3, $5, $1, $2, $4)",
	5, {TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID}
};

static void
LotsUseRouted(const char *program, const char *member_id, Datum *ids, Datum *takes, int n,
			  int64 ledger_id)
{
	Datum		args[5];
	char		nulls[5] = "     ";

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(member_id);
	args[4] = Int64GetDatum(ledger_id);
	if (ledger_id == 0)
		nulls[4] = 'n';
	for (int i = 0; i < n; i++)
	{
		args[2] = ids[i];
		args[3] = takes[i];
		LoyaltyRun(&lot_take_routed, args, NULL, SPI_OK_UPDATE);
		LoyaltyRun(&lot_use_routed, args, nulls, SPI_OK_INSERT);
	}
}

/*
 * Takes up to points from a member's lots in spending order and records the
 * uses against ledger_id (0: a debt settlement, recorded with NULL).
 * Returns the points taken, which is less than asked when the lots run out.
 */
int64
LotsTake(const char *program, const char *member_id, int64 points, LotScope scope,
		 TimestampTz as_of, const char *first_order, int64 ledger_id)
{
	Datum		args[5];
	char		nulls[5] = "     ";
	Datum	   *ids;
	Datum	   *takes;
	int			n = 0;
	int64		left = points;

	if (points <= 0)
		return 0;

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(member_id);
	args[2] = Int32GetDatum((int32) scope);
	args[3] = TimestampTzGetDatum(as_of);
	args[4] = LoyaltyTextOrNull(first_order, &nulls[4]);
	LoyaltyRun(&lots_to_take, args, nulls, SPI_OK_SELECT);

	ids = palloc(sizeof(Datum) * (SPI_processed + 1));
	takes = palloc(sizeof(Datum) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed && left > 0; i++)
	{
		int64		take = Min(LoyaltyGetInt64(i, 2), left);

		ids[n] = LoyaltyGetDatum(i, 1);
		takes[n] = Int64GetDatum(take);
		left -= take;
		n++;
	}
	if (n == 0)
		return 0;
	if (LoyaltyDistributed())
	{
		LotsUseRouted(program, member_id, ids, takes, n, ledger_id);
		return points - left;
	}

	memset(nulls, ' ', sizeof(nulls));
	args[0] = LoyaltyArray(ids, NULL, n, INT8OID);
	args[1] = LoyaltyArray(takes, NULL, n, INT8OID);
	args[2] = Int64GetDatum(ledger_id);
	if (ledger_id == 0)
		nulls[2] = 'n';
	args[3] = CStringGetTextDatum(program);
	args[4] = CStringGetTextDatum(member_id);
	LoyaltyRun(&lots_use, args, nulls, SPI_OK_INSERT);
	return points - left;
}

/*
 * Gives the points that the member's ledger row from_ledger_id took back to
 * the same lots (keeping their expiry), recorded against to_ledger_id.
 * Returns the points.
 */
int64
LotsGiveBack(const char *member_id, int64 from_ledger_id, int64 to_ledger_id)
{
	Datum		args[3];
	int64		total = 0;

	args[0] = Int64GetDatum(from_ledger_id);
	args[1] = Int64GetDatum(to_ledger_id);
	args[2] = CStringGetTextDatum(member_id);
	LoyaltyRun(&lots_give_back, args, NULL, SPI_OK_INSERT_RETURNING);
	for (uint64 i = 0; i < SPI_processed; i++)
		total += LoyaltyGetInt64(i, 1);
	return total;
}

/*
 * Pays a member's debt from available lots, soonest expiry first; a zero-sum
 * move (the reversal that made the debt is already in the ledger).
 * Returns the points settled; the caller lowers the member's debt by them.
 */
int64
LotsSettleDebt(const char *program, const char *member_id, int64 debt, LotScope scope,
			   TimestampTz as_of)
{
	return LotsTake(program, member_id, debt, scope, as_of, NULL, 0);
}
