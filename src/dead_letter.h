/*
 * dead_letter.h
 *		Order events kept aside until the program's configuration is fixed.
 */
#ifndef LOYALTY_DEAD_LETTER_H
#define LOYALTY_DEAD_LETTER_H

#include "postgres.h"

#include "order_event.h"

extern bool DeadLetterPending(const char *program, const char *member_id, const char *order_id);
extern void DeadLetterSupersede(const char *program, const char *member_id, const char *order_id);
extern void DeadLetterWrite(const char *program, OrderEventKind kind, const OrderRow *row,
							const OrderProblem *problem);

#endif							/* LOYALTY_DEAD_LETTER_H */
