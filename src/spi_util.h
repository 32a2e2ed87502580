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
 * The text runs inside functions whose search_path is pg_catalog, loyalty,
 * pg_temp: pg_temp last, or the caller's temporary schema is searched first
 * for type and table names (a pg_temp.text domain would run the caller's
 * code as the extension owner).  Type names, functions and operators are
 * written pg_catalog-qualified all the same (type keywords such as
 * integer, bigint, numeric, boolean and interval are pg_catalog's by
 * grammar; unnest of several arrays only works unqualified), and so are
 * the comparisons of IN, CASE x WHEN and JOIN USING, which look up = on
 * the search_path: OPERATOR(pg_catalog.=) ANY (...), CASE WHEN, JOIN ON.
 * scripts/check_qualified_sql.pl (a suite of test/run.sh) holds to it.
 *
 * One statement the extension runs: its text and argument types, and the
 * plan prepared (and kept) on first use in this backend.
 *
 * by_member: a lookup of one member's or one order's rows.  PostgreSQL
 * would settle on one generic plan after five runs; made while a table is
 * still small (a bulk load into a new program) that plan scans the whole
 * table, and keeps doing so as the table grows inside the load.  These
 * queries are cheap to plan, so they are planned for their arguments on
 * every run instead (CURSOR_OPT_CUSTOM_PLAN).
 */
typedef struct LoyaltyQuery
{
	const char *sql;
	int			nargs;
	Oid			argtypes[LOYALTY_MAX_ARGS];
	bool		by_member;
	SPIPlanPtr	plan;
} LoyaltyQuery;

extern int	LoyaltyRun(LoyaltyQuery *query, Datum *values, const char *nulls,
					   int expected_rc);

/*
 * Called with each row's values (and nulls) of a streamed query; keep is
 * the memory context for what outlives the row.
 */
typedef void (*LoyaltyRowFn) (const Datum *values, const bool *isnull, MemoryContext keep,
							  void *arg);

extern uint64 LoyaltyStream(LoyaltyQuery *query, Datum *values, const char *nulls,
							LoyaltyRowFn fn, void *arg);

extern bool LoyaltyIsNull(int row, int col);
extern int64 LoyaltyGetInt64(int row, int col);
extern int32 LoyaltyGetInt32(int row, int col);
extern bool LoyaltyGetBool(int row, int col);
extern char *LoyaltyGetText(int row, int col);
extern Datum LoyaltyGetDatum(int row, int col);

/* A one-dimensional array of n values (nulls may be NULL: none) for a query argument. */
extern Datum LoyaltyArray(Datum *values, bool *nulls, int n, Oid elemtype);

/* Build a text Datum, or mark the argument NULL when str is NULL. */
extern Datum LoyaltyTextOrNull(const char *str, char *null_flag);

#endif							/* LOYALTY_SPI_UTIL_H */
