/*
 * fx.c
 *		Points for an amount in any currency, in exact numeric arithmetic.
 *
 * points = floor(amount x rate x earn_rate x multiplier) (earn_rate of the
 * program terms in force at the order's time), or, when only the
 * reverse pair is known, floor(amount x earn_rate x multiplier / rate):
 * dividing last keeps the floor exact (1/rate is never rounded first).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/timestamp.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "fx.h"
#include "spi_util.h"

/*
 * loyalty.fx_quote's query, written out: Citus cannot plan a parameterized
 * statement into which a SQL function over one of its tables (fx_rate is a
 * reference table on a cluster) is inlined.
 */
static LoyaltyQuery fx_query = {
	"SELECT c.rate, c.inverse FROM ("
	"   SELECT f.rate, f.valid_from, false AS inverse FROM loyalty.fx_rate f"
	"    WHERE f.from_currency OPERATOR(pg_catalog.=) $1 AND f.to_currency OPERATOR(pg_catalog.=) $2"
	"      AND f.valid_from OPERATOR(pg_catalog.<=) $3"
	"   UNION ALL"
	"   SELECT f.rate, f.valid_from, true FROM loyalty.fx_rate f"
	"    WHERE f.from_currency OPERATOR(pg_catalog.=) $2 AND f.to_currency OPERATOR(pg_catalog.=) $1"
	"      AND f.valid_from OPERATOR(pg_catalog.<=) $3"
	") c ORDER BY c.valid_from DESC, c.inverse LIMIT 1",
	3, {TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

static Datum
NumericFromInt64(int64 v)
{
	return DirectFunctionCall1(int8_numeric, Int64GetDatum(v));
}

static int
NumericCompare(Datum a, Datum b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, a, b));
}

/* floor(n) as int64, or false when above LOYALTY_MAX_ORDER_POINTS. */
static bool
NumericFloorToInt64(Datum n, int64 *out)
{
	Datum		floored = DirectFunctionCall1(numeric_floor, n);

	if (NumericCompare(floored, NumericFromInt64(LOYALTY_MAX_ORDER_POINTS)) > 0)
		return false;
	*out = DatumGetInt64(DirectFunctionCall1(numeric_int8, floored));
	return true;
}

/*
 * Whether a factor of the points is absurdly large (or, for a rate divided
 * by, small): 10^1000.  Four factors within these bounds cannot overflow
 * numeric (10^131072), which would raise an error in the order's INSERT.
 */
static bool
FactorOutOfRange(Datum factor, bool divisor)
{
	static Datum huge = (Datum) 0;
	static Datum tiny = (Datum) 0;

	if (huge == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		huge = DirectFunctionCall3(numeric_in, CStringGetDatum("1e1000"),
								   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		tiny = DirectFunctionCall3(numeric_in, CStringGetDatum("1e-1000"),
								   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		MemoryContextSwitchTo(old);
	}
	return NumericCompare(factor, huge) > 0 || (divisor && NumericCompare(factor, tiny) < 0);
}

/*
 * Points the program gives for amount in currency at time at (at the earn
 * rate of its terms then, and the FX rate then), times the member's tier
 * multiplier (numeric, 1 without tiers).  Sets *rate to the
 * rate used (1 in the base currency).  A non-positive amount earns 0.
 */
PointsResult
LoyaltyPointsFor(const LoyaltyProgram *prog, Datum amount, const char *currency,
				 TimestampTz at, Datum multiplier, int64 *points, Datum *rate)
{
	Datum		zero = NumericFromInt64(0);
	Datum		earn_rate = LoyaltyTermsAt(prog, at)->earn_rate;
	Datum		value;
	Datum		args[3];
	bool		inverse;

	*points = 0;
	*rate = NumericFromInt64(1);
	if (numeric_is_nan(DatumGetNumeric(amount)) || NumericCompare(amount, zero) <= 0)
		return POINTS_OK;
	if (FactorOutOfRange(amount, false) || FactorOutOfRange(earn_rate, false) ||
		FactorOutOfRange(multiplier, false))
		return POINTS_OVERFLOW;
	value = DirectFunctionCall2(numeric_mul,
								DirectFunctionCall2(numeric_mul, amount, earn_rate),
								multiplier);

	if (currency != NULL && strcmp(currency, prog->base_currency) != 0)
	{
		args[0] = CStringGetTextDatum(currency);
		args[1] = CStringGetTextDatum(prog->base_currency);
		args[2] = TimestampTzGetDatum(at);
		LoyaltyRun(&fx_query, args, NULL, SPI_OK_SELECT);
		if (SPI_processed == 0)
			return POINTS_NO_RATE;
		/* Copied out so the result can be freed: batches price many rows. */
		*rate = datumCopy(LoyaltyGetDatum(0, 1), false, -1);
		inverse = LoyaltyGetBool(0, 2);
		SPI_freetuptable(SPI_tuptable);
		if (FactorOutOfRange(*rate, true))
			return POINTS_OVERFLOW;
		if (inverse)
		{
			value = DirectFunctionCall2(numeric_div_trunc, value, *rate);
			*rate = DirectFunctionCall2(numeric_div, NumericFromInt64(1), *rate);
		}
		else
			value = DirectFunctionCall2(numeric_mul, value, *rate);
	}

	return NumericFloorToInt64(value, points) ? POINTS_OK : POINTS_OVERFLOW;
}

/*
 * floor(points x part / whole), part clamped to [0, whole]: the share of an
 * order's points a cumulative refund takes back.  Computed exactly, so
 * partial refunds that add up to the whole take back exactly all points.
 */
int64
LoyaltyShareOf(int64 points, Datum part, Datum whole)
{
	Datum		zero = NumericFromInt64(0);

	if (points == 0 || NumericCompare(whole, zero) <= 0 ||
		numeric_is_nan(DatumGetNumeric(part)) || NumericCompare(part, zero) <= 0)
		return 0;
	if (NumericCompare(part, whole) >= 0)
		return points;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8,
											 DirectFunctionCall2(numeric_div_trunc,
																 DirectFunctionCall2(numeric_mul,
																					 NumericFromInt64(points),
																					 part),
																 whole)));
}
