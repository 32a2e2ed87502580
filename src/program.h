/*
 * program.h
 *		A loyalty program's settings, as the C code needs them.
 */
#ifndef LOYALTY_PROGRAM_H
#define LOYALTY_PROGRAM_H

#include "postgres.h"

#include "datatype/timestamp.h"

typedef struct LoyaltyProgram
{
	char	   *code;
	char	   *base_currency;
	Datum		earn_rate;		/* numeric: points per unit of base currency */
	int32		pending_days;
	bool		expires;		/* false: points never expire */
	Datum		expire_after;	/* interval, when expires */
	bool		within_balance; /* refund_policy: true = within_balance */
	char	   *timezone;
	int			nclosing;		/* statuses that close an order: trimmed, lower case */
	char	  **closing;
	bool		attached;		/* the relation asked about is attached */
	Oid			orders;			/* the attached table it is, or is a partition of */
	int32		sources;		/* how many tables are attached to the program */
	struct TierLadder *ladder;	/* NULL: the program has no tiers */
	/* The attached table's mapping options (order_source), when attached: */
	bool		amount_minor;	/* amounts in minor units of their currency */
	char	   *source_timezone;	/* zone of a timestamp column; NULL: timezone */
} LoyaltyProgram;

extern bool LoyaltyProgramLoad(const char *code, Oid orders_relid, LoyaltyProgram *prog);
extern void LoyaltyProgramRequire(const char *code, LoyaltyProgram *prog);
extern bool LoyaltyProgramLoadCached(const char *code, Oid orders_relid, LoyaltyProgram *prog);
extern void LoyaltyProgramCacheInit(void);

extern TimestampTz LoyaltyAvailableAt(const LoyaltyProgram *prog, TimestampTz earned_at);
extern bool LoyaltyExpiresAt(const LoyaltyProgram *prog, TimestampTz earned_at,
							 TimestampTz *expires_at);

#endif							/* LOYALTY_PROGRAM_H */
