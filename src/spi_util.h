/*
 * spi_util.h
 *		Saved SPI plans and typed access to their result rows.
 */
#ifndef LOYALTY_SPI_UTIL_H
#define LOYALTY_SPI_UTIL_H

#include "postgres.h"

#include "executor/spi.h"

#define LOYALTY_MAX_ARGS 16

/*
 * One statement the extension runs: its text and argument types, and the
 * plan prepared (and kept) on first use in this backend.
 */
typedef struct LoyaltyQuery
{
	const char *sql;
	int			nargs;
	Oid			argtypes[LOYALTY_MAX_ARGS];
	SPIPlanPtr	plan;
} LoyaltyQuery;

extern int	LoyaltyRun(LoyaltyQuery *query, Datum *values, const char *nulls,
					   int expected_rc);

extern bool LoyaltyIsNull(int row, int col);
extern int64 LoyaltyGetInt64(int row, int col);
extern int32 LoyaltyGetInt32(int row, int col);
extern bool LoyaltyGetBool(int row, int col);
extern char *LoyaltyGetText(int row, int col);
extern Datum LoyaltyGetDatum(int row, int col);

/* Build a text Datum, or mark the argument NULL when str is NULL. */
extern Datum LoyaltyTextOrNull(const char *str, char *null_flag);

#endif							/* LOYALTY_SPI_UTIL_H */
