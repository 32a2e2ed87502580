/*
 * order_partition.h
 *		Partitioned orders tables: the attached table a partition belongs
 *		to, and rows an UPDATE moved to another partition.
 */
#ifndef LOYALTY_ORDER_PARTITION_H
#define LOYALTY_ORDER_PARTITION_H

#include "postgres.h"

#include "access/htup.h"
#include "utils/relcache.h"

extern Oid	OrderPartitionAttachedAncestor(const char *program, Oid relid);
extern HeapTuple OrderPartitionMovedRow(Relation partition, Oid orders,
										const char *order_id_column, HeapTuple old);

#endif							/* LOYALTY_ORDER_PARTITION_H */
