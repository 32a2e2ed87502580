/*
 * activity.h
 *		Per-member order activity (see src/sql/25_activity.sql).
 */
#ifndef LOYALTY_ACTIVITY_H
#define LOYALTY_ACTIVITY_H

#include "postgres.h"

#include "datatype/timestamp.h"

/*
 * Folds the program's day rows up to three days before the UTC day of after
 * into activity_before, so that a pass over the window (after, ...] reads
 * one row per member.  Skipped when another pass is folding.  Needs SPI.
 */
extern void ActivityFoldBefore(const char *program, TimestampTz after);

#endif							/* LOYALTY_ACTIVITY_H */
