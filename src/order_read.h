/*
 * order_read.h
 *		Reading an orders row through its mapping (attach_orders), and
 *		keeping an event loyalty cannot apply in the dead letters.
 *
 * Used by the accrual trigger and by the back-fill (backfill.c), so that an
 * order reads the same whichever of them sees it first.
 */
#ifndef LOYALTY_ORDER_READ_H
#define LOYALTY_ORDER_READ_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"

#include "order_event.h"
#include "program.h"

/*
 * Positions of the mapping's column names (the accrual trigger's
 * arguments): program, then the columns of order id, member id, amount,
 * currency, status, refunded amount and created at ('' where not mapped).
 */
enum
{
	ARG_PROGRAM,
	ARG_ORDER_ID,
	ARG_MEMBER_ID,
	ARG_AMOUNT,
	ARG_CURRENCY,
	ARG_STATUS,
	ARG_REFUNDED,
	ARG_CREATED_AT,
	TRIGGER_NARGS
};

extern int	OrderMappedColumn(TupleDesc desc, char **args, int arg);
extern bool OrderRowRead(TupleDesc desc, const char *relname, HeapTuple tuple, char **args,
						 const LoyaltyProgram *prog, OrderRow *row, OrderProblem *problem);
extern void OrderDeadLetterKeep(const char *program, OrderEventKind kind, const OrderRow *row,
								const OrderProblem *problem);

#endif							/* LOYALTY_ORDER_READ_H */
