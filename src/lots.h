/*
 * lots.h
 *		Earn lots: what is left of each credit, consumed soonest-expiry first.
 */
#ifndef LOYALTY_LOTS_H
#define LOYALTY_LOTS_H

#include "postgres.h"

#include "datatype/timestamp.h"

typedef enum LotScope
{
	LOTS_AVAILABLE = 0,			/* available and unexpired at as_of */
	LOTS_ANY = 1,				/* any lot with points left */
	LOTS_EXPIRED = 2			/* expired at as_of, points still left */
} LotScope;

extern int64 LotsAvailable(const char *program, const char *member_id, TimestampTz as_of);
extern int64 LotsTake(const char *program, const char *member_id, int64 points,
					  LotScope scope, TimestampTz as_of, const char *first_order,
					  int64 ledger_id);
extern int64 LotsGiveBack(const char *member_id, int64 from_ledger_id, int64 to_ledger_id);
extern int64 LotsSettleDebt(const char *program, const char *member_id, int64 debt,
							LotScope scope, TimestampTz as_of);

#endif							/* LOYALTY_LOTS_H */
