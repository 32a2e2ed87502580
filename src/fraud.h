/*
 * fraud.h
 *		The fraud_check pass: its rules, their parameters, the run's state
 *		and the flags it raises (docs/fraud.md).
 *
 * One run reads each source once: the member contacts (sorted by hash),
 * the orders with their signals (sorted by member, then time: every
 * per-member window is one sweep), the large ledger credits and
 * redemptions, the coupon redemptions and the referrals.  Flags are
 * collected as text and written in bulk (fraud_flags.c).
 */
#ifndef LOYALTY_FRAUD_H
#define LOYALTY_FRAUD_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/* The rules, in the order of loyalty.fraud_rule_names(). */
typedef enum FraudRuleId
{
	FR_VELOCITY,
	FR_SMALL_BURST,
	FR_SHARED_FINGERPRINT,
	FR_GEO_MISMATCH,
	FR_REFUND_RATIO,
	FR_EARN_BURN,
	FR_COUPON_FARMING,
	FR_REFERRAL_RING,
	FR_COUNT
} FraudRuleId;

extern const char *const FraudRuleNames[FR_COUNT];

/* Kinds of fingerprint: order signals first, then member contacts. */
typedef enum FraudKind
{
	FK_DEVICE,
	FK_PAYMENT,
	FK_ADDRESS,
	FK_IP,
	FK_EMAIL,
	FK_PHONE,
	FK_COUNT
} FraudKind;

#define FK_ORDER_KINDS 4		/* FK_DEVICE .. FK_IP come from orders */
#define FRAUD_HASH_LEN 16		/* bytes of a signal hash */

extern const char *const FraudKindNames[FK_COUNT];

/* A rule's effective parameters (those it does not take are unused). */
typedef struct FraudRule
{
	bool		enabled;
	int32		orders;
	double		minutes;
	double		max_amount;
	int32		members;
	int32		contact_members;
	double		share;
	double		ratio;
	int64		points;
	double		hours;
	double		score;
	bool		kinds[FK_COUNT];
} FraudRule;

/* An order of the member being swept, as the per-member rules need it. */
typedef struct FraudOrder
{
	char	   *order_id;
	TimestampTz at;
	bool		has_base;		/* amount and fx_rate known */
	double		base;			/* amount in base currency */
	double		refunded;		/* refunded, in base currency (all when closed) */
	int64		points_left;	/* points not reversed yet */
	bool		geo_known;		/* both countries known */
	bool		geo_mismatch;	/* and they differ */
} FraudOrder;

/* Flags waiting for their bulk insert. */
typedef struct FraudFlags
{
	int			n;
	int			size;
	Datum	   *member;
	Datum	   *rule;
	Datum	   *subject;
	Datum	   *score;
	Datum	   *evidence;
	Datum	   *points;
	MemoryContext cxt;			/* where their text lives; reset per flush */
	int64		inserted;		/* new flags so far */
	int			nheld;			/* members with a new flag (for the hold step) */
	int			held_size;
	Datum	   *held;
} FraudFlags;

struct FraudPrints;

/* One fraud_check run. */
typedef struct FraudRun
{
	const char *program;
	TimestampTz since;
	TimestampTz as_of;
	Datum		timezone;		/* text: the program's, for days */
	FraudRule	rules[FR_COUNT];
	FraudFlags	flags;
	struct FraudPrints *prints;
	int64		orders_read;
} FraudRun;

/*
 * The program's ($1) excluded members, for "NOT (member_id = ANY (...))":
 * a hashed subplan built once, where NOT EXISTS let the planner rescan the
 * (usually empty, never analyzed) exclusion table for every order.
 */
#define FRAUD_EXCLUDED \
	"SELECT x.member_id FROM loyalty.member_exclusion x WHERE x.program OPERATOR(pg_catalog.=) $1"

#define FRAUD_RULE_ON(run, r) ((run)->rules[(r)].enabled)

/* fraud_params.c */
extern void FraudLoadRules(FraudRun *run);

/* fraud_flags.c */
extern void FraudFlagsInit(FraudFlags *flags);
extern void FraudFlagAdd(FraudRun *run, const char *member_id, FraudRuleId rule,
						 const char *subject, StringInfo evidence, int64 points_at_risk);
extern void FraudFlagsFlush(FraudRun *run);
extern void FraudHoldRisky(FraudRun *run);

/* fraud_json.c: evidence */
extern void FraudJsonStart(StringInfo buf);
extern void FraudJsonOrders(StringInfo buf, const FraudOrder *orders, const int *which, int n);
extern void FraudJsonStrings(StringInfo buf, const char *key, const char *const *values, int n);
extern void FraudJsonText(StringInfo buf, const char *key, const char *value);
extern void FraudJsonNumber(StringInfo buf, const char *key, double value);
extern void FraudJsonInt(StringInfo buf, const char *key, int64 value);
extern void FraudJsonEnd(StringInfo buf);
extern char *FraudDay(const FraudRun *run, TimestampTz at);
extern char *FraudHex(const uint8 *hash);

/* fraud_rules_orders.c: velocity, small bursts, geo, refunds of one member */
extern void FraudMemberOrderRules(FraudRun *run, const char *member_id,
								  const FraudOrder *orders, int n);

/* fraud_fingerprint.c: who shares a device, card, address, ip, email, phone */
extern void FraudPrintsInit(FraudRun *run);
extern void FraudLoadContacts(FraudRun *run);
extern int32 FraudPrintsMember(FraudRun *run, const char *member_id, int len);
extern void FraudPrintsAddOrder(FraudRun *run, int32 member, FraudKind kind, const uint8 *hash);
extern void FraudPrintsMemberOrders(FraudRun *run, const char *member_id,
									const FraudOrder *orders, int n);
extern void FraudSharedFingerprintFlags(FraudRun *run);
extern void FraudPrintsIndexMembers(FraudRun *run);
extern const int32 *FraudPrintsOfMember(FraudRun *run, const char *member_id, int *n);
extern bool FraudMembersShare(FraudRun *run, const char *a, const char *b);
extern bool FraudShareLinks(FraudRun *run, int32 id);
extern int32 FraudShareCount(FraudRun *run);

/* fraud_ledger.c: earn_burn */
extern void FraudEarnBurn(FraudRun *run);

/* fraud_coupon.c: coupon_farming */
extern void FraudCouponFarming(FraudRun *run);

/* fraud_referral.c: referral_ring */
extern void FraudReferralRing(FraudRun *run);

#endif							/* LOYALTY_FRAUD_H */
