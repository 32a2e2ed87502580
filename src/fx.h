/*
 * fx.h
 *		Points for an amount in any currency.
 */
#ifndef LOYALTY_FX_H
#define LOYALTY_FX_H

#include "postgres.h"

#include "program.h"

typedef enum PointsResult
{
	POINTS_OK,
	POINTS_NO_RATE,				/* no FX rate into the base currency */
	POINTS_OVERFLOW				/* more points than a bigint holds */
} PointsResult;

extern PointsResult LoyaltyPointsFor(const LoyaltyProgram *prog, Datum amount,
									 const char *currency, TimestampTz at, Datum multiplier,
									 int64 *points, Datum *rate);
extern int64 LoyaltyShareOf(int64 points, Datum part, Datum whole);

#endif							/* LOYALTY_FX_H */
