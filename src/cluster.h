/*
 * cluster.h
 *		Whether loyalty runs distributed on a Citus cluster.
 */
#ifndef LOYALTY_CLUSTER_H
#define LOYALTY_CLUSTER_H

#include "postgres.h"

/*
 * True when loyalty.distributed(): the member-keyed tables are Citus
 * distributed tables, and statements that Citus cannot run across nodes
 * take their cluster form.  Asked once per transaction.  Needs SPI.
 */
extern bool LoyaltyDistributed(void);

#endif							/* LOYALTY_CLUSTER_H */
