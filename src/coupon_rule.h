/*
 * coupon_rule.h
 *		The loyalty.coupon_rule type: who may use a coupon, and what it gives.
 *
 * A varlena: the options (flags, limits, dates, where the lists are), the
 * steps, then the strings (list items, stack group, gift SKUs), each
 * NUL-terminated, a list's items one after the other.  Money is int64 in
 * the minor units of its currency (ISO 4217), percents in hundredths, so a
 * rule compares and prints exactly.  The grammar is in docs/coupons.md.
 */
#ifndef LOYALTY_COUPON_RULE_H
#define LOYALTY_COUPON_RULE_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/date.h"

#define COUPON_MAX_STEPS	8
#define COUPON_MAX_LIST		32		/* items in one list option */
#define COUPON_MAX_NAME		63		/* characters of a name, SKU or group */
#define COUPON_MAX_AMOUNT	INT64CONST(999999999999999)	/* minor units */
#define COUPON_MAX_MIN_ITEMS 100000
#define COUPON_PERCENT_SCALE 100	/* percents have 2 decimals */

typedef enum CouponList
{
	COUPON_LIFECYCLE = 0,
	COUPON_CATEGORIES,
	COUPON_EXCLUDE_CATEGORIES,
	COUPON_COUNTRIES,
	COUPON_TIERS,
	COUPON_SEGMENTS,
	COUPON_NLISTS
} CouponList;

typedef enum CouponReward
{
	COUPON_AMOUNT_OFF = 0,		/* AMOUNT CUR off */
	COUPON_PERCENT_OFF,			/* PCT% off [max AMOUNT CUR] */
	COUPON_FREE_SHIPPING,		/* free shipping */
	COUPON_GIFT					/* gift SKU */
} CouponReward;

typedef enum CouponStack
{
	COUPON_STACK_ANY = 0,		/* no stack= option */
	COUPON_STACK_EXCLUSIVE,		/* stack=exclusive */
	COUPON_STACK_GROUP			/* stack=<group> */
} CouponStack;

typedef struct CouponStep
{
	int64		threshold;		/* minor units; -1: no threshold */
	int64		amount;			/* amount off, or percent's cap; -1: no cap */
	int32		percent;		/* x COUPON_PERCENT_SCALE, percent off only */
	uint8		reward;			/* CouponReward */
	int8		minor;			/* the currency's minor unit; -1: no currency */
	char		currency[4];	/* "" when the step names no currency */
	uint16		gift;			/* offset of the SKU in the strings */
} CouponStep;

typedef struct CouponRule
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		first_order;	/* the first_order flag */
	uint8		stack;			/* CouponStack */
	uint8		has_valid;		/* a valid= option */
	uint8		pad;
	int16		nsteps;
	uint16		stack_group;	/* offset of the group name (COUPON_STACK_GROUP) */
	int32		min_items;		/* 0: no min_items= */
	DateADT		valid_from;		/* inclusive, when has_valid */
	DateADT		valid_until;	/* inclusive, when has_valid */
	uint16		list_start[COUPON_NLISTS];	/* offset of the first item */
	uint8		list_count[COUPON_NLISTS];	/* 0: option not given */
	CouponStep	steps[FLEXIBLE_ARRAY_MEMBER];
	/* the strings follow the steps */
} CouponRule;

#define DatumGetCouponRuleP(X)	((CouponRule *) PG_DETOAST_DATUM(X))
#define PG_GETARG_COUPON_RULE_P(n) DatumGetCouponRuleP(PG_GETARG_DATUM(n))
#define PG_RETURN_COUPON_RULE_P(x) PG_RETURN_POINTER(x)

static inline const char *
CouponStrings(const CouponRule *rule)
{
	return (const char *) &rule->steps[rule->nsteps];
}

/* The i-th item of a list option (NUL-terminated). */
extern const char *CouponListItem(const CouponRule *rule, CouponList list, int i);

#endif							/* LOYALTY_COUPON_RULE_H */
