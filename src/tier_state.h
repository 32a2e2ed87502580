/*
 * tier_state.h
 *		Members' tiers at accrual time.
 */
#ifndef LOYALTY_TIER_STATE_H
#define LOYALTY_TIER_STATE_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "program.h"

extern Datum TierMemberMultiplier(const LoyaltyProgram *prog, const char *member_id,
								  char **tier);
extern void TierUpgradeCheck(const LoyaltyProgram *prog, const char *member_id, bool tier_known,
							 const char *tier, TimestampTz at);

#endif							/* LOYALTY_TIER_STATE_H */
