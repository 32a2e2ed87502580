/*
 * coupon_eval.c
 *		Evaluating a coupon_rule on a cart: coupon_evaluate, coupon_discount.
 *
 * The checks run in a fixed order and the first that fails is the reason
 * (docs/coupons.md): not_valid_yet, expired, currency, country,
 * first_order, tier, segment, lifecycle, category, min_items,
 * below_threshold.  The lines that count (categories= matching, not in
 * exclude_categories=) are the base of min_items, of the threshold and of
 * the discount.  Amounts are exact (int128 fixed point); a discount is
 * rounded half away from zero to the currency's minor unit and never
 * exceeds what it applies to.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "cart.h"
#include "coupon_eval.h"
#include "coupon_rule.h"
#include "loyalty.h"

static const int64 pow10_table[] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000
};

/*
 * True when a rule's name equals a cart's text, case ignored;
 * loose: "_" and " " alike too (segments and lifecycle stages).
 */
static bool
NameMatches(const char *name, const CartText *value, bool loose)
{
	int			i;

	if (value->data == NULL)
		return false;
	for (i = 0; i < value->len; i++)
	{
		char		a = name[i];
		char		b = value->data[i];

		if (a == '\0')
			return false;
		if (loose && a == '_')
			a = ' ';
		if (loose && b == '_')
			b = ' ';
		if (a != b && pg_tolower((unsigned char) a) != pg_tolower((unsigned char) b))
			return false;
	}
	return name[i] == '\0';
}

/* True when value is an item of the rule's list. */
static bool
InList(const CouponRule *rule, CouponList list, const CartText *value, bool loose)
{
	const char *item = CouponStrings(rule) + rule->list_start[list];

	for (int i = 0; i < rule->list_count[list]; i++, item += strlen(item) + 1)
		if (NameMatches(item, value, loose))
			return true;
	return false;
}

/* Whether a line counts toward min_items, the threshold and the discount. */
static bool
LineCounts(const CouponRule *rule, const CartLine *line)
{
	if (rule->list_count[COUPON_CATEGORIES] > 0 && !InList(rule, COUPON_CATEGORIES, &line->category, false))
		return false;
	if (rule->list_count[COUPON_EXCLUDE_CATEGORIES] > 0 && InList(rule, COUPON_EXCLUDE_CATEGORIES, &line->category, false))
		return false;
	return true;
}

/* The member and cart facts, in the documented order; NULL when all hold. */
static const char *
FactsReason(const CouponRule *rule, const Cart *cart)
{
	if (rule->list_count[COUPON_COUNTRIES] > 0)
	{
		CartText	country = {cart->country, strlen(cart->country)};

		if (country.len == 0 || !InList(rule, COUPON_COUNTRIES, &country, false))
			return "country";
	}
	if (rule->first_order && cart->first_order != 1)
		return "first_order";
	if (rule->list_count[COUPON_TIERS] > 0 && !InList(rule, COUPON_TIERS, &cart->tier, false))
		return "tier";
	if (rule->list_count[COUPON_SEGMENTS] > 0 && !InList(rule, COUPON_SEGMENTS, &cart->segment, true))
		return "segment";
	if (rule->list_count[COUPON_LIFECYCLE] > 0 && !InList(rule, COUPON_LIFECYCLE, &cart->lifecycle, true))
		return "lifecycle";
	return NULL;
}

/* A step's currency matches the cart's ("" matches any). */
static bool
StepCurrencyFits(const CouponStep *step, const Cart *cart)
{
	return step->currency[0] == '\0' || memcmp(step->currency, cart->currency, 4) == 0;
}

/* x (x 10^CART_SCALE) down to whole minor units. */
static int128
FloorMinor(int128 x, int minor)
{
	return x / pow10_table[CART_SCALE - minor];
}

/* The discount of step on base (x 10^CART_SCALE), in minor units. */
static int128
StepDiscount(const CouponStep *step, int128 base, int minor)
{
	int128		most = FloorMinor(base, minor);
	int128		discount;

	if (step->reward == COUPON_AMOUNT_OFF)
		discount = step->amount;
	else
	{
		/* base x percent / 100, rounded half away from zero (all >= 0). */
		int128		n = base * step->percent;
		int128		d = (int128) 100 * COUPON_PERCENT_SCALE * pow10_table[CART_SCALE - minor];

		discount = n / d;
		if (2 * (n % d) >= d)
			discount++;
		if (step->amount >= 0 && discount > step->amount)
			discount = step->amount;
	}
	return Min(discount, most);
}

void
CouponEvaluate(const CouponRule *rule, const Cart *cart, DateADT local_date, CouponResult *result)
{
	bool		thresholds = rule->steps[0].threshold >= 0;
	bool		any_step = false;
	int128		base = 0;
	int64		items = 0;
	bool		any_line = false;
	const CouponStep *step = NULL;

	memset(result, 0, sizeof(*result));
	result->minor = cart->minor;
	if (rule->has_valid && local_date < rule->valid_from)
	{
		result->reason = "not_valid_yet";
		return;
	}
	if (rule->has_valid && local_date > rule->valid_until)
	{
		result->reason = "expired";
		return;
	}
	for (int i = 0; i < rule->nsteps; i++)
		any_step |= StepCurrencyFits(&rule->steps[i], cart);
	if (!any_step)
	{
		result->reason = "currency";
		return;
	}
	if ((result->reason = FactsReason(rule, cart)) != NULL)
		return;
	for (int i = 0; i < cart->nlines; i++)
		if (LineCounts(rule, &cart->lines[i]))
		{
			any_line = true;
			base += cart->lines[i].total;
			items += cart->lines[i].qty;
		}
	if (!any_line && (rule->list_count[COUPON_CATEGORIES] > 0 || rule->list_count[COUPON_EXCLUDE_CATEGORIES] > 0))
	{
		result->reason = "category";
		return;
	}
	if (items < rule->min_items)
	{
		result->reason = "min_items";
		return;
	}
	/* The highest step of the cart's currency that the base reaches. */
	for (int i = 0; i < rule->nsteps; i++)
	{
		const CouponStep *s = &rule->steps[i];

		if (!StepCurrencyFits(s, cart))
			continue;
		if (!thresholds ||
			base >= (int128) s->threshold * pow10_table[CART_SCALE - s->minor])
			step = s;
	}
	if (step == NULL)
	{
		result->reason = "below_threshold";
		return;
	}
	result->eligible = true;
	switch ((CouponReward) step->reward)
	{
		case COUPON_AMOUNT_OFF:
		case COUPON_PERCENT_OFF:
			result->discount = StepDiscount(step, base, cart->minor);
			break;
		case COUPON_FREE_SHIPPING:
			result->shipping_discount = FloorMinor(cart->shipping, cart->minor);
			break;
		case COUPON_GIFT:
			result->gift = CouponStrings(rule) + step->gift;
			break;
	}
}

DateADT
CouponLocalDate(TimestampTz as_of, text *time_zone)
{
	Datum		local = DirectFunctionCall2(timestamptz_zone, PointerGetDatum(time_zone),
											TimestampTzGetDatum(as_of));

	return DatumGetDateADT(DirectFunctionCall1(timestamp_date, local));
}

/* Minor units as a numeric with the currency's decimals ("10.00", "50000"). */
static Datum
MinorToNumeric(int128 value, int minor)
{
	char		digits[64];
	char		text[72];
	int			n = 0;
	int			len = 0;

	do
	{
		digits[n++] = '0' + (int) (value % 10);
		value /= 10;
	} while (value > 0 || n <= minor);
	while (n > 0)
	{
		if (n == minor)
			text[len++] = '.';
		text[len++] = digits[--n];
	}
	text[len] = '\0';
	return DirectFunctionCall3(numeric_in, CStringGetDatum(text), ObjectIdGetDatum(InvalidOid),
							   Int32GetDatum(-1));
}

/* Per call site: the result row's descriptor, the last time zone checked. */
typedef struct EvalCache
{
	TupleDesc	tupdesc;
	bool		zone_checked;	/* zone holds a name already checked */
	char		zone[NAMEDATALEN + 1];
} EvalCache;

/*
 * The arguments of both functions, checked (NULL is an error naming the
 * argument), then the evaluation.  The time zone is checked even when the
 * rule has no valid= (once per distinct zone per call site), so a wrong
 * zone fails alike for every rule.
 */
static void
EvaluateArgs(FunctionCallInfo fcinfo, CouponResult *result)
{
	static const char *const names[] = {"rule", "cart", "as_of", "time_zone"};
	EvalCache  *cache = fcinfo->flinfo->fn_extra;
	CouponRule *rule;
	Cart		cart;
	TimestampTz as_of;
	text	   *zone;
	DateADT		local_date = 0;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", names[i])));
	if (cache == NULL)
		cache = fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(EvalCache));
	rule = PG_GETARG_COUPON_RULE_P(0);
	as_of = LoyaltyTimestampArg(fcinfo, 2, "as_of");
	zone = PG_GETARG_TEXT_PP(3);
	if (rule->has_valid)
		local_date = CouponLocalDate(as_of, zone);
	else if (!cache->zone_checked || VARSIZE_ANY_EXHDR(zone) > NAMEDATALEN ||
			 strncmp(cache->zone, VARDATA_ANY(zone), VARSIZE_ANY_EXHDR(zone)) != 0 ||
			 cache->zone[VARSIZE_ANY_EXHDR(zone)] != '\0')
	{
		/*
		 * Only the zone's name is checked, at a fixed time: with as_of, a
		 * far as_of failed or passed depending on whether the zone was
		 * already cached by an earlier row.
		 */
		(void) CouponLocalDate(0, zone);
		if (VARSIZE_ANY_EXHDR(zone) <= NAMEDATALEN)
		{
			memcpy(cache->zone, VARDATA_ANY(zone), VARSIZE_ANY_EXHDR(zone));
			cache->zone[VARSIZE_ANY_EXHDR(zone)] = '\0';
			cache->zone_checked = true;
		}
	}
	CartRead(PG_GETARG_JSONB_P(1), &cart);
	CouponEvaluate(rule, &cart, local_date, result);
}

PG_FUNCTION_INFO_V1(coupon_evaluate);
/*
 * coupon_evaluate: eligible, discount, shipping_discount, gift, reason.
 * Declared with OUT parameters: one composite, not a set.
 */
Datum
coupon_evaluate(PG_FUNCTION_ARGS)
{
	CouponResult result;
	EvalCache  *cache;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	EvaluateArgs(fcinfo, &result);
	cache = fcinfo->flinfo->fn_extra;
	if (cache->tupdesc == NULL)
	{
		TupleDesc	tupdesc;
		MemoryContext old;

		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "coupon_evaluate must return a row");
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		cache->tupdesc = BlessTupleDesc(CreateTupleDescCopy(tupdesc));
		MemoryContextSwitchTo(old);
	}
	values[0] = BoolGetDatum(result.eligible);
	values[1] = MinorToNumeric(result.discount, result.minor);
	values[2] = MinorToNumeric(result.shipping_discount, result.minor);
	values[3] = result.gift ? CStringGetTextDatum(result.gift) : (Datum) 0;
	nulls[3] = result.gift == NULL;
	values[4] = result.reason ? CStringGetTextDatum(result.reason) : (Datum) 0;
	nulls[4] = result.reason == NULL;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(cache->tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(coupon_discount);
/* coupon_discount: discount + shipping_discount, 0 when not eligible. */
Datum
coupon_discount(PG_FUNCTION_ARGS)
{
	CouponResult result;

	EvaluateArgs(fcinfo, &result);
	PG_RETURN_DATUM(MinorToNumeric(result.discount + result.shipping_discount, result.minor));
}
