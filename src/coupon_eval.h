/*
 * coupon_eval.h
 *		Evaluating a coupon_rule on a cart: pure, reads no table.
 */
#ifndef LOYALTY_COUPON_EVAL_H
#define LOYALTY_COUPON_EVAL_H

#include "postgres.h"

#include "utils/date.h"
#include "utils/timestamp.h"

#include "cart.h"
#include "coupon_rule.h"

typedef struct CouponResult
{
	bool		eligible;
	const char *reason;			/* why not eligible (docs/coupons.md), else NULL */
	int128		discount;		/* minor units of the cart's currency */
	int128		shipping_discount;	/* minor units of the cart's currency */
	const char *gift;			/* the gift SKU, NULL when none */
	int			minor;			/* the cart's currency's minor unit */
} CouponResult;

/*
 * Evaluates rule on cart.  local_date is the date of as_of in the zone
 * valid= is read in; only used when the rule has valid=.
 */
extern void CouponEvaluate(const CouponRule *rule, const Cart *cart, DateADT local_date,
						   CouponResult *result);

/* The date of as_of in time_zone (a name timezone() accepts). */
extern DateADT CouponLocalDate(TimestampTz as_of, text *time_zone);

#endif							/* LOYALTY_COUPON_EVAL_H */
