/*
 * caller.c
 *		Who called a SECURITY DEFINER function, and what that caller may do.
 *
 * Inside a SECURITY DEFINER function current_user is the extension owner,
 * and session_user is the login, which SET ROLE does not change.  The
 * caller is the role the session acts as: the login or the role it SET
 * ROLE to (GetOuterUserId()).  A call made through another SECURITY
 * DEFINER function is therefore checked against the session's role, not
 * against that function's owner: a wrapper cannot lend its owner's rights
 * to a session that lacks them.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "caller.h"
#include "loyalty.h"

/* The role the session acts as (after SET ROLE), whatever function runs. */
Oid
LoyaltyCallerRole(void)
{
	return GetOuterUserId();
}

/*
 * True when the caller has the privileges of loyalty_admin (directly,
 * through inherited membership, or as a superuser).
 */
bool
LoyaltyCallerIsAdmin(void)
{
	Oid			admin = get_role_oid("loyalty_admin", true);

	if (superuser_arg(LoyaltyCallerRole()))
		return true;
	return OidIsValid(admin) && has_privs_of_role(LoyaltyCallerRole(), admin);
}

/*
 * Refuses an as_of later than the clock (plus a few seconds of skew) unless
 * the caller is an admin: acting in the future would count pending points
 * as available, or credit points that become available early.  Returns
 * as_of.
 */
TimestampTz
LoyaltyCheckAsOf(TimestampTz as_of)
{
	TimestampTz limit = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													LOYALTY_AS_OF_SKEW_SECONDS * 1000);

	if (as_of > limit && !LoyaltyCallerIsAdmin())
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_FUTURE_AS_OF),
				 errmsg("as_of \"%s\" is in the future", timestamptz_to_str(as_of)),
				 errdetail("Only members of loyalty_admin may act at a time later than now: points still pending would count as available."),
				 errhint("Leave as_of out (it defaults to now()), or pass a time that has passed.")));
	return as_of;
}

/*
 * Refuses a new spending of points dated in the past (beyond the skew)
 * unless the caller is an admin: points that expired since would count as
 * available again until the next expiry pass.  The past starts at the
 * transaction's start (now(), the default as_of), not at the clock: an
 * order and its redemption in one long transaction are not back-dating.
 * Replays of a posting never get here: they return the first result
 * before.
 */
void
LoyaltyCheckPastAsOf(TimestampTz as_of)
{
	LoyaltyCheckPastAsOfWith(as_of,
							 "Only members of loyalty_admin may spend points at a time that has passed: points that expired since would count as available.",
							 "Leave as_of out (it defaults to now()); a replay with the original reference still returns the first result.");
}

/* The same rule, with the detail and hint of the act being dated. */
void
LoyaltyCheckPastAsOfWith(TimestampTz as_of, const char *detail, const char *hint)
{
	TimestampTz limit = TimestampTzPlusMilliseconds(GetCurrentTransactionStartTimestamp(),
													-LOYALTY_AS_OF_SKEW_SECONDS * 1000);

	if (as_of < limit && !LoyaltyCallerIsAdmin())
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_FUTURE_AS_OF),
				 errmsg("as_of \"%s\" is in the past", timestamptz_to_str(as_of)),
				 errdetail("%s", detail),
				 errhint("%s", hint)));
}

PG_FUNCTION_INFO_V1(loyalty_calling_role);
/* loyalty.calling_role(): the caller of the running SECURITY DEFINER function. */
Datum
loyalty_calling_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(LoyaltyCallerRole());
}

PG_FUNCTION_INFO_V1(loyalty_check_as_of);
/* loyalty.check_as_of(as_of): as_of, or an error when the caller may not use it. */
Datum
loyalty_check_as_of(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(LoyaltyCheckAsOf(LoyaltyTimestampArg(fcinfo, 0, "as_of")));
}
