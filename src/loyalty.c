/*
 * loyalty.c
 *		Module entry point and the argument checks every SQL function shares.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "loyalty.h"
#include "program.h"
#include "signal_hash.h"
#include "tier_state.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	LoyaltyProgramCacheInit();
	SignalKeyCacheInit();
	TierAccrualHookInit();
}

/*
 * A required text argument: NULL or empty is an error naming the argument,
 * never a silently skipped call.
 */
char *
LoyaltyTextArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	char	   *value;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name)));
	return value;
}

/* A points argument: a whole number above zero. */
int64
LoyaltyPositivePointsArg(FunctionCallInfo fcinfo, int argno)
{
	int64		points;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("points must not be null")));
	points = PG_GETARG_INT64(argno);
	if (points <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("points must be positive, not " INT64_FORMAT, points)));
	return points;
}

/* A required, finite timestamptz argument (as_of and the like). */
TimestampTz
LoyaltyTimestampArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	TimestampTz ts;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
	ts = PG_GETARG_TIMESTAMPTZ(argno);
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite time", name)));
	return ts;
}
