/*
 * tier_state.h
 *		Members' tiers at accrual time, plugged in as an accrual hook.
 */
#ifndef LOYALTY_TIER_STATE_H
#define LOYALTY_TIER_STATE_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "program.h"

/* Registers the tier multiplier and upgrade check as an accrual hook. */
extern void TierAccrualHookInit(void);

#endif							/* LOYALTY_TIER_STATE_H */
