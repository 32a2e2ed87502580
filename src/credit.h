/*
 * credit.h
 *		The one writer of credits: a ledger row, its lot and the member's
 *		balance, for one credit or a batch, in one statement.
 *
 * Every credit (an order's earning, a manual earn or adjust, a new
 * generation of a changed order) is written by CREDIT_WRITE, inside the
 * statement of its caller: CreditPost() for credits given one by one, the
 * order batches (order_batch.c) for the orders a statement inserts.
 */
#ifndef LOYALTY_CREDIT_H
#define LOYALTY_CREDIT_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "program.h"

/*
 * The CTEs that write credits.  The statement's parameter $1 is the
 * program and a CTE named credit has one row per credit, with columns
 * id (taken from loyalty.ledger_id_seq, in the order ledger rows should
 * have), member_id, kind (text), points (> 0), ref, order_id, reason,
 * occurred_at, available_at and expires_at.  Members are enrolled on their
 * first credit and updated in member order (the order every posting locks
 * them in).
 *
 * A held member's credits land in frozen lots (available_at infinity, the
 * time they would have become available kept in held_lot).  Whether the
 * member is held is read from the row the upsert locked, which ON CONFLICT
 * DO UPDATE returns in its latest version: a hold committed while this
 * statement waited for the lock counts, and hold_member, which locks the
 * row before freezing lots, sees every lot written before it took the lock.
 */
#define CREDIT_WRITE \
	" credit_ledger AS (INSERT INTO loyalty.ledger (id, program, member_id, kind, points, ref," \
	"                                               order_id, reason, occurred_at)" \
	"    SELECT c.id, $1, c.member_id, c.kind::loyalty.ledger_kind, c.points, c.ref, c.order_id," \
	"           c.reason, c.occurred_at FROM credit c)," \
	" credit_member AS (INSERT INTO loyalty.member AS m (program, member_id, balance, lifetime_earned)" \
	"    SELECT $1, c.member_id, pg_catalog.sum(c.points), pg_catalog.sum(c.points) FROM credit c" \
	"     GROUP BY c.member_id ORDER BY c.member_id" \
	"    ON CONFLICT (program, member_id) DO UPDATE" \
	"    SET balance = m.balance OPERATOR(pg_catalog.+) excluded.balance," \
	"        lifetime_earned = m.lifetime_earned OPERATOR(pg_catalog.+) excluded.lifetime_earned" \
	"    RETURNING m.member_id, m.status OPERATOR(pg_catalog.=) 'held' AS held)," \
	" credit_lot AS (INSERT INTO loyalty.lot (id, program, member_id, order_id, earned, remaining," \
	"                                         available_at, expires_at)" \
	"    SELECT c.id, $1, c.member_id, c.order_id, c.points, c.points," \
	"           CASE WHEN h.held THEN 'infinity'::pg_catalog.timestamptz ELSE c.available_at END," \
	"           c.expires_at" \
	"      FROM credit c JOIN credit_member h ON h.member_id OPERATOR(pg_catalog.=) c.member_id)," \
	" credit_held AS (INSERT INTO loyalty.held_lot (lot_id, program, member_id, available_at)" \
	"    SELECT c.id, $1, c.member_id, c.available_at" \
	"      FROM credit c JOIN credit_member h ON h.member_id OPERATOR(pg_catalog.=) c.member_id" \
	"     WHERE h.held)"

/* The ledger id of the next credit, in the order of the rows of src. */
#define CREDIT_NEXT_ID "pg_catalog.nextval('loyalty.ledger_id_seq'::pg_catalog.regclass)"

/* One credit given on its own (see CreditPost). */
typedef struct Credit
{
	const char *member_id;
	const char *kind;			/* earn or adjust */
	int64		points;			/* > 0 */
	const char *ref;			/* NULL: none */
	const char *order_id;		/* NULL: not an order's */
	const char *reason;			/* NULL: none */
	TimestampTz occurred_at;	/* availability and expiry count from it */
} Credit;

extern int64 CreditPost(const LoyaltyProgram *prog, const Credit *credit);
extern int64 CreditPostOnce(const LoyaltyProgram *prog, const Credit *credit);

#endif							/* LOYALTY_CREDIT_H */
