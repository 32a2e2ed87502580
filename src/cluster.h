/*
 * cluster.h
 *		Whether loyalty runs distributed on a Citus cluster, and which
 *		distributed table a Citus shard belongs to.
 */
#ifndef LOYALTY_CLUSTER_H
#define LOYALTY_CLUSTER_H

#include "postgres.h"

#include "utils/relcache.h"

extern bool LoyaltyDistributed(void);
extern bool LoyaltyOnWorker(void);
extern Oid	LoyaltyShardOf(Oid relid);
extern bool LoyaltyIsTable(Relation rel, const char *name);

#endif							/* LOYALTY_CLUSTER_H */
