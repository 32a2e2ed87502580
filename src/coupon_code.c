/*
 * coupon_code.c
 *		Coupon codes with a check character, and the as_of rule of a coupon
 *		redemption.
 *
 * An issued code is 11 characters drawn from a CSPRNG (pg_strong_random)
 * over a 32-character alphabet without the look-alikes 0, O, 1 and I (55
 * bits: with a million codes issued, a guess hits one in 3.6e10 tries),
 * then a Luhn mod 32 check character, which catches every single mistyped
 * character and every swap of two neighbours but one pair.  Codes are
 * stored upper case without separators and shown in groups of four
 * (K7QX-M2RD-P9X2); input ignores case, spaces and dashes (SQL side).
 */
#include "postgres.h"

#include "fmgr.h"
#include "port.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "caller.h"
#include "loyalty.h"

#define CODE_ALPHABET "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
#define CODE_RADIX 32
#define CODE_BODY 11
#define CODE_LENGTH (CODE_BODY + 1)

/* Position of c in the alphabet, or -1. */
static int
CodeDigit(char c)
{
	const char *p = strchr(CODE_ALPHABET, c);

	return (c != '\0' && p != NULL) ? (int) (p - CODE_ALPHABET) : -1;
}

/*
 * Luhn mod N sum of digits, the rightmost doubled first when with_check is
 * false (computing a check character), second when true (verifying one).
 */
static int
LuhnSum(const int *digits, int n, bool with_check)
{
	int			factor = with_check ? 1 : 2;
	int			sum = 0;

	for (int i = n - 1; i >= 0; i--)
	{
		int			addend = factor * digits[i];

		sum += addend / CODE_RADIX + addend % CODE_RADIX;
		factor = (factor == 2) ? 1 : 2;
	}
	return sum % CODE_RADIX;
}

PG_FUNCTION_INFO_V1(loyalty_coupon_code_generate);
/* loyalty.coupon_code_generate(): a new random code with its check character, ungrouped. */
Datum
loyalty_coupon_code_generate(PG_FUNCTION_ARGS)
{
	uint8		bytes[CODE_BODY];
	int			digits[CODE_BODY];
	char		code[CODE_LENGTH + 1];

	if (!pg_strong_random(bytes, sizeof(bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random coupon code")));
	/* 256 is a multiple of 32: the low five bits are uniform. */
	for (int i = 0; i < CODE_BODY; i++)
	{
		digits[i] = bytes[i] % CODE_RADIX;
		code[i] = CODE_ALPHABET[digits[i]];
	}
	code[CODE_BODY] = CODE_ALPHABET[(CODE_RADIX - LuhnSum(digits, CODE_BODY, false)) % CODE_RADIX];
	code[CODE_LENGTH] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(code));
}

PG_FUNCTION_INFO_V1(loyalty_coupon_code_shape);
/*
 * loyalty.coupon_code_shape(code): 'issued' for a normalized code of the
 * issued form with a right check character, 'mistyped' for that form with a
 * wrong one, 'other' for anything else (a shared code, garbage).
 */
Datum
loyalty_coupon_code_shape(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(t);
	int			digits[CODE_LENGTH];

	if (VARSIZE_ANY_EXHDR(t) != CODE_LENGTH)
		PG_RETURN_TEXT_P(cstring_to_text("other"));
	for (int i = 0; i < CODE_LENGTH; i++)
	{
		digits[i] = CodeDigit(s[i]);
		if (digits[i] < 0)
			PG_RETURN_TEXT_P(cstring_to_text("other"));
	}
	PG_RETURN_TEXT_P(cstring_to_text(LuhnSum(digits, CODE_LENGTH, true) == 0 ? "issued" : "mistyped"));
}

PG_FUNCTION_INFO_V1(loyalty_check_spend_as_of);
/*
 * loyalty.check_spend_as_of(as_of): the as_of rule of loyalty.redeem for a
 * new spending: neither in the future nor in the past (beyond the clock
 * skew) unless the caller is an admin.  Returns as_of.
 */
Datum
loyalty_check_spend_as_of(PG_FUNCTION_ARGS)
{
	TimestampTz as_of = LoyaltyCheckAsOf(LoyaltyTimestampArg(fcinfo, 0, "as_of"));

	LoyaltyCheckPastAsOf(as_of);
	PG_RETURN_TIMESTAMPTZ(as_of);
}
