/*
 * loyalty.h
 *		Declarations shared by every part of the loyalty extension.
 */
#ifndef LOYALTY_H
#define LOYALTY_H

#include "postgres.h"

/*
 * SQLSTATEs of our own, class LY (documented in docs/errors.md).
 * Bad arguments use PostgreSQL's own codes (22004, 22023, 42704, ...).
 */
#define ERRCODE_LOYALTY_INSUFFICIENT_POINTS	MAKE_SQLSTATE('L','Y','0','0','1')
#define ERRCODE_LOYALTY_MEMBER_NOT_ACTIVE	MAKE_SQLSTATE('L','Y','0','0','2')
#define ERRCODE_LOYALTY_REF_CONFLICT		MAKE_SQLSTATE('L','Y','0','0','3')
#define ERRCODE_LOYALTY_LEDGER_APPEND_ONLY	MAKE_SQLSTATE('L','Y','0','0','4')
#define ERRCODE_LOYALTY_FX_RATE_MISSING		MAKE_SQLSTATE('L','Y','0','0','5')
#define ERRCODE_LOYALTY_SOURCE_NOT_ATTACHED	MAKE_SQLSTATE('L','Y','0','0','6')
#define ERRCODE_LOYALTY_FUTURE_AS_OF		MAKE_SQLSTATE('L','Y','0','0','7')
#define ERRCODE_LOYALTY_INVALID_CART		MAKE_SQLSTATE('L','Y','0','3','0')

/* Fraud checks (issue 11, part B): raised by review_flag (plpgsql). */
#define ERRCODE_LOYALTY_FLAG_DECIDED		MAKE_SQLSTATE('L','Y','0','4','0')
/* Referrals (part C of issue 11): raised by loyalty.refer (91_referral.sql). */
#define ERRCODE_LOYALTY_UNKNOWN_REFERRAL_CODE	MAKE_SQLSTATE('L','Y','0','4','1')
#define ERRCODE_LOYALTY_MISTYPED_REFERRAL_CODE	MAKE_SQLSTATE('L','Y','0','4','2')
#define ERRCODE_LOYALTY_ALREADY_REFERRED		MAKE_SQLSTATE('L','Y','0','4','3')
/* Program administration (12_program_admin.sql): LY053 a change dated
 * before orders already earned, LY054 drop of a program with ledger rows. */
#define ERRCODE_LOYALTY_PROGRAM_ARCHIVED		MAKE_SQLSTATE('L','Y','0','5','5')

/* Argument checks shared by the SQL-callable functions. */
extern char *LoyaltyTextArg(FunctionCallInfo fcinfo, int argno, const char *name);
extern int64 LoyaltyPositivePointsArg(FunctionCallInfo fcinfo, int argno);
extern TimestampTz LoyaltyTimestampArg(FunctionCallInfo fcinfo, int argno, const char *name);

#endif							/* LOYALTY_H */
