/*
 * health.h
 *		What loyalty.health reads: the runs of the batch jobs and the order
 *		events the accrual trigger ignores.
 */
#ifndef LOYALTY_HEALTH_H
#define LOYALTY_HEALTH_H

#include "postgres.h"

#include "datatype/timestamp.h"

extern void JobRunRecord(const char *job, const char *program, TimestampTz started_at,
						 int64 rows, const char *detail);
extern void IgnoredEventCount(const char *program, const char *reason, const char *subject);

#endif							/* LOYALTY_HEALTH_H */
