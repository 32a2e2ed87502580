/*
 * order_event.h
 *		One order event (insert, update, delete) applied to the ledger.
 */
#ifndef LOYALTY_ORDER_EVENT_H
#define LOYALTY_ORDER_EVENT_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "accrual_hook.h"
#include "program.h"

typedef enum OrderEventKind
{
	ORDER_INSERT,
	ORDER_UPDATE,
	ORDER_DELETE
} OrderEventKind;

/* The mapped columns of one orders row, as loyalty reads them. */
typedef struct OrderRow
{
	char	   *order_id;
	char	   *member_id;		/* NULL: a guest order */
	bool		has_amount;
	Datum		amount;			/* numeric */
	char	   *currency;		/* NULL: the program's base currency */
	char	   *status;
	bool		has_refunded;
	Datum		refunded;		/* numeric, cumulative */
	bool		has_time;
	TimestampTz ordered_at;
	bool		replayed;		/* read back from a dead letter, not the table */
} OrderRow;

/*
 * The start of the statement that marks open dead letters (alias d) as
 * superseded: a later event of the order was applied, and the row as it
 * is now is what counts.  Used inside the statements that record orders
 * and by DeadLetterSupersede.
 */
#define LETTERS_SUPERSEDE \
	"UPDATE loyalty.dead_letter d SET resolved_at = pg_catalog.now()," \
	"       reason = d.reason OPERATOR(pg_catalog.||) ' (superseded by a later event of the order)'"

/* Why an event could not be applied now (it goes to the dead letters). */
typedef struct OrderProblem
{
	int			sqlstate;
	char	   *reason;
} OrderProblem;

/* What a row says its order should hold. */
typedef struct OrderTarget
{
	char	   *member_id;
	bool		closed;
	int64		points;
	Datum		rate;			/* numeric, 0 when no rate was needed */
	Datum		multiplier;		/* numeric: what the accrual hooks multiply by, 1 without */
	AccrualPricing pricing;		/* what the hooks said (pricing.priced: asked now) */
	int64		reversal;		/* points its refunds call for */
	TimestampTz ordered_at;
} OrderTarget;

/*
 * Values the program cannot use (see OrderRowCheck): ids longer than this
 * many characters (a btree entry holds about 2.7 kB; 255 characters of up
 * to 4 bytes each fit beside the program code), order times later than
 * this long after the transaction started or before 1900, balances or
 * lifetime figures that an earn would take above LOYALTY_MAX_BALANCE
 * (2^62: concurrent earns of at most LOYALTY_MAX_ORDER_POINTS each cannot
 * overflow a bigint from there).
 */
#define LOYALTY_MAX_ID_CHARS	255
#define LOYALTY_MAX_FUTURE_DAYS	2
#define LOYALTY_MAX_BALANCE		(INT64CONST(1) << 62)

extern const char *OrderEventName(OrderEventKind kind);
extern bool OrderIdTooLong(const char *id);
extern bool OrderRowCheck(const LoyaltyProgram *prog, OrderEventKind kind, OrderRow *row,
						  OrderProblem *problem);
extern bool OrderInsertTarget(const LoyaltyProgram *prog, const OrderRow *row,
							  OrderTarget *target, OrderProblem *problem);
extern void OrderTargetHistory(OrderTarget *target);
extern bool OrderBackfillApply(const LoyaltyProgram *prog, OrderRow *row, bool history,
							   OrderProblem *problem);
extern bool OrderEventApply(const LoyaltyProgram *prog, OrderEventKind kind,
							OrderRow *row, bool *unrecorded, OrderProblem *problem);

#endif							/* LOYALTY_ORDER_EVENT_H */
