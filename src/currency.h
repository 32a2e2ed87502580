/*
 * currency.h
 *		ISO 4217 active currency codes and their minor units.
 */
#ifndef LOYALTY_CURRENCY_H
#define LOYALTY_CURRENCY_H

/*
 * The minor unit (decimals) of an active ISO 4217 code written in upper
 * case, e.g. 2 for "USD", 0 for "VND"; -1 when the code is not one.
 * len is the code's length (codes need not be NUL-terminated).
 */
extern int	CurrencyMinorUnit(const char *code, int len);

/* Copies code upper-cased into out[4] and returns its minor unit; -1 when not an active code. */
extern int	CurrencyLookup(const char *code, int len, char *out);

/* Copies code upper-cased into out[4] when it is an active code; else false. */
extern bool CurrencyNormalize(const char *code, int len, char *out);

#endif							/* LOYALTY_CURRENCY_H */
