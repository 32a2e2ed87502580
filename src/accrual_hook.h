/*
 * accrual_hook.h
 *		How features plug into the accrual core.
 *
 * The core (order events, batches, the ledger) knows no feature.  A feature
 * that changes what an order earns, or reacts to it, registers an
 * AccrualHook from _PG_init; the core calls every registered hook at two
 * points of an order's life:
 *   - price: before an order of a member earns, the hook may multiply its
 *     points (a tier multiplier) and keep a state for posted;
 *   - posted: after the order's points were written (the member's row is
 *     locked), the hook reacts (a tier upgrade).
 * applies tells whether a program uses the hook at all: orders of programs
 * without any applying hook take the set-based batch path, which calls no
 * hook.
 */
#ifndef LOYALTY_ACCRUAL_HOOK_H
#define LOYALTY_ACCRUAL_HOOK_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "program.h"

#define ACCRUAL_MAX_HOOKS 8

typedef struct AccrualHook
{
	const char *name;
	bool		(*applies) (const LoyaltyProgram *prog);
	/* Returns the multiplier (numeric) times what the hook adds; *state for posted. */
	Datum		(*price) (const LoyaltyProgram *prog, const char *member_id,
						  Datum multiplier, void **state);
	/* state: what price left, or NULL when the order was not priced now. */
	void		(*posted) (const LoyaltyProgram *prog, const char *member_id,
						   TimestampTz ordered_at, void *state);
} AccrualHook;

/* What the hooks said of one order while it was priced. */
typedef struct AccrualPricing
{
	bool		priced;
	Datum		multiplier;		/* numeric, 1 when no hook multiplies */
	void	   *state[ACCRUAL_MAX_HOOKS];
} AccrualPricing;

extern void AccrualHookRegister(const AccrualHook *hook);
extern bool AccrualHooksApply(const LoyaltyProgram *prog);
extern void AccrualPrice(const LoyaltyProgram *prog, const char *member_id,
						 AccrualPricing *pricing);
extern void AccrualPosted(const LoyaltyProgram *prog, const char *member_id,
						  TimestampTz ordered_at, const AccrualPricing *pricing);

#endif							/* LOYALTY_ACCRUAL_HOOK_H */
