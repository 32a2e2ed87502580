/*
 * ledger.h
 *		Ledger rows, member accounts, and the postings that keep both in step.
 *
 * Every posting runs with the member's row locked (LedgerLockMember, or the
 * upsert of the credit writer in credit.h), so two sessions never
 * interleave on one member.
 */
#ifndef LOYALTY_LEDGER_H
#define LOYALTY_LEDGER_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "program.h"

typedef struct MemberAccount
{
	bool		exists;
	char	   *status;
	int64		balance;		/* sum of ledger points */
	int64		debt;
} MemberAccount;

/* A ledger row found by its reference. */
typedef struct LedgerRow
{
	int64		id;
	char	   *member_id;
	char	   *kind;
	int64		points;
} LedgerRow;

extern bool LedgerLockMember(const char *program, const char *member_id,
							 MemberAccount *account);
extern void LedgerEnsureMember(const char *program, const char *member_id,
							   MemberAccount *account);
extern bool LedgerFindRef(const char *program, const char *member_id, const char *ref,
						  LedgerRow *row);
extern void LedgerCheckReplay(const char *program, const char *ref, const LedgerRow *row,
							  const char *member_id, const char *kind, int64 points);

/* A reversal to post (see LedgerReverseWith). */
typedef struct LedgerReversal
{
	const char *member_id;
	const char *order_id;		/* NULL: not an order's; else its lots go first */
	const char *ref;			/* NULL: none */
	const char *reason;
	int64		points;			/* asked for, > 0 */
	TimestampTz occurred_at;
	bool		record_zero;	/* write the row even when nothing is taken */
	TimestampTz terms_at;		/* its refund policy is that of the terms then:
								 * an order's ordered_at */
} LedgerReversal;

extern int64 LedgerReverse(const LoyaltyProgram *prog, const char *member_id,
							const char *order_id, int64 points, const char *reason,
							TimestampTz occurred_at, TimestampTz ordered_at);
extern int64 LedgerReverseWith(const LoyaltyProgram *prog, const LedgerReversal *rev);
extern int64 LedgerAppend(const char *program, const char *member_id, const char *kind,
						  int64 points, const char *ref, const char *order_id,
						  int64 lot_id, int64 related_id, const char *reason,
						  TimestampTz occurred_at);

/* Deltas to a member's cached figures. */
typedef struct MemberDelta
{
	int64		balance;
	int64		debt;
	int64		earned;
	int64		redeemed;
	int64		reversed;
	int64		expired;
} MemberDelta;

extern void LedgerApplyToMember(const char *program, const char *member_id,
								const MemberDelta *delta);

#endif							/* LOYALTY_LEDGER_H */
