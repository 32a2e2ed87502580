/*
 * caller.h
 *		Who called a SECURITY DEFINER function, and what that caller may do.
 */
#ifndef LOYALTY_CALLER_H
#define LOYALTY_CALLER_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* How far ahead of the clock an as_of may be for any caller (clock skew). */
#define LOYALTY_AS_OF_SKEW_SECONDS 5

extern Oid	LoyaltyCallerRole(void);
extern bool LoyaltyCallerIsAdmin(void);
extern TimestampTz LoyaltyCheckAsOf(TimestampTz as_of);
extern void LoyaltyCheckPastAsOf(TimestampTz as_of);
extern void LoyaltyCheckPastAsOfWith(TimestampTz as_of, const char *detail, const char *hint);

#endif							/* LOYALTY_CALLER_H */
