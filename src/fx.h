/*
 * fx.h
 *		Points for an amount in any currency.
 */
#ifndef LOYALTY_FX_H
#define LOYALTY_FX_H

#include "postgres.h"

#include "program.h"

/*
 * Most points one order earns: more is a data error, not a sale (and keeps
 * balances far from the bigint limit, see LOYALTY_MAX_BALANCE).
 */
#define LOYALTY_MAX_ORDER_POINTS	INT64CONST(1000000000000000)

typedef enum PointsResult
{
	POINTS_OK,
	POINTS_NO_RATE,				/* no FX rate into the base currency */
	POINTS_OVERFLOW				/* more than LOYALTY_MAX_ORDER_POINTS */
} PointsResult;

extern PointsResult LoyaltyPointsFor(const LoyaltyProgram *prog, Datum amount,
									 const char *currency, TimestampTz at, Datum multiplier,
									 int64 *points, Datum *rate);
extern int64 LoyaltyShareOf(int64 points, Datum part, Datum whole);

#endif							/* LOYALTY_FX_H */
