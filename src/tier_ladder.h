/*
 * tier_ladder.h
 *		The loyalty.tier_ladder type: a program's member levels.
 *
 * A varlena: the ladder's options, then its levels (threshold, multiplier,
 * where the name is), then the names.  Thresholds and multipliers are fixed
 * point (4 and 3 decimals) so a ladder compares and prints exactly.
 */
#ifndef LOYALTY_TIER_LADDER_H
#define LOYALTY_TIER_LADDER_H

#include "postgres.h"

#include "fmgr.h"

#define TIER_MAX_LEVELS		16
#define TIER_MAX_NAME		63
#define TIER_THRESHOLD_SCALE 10000	/* thresholds have 4 decimals */
#define TIER_MULTIPLIER_SCALE 1000	/* multipliers have 3 decimals */

typedef enum TierBasis
{
	TIER_BASIS_SPEND = 0,		/* net spend in base currency */
	TIER_BASIS_POINTS = 1,		/* points earned */
	TIER_BASIS_ORDERS = 2		/* number of orders */
} TierBasis;

typedef enum TierDowngrade
{
	TIER_DOWNGRADE_STEP = 0,	/* one level at a time */
	TIER_DOWNGRADE_DROP = 1		/* straight to the level the member qualifies for */
} TierDowngrade;

typedef struct TierLevel
{
	int64		threshold;		/* x TIER_THRESHOLD_SCALE */
	int32		multiplier;		/* x TIER_MULTIPLIER_SCALE */
	uint16		name_offset;	/* from the start of the names */
	uint16		name_length;
} TierLevel;

typedef struct TierLadder
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		basis;
	uint8		downgrade;
	int16		nlevels;
	int32		window_days;
	int32		grace_days;
	TierLevel	levels[FLEXIBLE_ARRAY_MEMBER];
	/* the names follow the levels */
} TierLadder;

#define DatumGetTierLadderP(X)	((TierLadder *) PG_DETOAST_DATUM(X))
#define PG_GETARG_TIER_LADDER_P(n) DatumGetTierLadderP(PG_GETARG_DATUM(n))
#define PG_RETURN_TIER_LADDER_P(x) PG_RETURN_POINTER(x)

static inline const char *
TierNames(const TierLadder *ladder)
{
	return (const char *) &ladder->levels[ladder->nlevels];
}

extern int	TierLevelFor(const TierLadder *ladder, int64 value_scaled);
extern int	TierLevelNamed(const TierLadder *ladder, const char *name);
extern char *TierLevelName(const TierLadder *ladder, int level);
extern Datum TierMultiplier(const TierLadder *ladder, int level);
extern int64 TierScaledValue(Datum value);

#endif							/* LOYALTY_TIER_LADDER_H */
