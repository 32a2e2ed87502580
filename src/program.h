/*
 * program.h
 *		A loyalty program's settings, as the C code needs them.
 */
#ifndef LOYALTY_PROGRAM_H
#define LOYALTY_PROGRAM_H

#include "postgres.h"

#include "datatype/timestamp.h"

/*
 * The terms a program earns and refunds by from a time on (a row of
 * loyalty.program_terms).  An order is priced, made pending, given its
 * expiry and refunded by the terms of its ordered_at (LoyaltyTermsAt).
 */
typedef struct LoyaltyTerms
{
	TimestampTz effective_from; /* DT_NOBEGIN for the program's first terms */
	Datum		earn_rate;		/* numeric: points per unit of base currency */
	int32		pending_days;
	bool		expires;		/* false: points never expire */
	Datum		expire_after;	/* interval, when expires */
	bool		within_balance; /* refund_policy: true = within_balance */
	char	   *timezone;		/* the zone these terms were made in */
} LoyaltyTerms;

typedef struct LoyaltyProgram
{
	char	   *code;
	char	   *base_currency;
	char	   *timezone;		/* the program's (newest) zone: local times, days */
	bool		archived;		/* archive_program(): earns no more */
	int			nterms;			/* at least 1 */
	LoyaltyTerms *terms;		/* by effective_from, oldest first */
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

extern const LoyaltyTerms *LoyaltyTermsAt(const LoyaltyProgram *prog, TimestampTz at);
extern void LoyaltyTermsLoad(LoyaltyProgram *prog);
extern void LoyaltyTermsCopy(LoyaltyProgram *dst, const LoyaltyProgram *src);
extern void LoyaltyRequireNotArchived(const LoyaltyProgram *prog);

extern TimestampTz LoyaltyAvailableAt(const LoyaltyProgram *prog, TimestampTz earned_at);
extern bool LoyaltyExpiresAt(const LoyaltyProgram *prog, TimestampTz earned_at,
							 TimestampTz *expires_at);

#endif							/* LOYALTY_PROGRAM_H */
