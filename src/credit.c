/*
 * credit.c
 *		The one writer of credits (see credit.h).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "cluster.h"
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
 * The same writes on a Citus cluster, one router statement per table (a
 * statement whose CTEs write several distributed tables is planned through
 * intermediate results there, which a trigger on a shard cannot run): the
 * member (enrolled on its first credit; the upsert locks its row and says
 * whether it is held), the ledger row, its lot, and a held member's
 * held_lot.  See CREDIT_WRITE for the rules.
 */
static LoyaltyQuery credit_member_routed = {
	"INSERT INTO loyalty.member AS m (program, member_id, balance, lifetime_earned)"
	" VALUES ($1, $2, $3, $3)"
	" ON CONFLICT (program, member_id) DO UPDATE"
	" SET balance = m.balance OPERATOR(pg_catalog.+) excluded.balance,"
	"     lifetime_earned = m.lifetime_earned OPERATOR(pg_catalog.+) excluded.lifetime_earned"
	" RETURNING m.status OPERATOR(pg_catalog.=) 'held'",
	3, {TEXTOID, TEXTOID, INT8OID}
};

static LoyaltyQuery credit_ledger_routed = {
	"INSERT INTO loyalty.ledger (id, program, member_id, kind, points, ref, order_id, reason, occurred_at)"
	" VALUES (" CREDIT_NEXT_ID ", $1, $2, $3::loyalty.ledger_kind, $4, $5, $6, $7, $8) RETURNING id",
	8, {TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

static LoyaltyQuery credit_lot_routed = {
	"INSERT INTO loyalty.lot (id, program, member_id, order_id, earned, remaining, available_at, expires_at)"
	" VALUES ($1, $2, $3, $4, $5, $5, CASE WHEN $8 THEN 'infinity'::pg_catalog.timestamptz ELSE $6 END, $7)",
	8, {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, BOOLOID}
};

static LoyaltyQuery credit_held_routed = {
	"INSERT INTO loyalty.held_lot (lot_id, program, member_id, available_at) VALUES ($1, $2, $3, $4)",
	4, {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

/* CreditPost on a cluster (args as credit_post's); returns the ledger id. */
static int64
CreditPostRouted(Datum *args, const char *nulls)
{
	bool		held;
	int64		id;
	Datum		lot[8];
	char		lot_nulls[8] = "        ";

	LoyaltyRun(&credit_member_routed, (Datum[]) {args[0], args[1], args[3]}, NULL,
			   SPI_OK_INSERT_RETURNING);
	held = LoyaltyGetBool(0, 1);
	LoyaltyRun(&credit_ledger_routed, args, nulls, SPI_OK_INSERT_RETURNING);
	id = LoyaltyGetInt64(0, 1);
	lot[0] = Int64GetDatum(id);
	lot[1] = args[0];
	lot[2] = args[1];
	lot[3] = args[5];
	lot_nulls[3] = nulls[5];
	lot[4] = args[3];
	lot[5] = args[8];
	lot[6] = args[9];
	lot_nulls[6] = nulls[9];
	lot[7] = BoolGetDatum(held);
	LoyaltyRun(&credit_lot_routed, lot, lot_nulls, SPI_OK_INSERT);
	if (held)
		LoyaltyRun(&credit_held_routed, (Datum[]) {lot[0], args[0], args[1], args[8]}, NULL,
				   SPI_OK_INSERT);
	return id;
}

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
	if (LoyaltyDistributed())
		return CreditPostRouted(args, nulls);
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
