/*
 * ledger.c
 *		Ledger rows, member accounts, and the postings that keep both in step.
 *
 * A posting is: one append-only ledger row, the lot changes it causes, and
 * the matching change of the member's cached figures, all under the
 * member's row lock.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "ledger.h"
#include "loyalty.h"
#include "lots.h"
#include "spi_util.h"

static LoyaltyQuery member_lock = {
	"SELECT status::pg_catalog.text, balance, debt FROM loyalty.member"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $2 FOR UPDATE",
	2, {TEXTOID, TEXTOID}, true
};

static LoyaltyQuery member_insert = {
	"INSERT INTO loyalty.member (program, member_id) VALUES ($1, $2)"
	" ON CONFLICT (program, member_id) DO NOTHING",
	2, {TEXTOID, TEXTOID}
};

static LoyaltyQuery member_apply = {
	"UPDATE loyalty.member"
	"   SET balance = balance OPERATOR(pg_catalog.+) $3,"
	"       debt = debt OPERATOR(pg_catalog.+) $4,"
	"       lifetime_earned = lifetime_earned OPERATOR(pg_catalog.+) $5,"
	"       lifetime_redeemed = lifetime_redeemed OPERATOR(pg_catalog.+) $6,"
	"       lifetime_reversed = lifetime_reversed OPERATOR(pg_catalog.+) $7,"
	"       lifetime_expired = lifetime_expired OPERATOR(pg_catalog.+) $8"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $2",
	8, {TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID}
};

/* A reference is unique per member (ledger_ref_key). */
static LoyaltyQuery ledger_find_ref = {
	"SELECT id, member_id, kind::pg_catalog.text, points FROM loyalty.ledger"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) $2"
	"   AND ref OPERATOR(pg_catalog.=) $3",
	3, {TEXTOID, TEXTOID, TEXTOID}, true
};

static LoyaltyQuery ledger_insert = {
	"INSERT INTO loyalty.ledger (program, member_id, kind, points, ref, order_id, lot_id,"
	"                            related_id, reason, occurred_at)"
	" VALUES ($1, $2, $3::loyalty.ledger_kind, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
	10, {TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID,
	TIMESTAMPTZOID}
};

/* Locks a member's row and reads its account; false when not enrolled. */
bool
LedgerLockMember(const char *program, const char *member_id, MemberAccount *account)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(member_id);
	LoyaltyRun(&member_lock, args, NULL, SPI_OK_SELECT);
	account->exists = SPI_processed > 0;
	if (!account->exists)
	{
		account->status = "active";
		account->balance = 0;
		account->debt = 0;
		return false;
	}
	account->status = LoyaltyGetText(0, 1);
	account->balance = LoyaltyGetInt64(0, 2);
	account->debt = LoyaltyGetInt64(0, 3);
	return true;
}

/* Enrolls the member if needed, then locks its row. */
void
LedgerEnsureMember(const char *program, const char *member_id, MemberAccount *account)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(member_id);
	LoyaltyRun(&member_insert, args, NULL, SPI_OK_INSERT);
	LedgerLockMember(program, member_id, account);
}

void
LedgerApplyToMember(const char *program, const char *member_id, const MemberDelta *delta)
{
	Datum		args[8];

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(member_id);
	args[2] = Int64GetDatum(delta->balance);
	args[3] = Int64GetDatum(delta->debt);
	args[4] = Int64GetDatum(delta->earned);
	args[5] = Int64GetDatum(delta->redeemed);
	args[6] = Int64GetDatum(delta->reversed);
	args[7] = Int64GetDatum(delta->expired);
	LoyaltyRun(&member_apply, args, NULL, SPI_OK_UPDATE);
	if (SPI_processed != 1)
		elog(ERROR, "loyalty: member \"%s\" of program \"%s\" vanished", member_id, program);
}

/*
 * Finds the member's ledger row a reference was first used for.  A reference
 * is an idempotency key of the member's account: another member's row with
 * the same reference is another operation.
 */
bool
LedgerFindRef(const char *program, const char *member_id, const char *ref, LedgerRow *row)
{
	Datum		args[3];

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(member_id);
	args[2] = CStringGetTextDatum(ref);
	LoyaltyRun(&ledger_find_ref, args, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	row->id = LoyaltyGetInt64(0, 1);
	row->member_id = LoyaltyGetText(0, 2);
	row->kind = LoyaltyGetText(0, 3);
	row->points = LoyaltyGetInt64(0, 4);
	return true;
}

/*
 * A replayed call must be the same call: the member's reference used for
 * another kind or amount is a client bug, not a replay.  (row is the
 * member's own, LedgerFindRef; the member is compared all the same.)
 */
void
LedgerCheckReplay(const char *program, const char *ref, const LedgerRow *row,
				  const char *member_id, const char *kind, int64 points)
{
	if (strcmp(row->member_id, member_id) != 0 || strcmp(row->kind, kind) != 0 ||
		row->points != points)
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_REF_CONFLICT),
				 errmsg("reference \"%s\" was already used in program \"%s\" for another call", ref, program),
				 errdetail("It recorded %s of " INT64_FORMAT " points for member \"%s\" (ledger id " INT64_FORMAT ").",
						   row->kind, row->points, row->member_id, row->id),
				 errhint("Use a new reference for a new operation; replay a call only with its original arguments.")));
}

int64
LedgerAppend(const char *program, const char *member_id, const char *kind, int64 points,
			 const char *ref, const char *order_id, int64 lot_id, int64 related_id,
			 const char *reason, TimestampTz occurred_at)
{
	Datum		args[10];
	char		nulls[10] = "          ";

	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(member_id);
	args[2] = CStringGetTextDatum(kind);
	args[3] = Int64GetDatum(points);
	args[4] = LoyaltyTextOrNull(ref, &nulls[4]);
	args[5] = LoyaltyTextOrNull(order_id, &nulls[5]);
	args[6] = Int64GetDatum(lot_id);
	nulls[6] = lot_id == 0 ? 'n' : ' ';
	args[7] = Int64GetDatum(related_id);
	nulls[7] = related_id == 0 ? 'n' : ' ';
	args[8] = LoyaltyTextOrNull(reason, &nulls[8]);
	args[9] = TimestampTzGetDatum(occurred_at);
	LoyaltyRun(&ledger_insert, args, nulls, SPI_OK_INSERT_RETURNING);
	return LoyaltyGetInt64(0, 1);
}

/*
 * Takes back up to points of an order: from the order's own lot first, then
 * the member's other lots; what the lots cannot cover becomes debt, or, with
 * refund_policy within_balance (of the terms the order was placed under), is
 * not taken.  reason says why (refund, cancel, delete, moved, changed: the
 * statement's label).  Returns the points reversed.
 */
int64
LedgerReverse(const LoyaltyProgram *prog, const char *member_id, const char *order_id,
			  int64 points, const char *reason, TimestampTz occurred_at,
			  TimestampTz ordered_at)
{
	LedgerReversal rev = {member_id, order_id, NULL, reason, points, occurred_at, false,
	ordered_at};

	return LedgerReverseWith(prog, &rev);
}

/*
 * A reversal (ledger kind reverse) as rev describes it: from the order's
 * own lots first when it names one, then soonest-expiring; the rest as debt
 * or, under within_balance, not taken.  With record_zero a reversal that
 * takes nothing still writes its (0 point) ledger row, so its reference is
 * used and the decision is on the books.  Returns the points reversed.
 */
int64
LedgerReverseWith(const LoyaltyProgram *prog, const LedgerReversal *rev)
{
	MemberAccount account;
	MemberDelta delta = {0};
	int64		points = rev->points;
	int64		ledger_id;
	int64		taken;

	LedgerEnsureMember(prog->code, rev->member_id, &account);
	if (LoyaltyTermsAt(prog, rev->terms_at)->within_balance)
		points = Min(points, Max(account.balance, 0));
	if (points <= 0 && !rev->record_zero)
		return 0;
	points = Max(points, 0);

	ledger_id = LedgerAppend(prog->code, rev->member_id, "reverse", -points, rev->ref,
							 rev->order_id, 0, 0, rev->reason, rev->occurred_at);
	taken = LotsTake(prog->code, rev->member_id, points, LOTS_ANY, rev->occurred_at,
					 rev->order_id, ledger_id);

	delta.balance = -points;
	delta.debt = points - taken;
	delta.reversed = points;
	LedgerApplyToMember(prog->code, rev->member_id, &delta);
	return points;
}
