/*
 * order_batch.h
 *		Newly inserted orders, earned in one set-based statement.
 */
#ifndef LOYALTY_ORDER_BATCH_H
#define LOYALTY_ORDER_BATCH_H

#include "postgres.h"

#include "order_event.h"
#include "program.h"

/* Orders per statement: bounds memory on huge INSERTs and COPYs. */
#define ORDER_BATCH_SIZE 10000

typedef struct OrderBatch
{
	int			n;
	Datum	   *order_id;
	Datum	   *member_id;
	bool	   *member_null;
	Datum	   *amount;
	bool	   *amount_null;
	Datum	   *currency;
	bool	   *currency_null;
	Datum	   *rate;
	bool	   *rate_null;
	Datum	   *points;
	Datum	   *refunded;
	bool	   *refunded_null;
	Datum	   *closed;
	Datum	   *ordered_at;
	Datum	   *available_at;
	Datum	   *expires_at;
	bool	   *expires_null;
	Datum	   *multiplier;		/* numeric, 0 for a back-filled history order */
	Datum	   *status;			/* not written: for rows replayed one by one */
	bool	   *status_null;
	/* After a flush: rows (indexes) the one-row path must take, see OrderBatchFlush. */
	int			nreplay;
	int		   *replay;
} OrderBatch;

extern OrderBatch *OrderBatchCreate(void);
extern void OrderBatchAdd(OrderBatch *batch, const LoyaltyProgram *prog,
						  const OrderRow *row, const OrderTarget *target);
/* Arguments $1..$12 of a batch statement, and $13 the multipliers (see OrderBatchArgs). */
#define ORDER_BATCH_NARGS 13
extern void OrderBatchArgs(const OrderBatch *batch, const LoyaltyProgram *prog, Datum *args);
extern int64 OrderBatchFlush(OrderBatch *batch, const LoyaltyProgram *prog);
extern void OrderBatchRow(const OrderBatch *batch, int i, OrderRow *row);

#endif							/* LOYALTY_ORDER_BATCH_H */
