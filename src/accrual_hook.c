/*
 * accrual_hook.c
 *		The registry of features that plug into accrual (see accrual_hook.h).
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "accrual_hook.h"

static const AccrualHook *hooks[ACCRUAL_MAX_HOOKS];
static int	nhooks = 0;

/* Called from _PG_init, once per feature. */
void
AccrualHookRegister(const AccrualHook *hook)
{
	if (nhooks == ACCRUAL_MAX_HOOKS)
		elog(ERROR, "loyalty: too many accrual hooks (at most %d)", ACCRUAL_MAX_HOOKS);
	hooks[nhooks++] = hook;
}

/* Whether any feature acts on the program's orders (they go one by one). */
bool
AccrualHooksApply(const LoyaltyProgram *prog)
{
	for (int i = 0; i < nhooks; i++)
		if (hooks[i]->applies(prog))
			return true;
	return false;
}

/* The multiplier of a member's new order: the product of the hooks' own. */
void
AccrualPrice(const LoyaltyProgram *prog, const char *member_id, AccrualPricing *pricing)
{
	memset(pricing, 0, sizeof(*pricing));
	pricing->priced = true;
	pricing->multiplier = DirectFunctionCall1(int4_numeric, Int32GetDatum(1));
	for (int i = 0; i < nhooks; i++)
		if (hooks[i]->applies(prog))
			pricing->multiplier = hooks[i]->price(prog, member_id, pricing->multiplier,
												  &pricing->state[i]);
}

/* After an order of the member was posted. */
void
AccrualPosted(const LoyaltyProgram *prog, const char *member_id, TimestampTz ordered_at,
			  const AccrualPricing *pricing)
{
	for (int i = 0; i < nhooks; i++)
		if (hooks[i]->applies(prog))
			hooks[i]->posted(prog, member_id, ordered_at,
							 pricing != NULL && pricing->priced ? pricing->state[i] : NULL);
}
