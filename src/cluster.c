/*
 * cluster.c
 *		Whether loyalty runs distributed on a Citus cluster, asked once per
 *		transaction (loyalty.distribute() runs in a transaction of its own,
 *		so the answer cannot change inside one that reads it).
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"

#include "cluster.h"
#include "spi_util.h"

static LoyaltyQuery distributed_query = {
	"SELECT loyalty.distributed()", 0, {InvalidOid}
};

/* -1: not asked in this transaction yet. */
static int	distributed_cached = -1;
static bool callback_registered = false;

/* Forgets the answer when the transaction ends. */
static void
ClusterXactCallback(XactEvent event, void *arg)
{
	distributed_cached = -1;
}

bool
LoyaltyDistributed(void)
{
	if (distributed_cached < 0)
	{
		if (!callback_registered)
		{
			RegisterXactCallback(ClusterXactCallback, NULL);
			callback_registered = true;
		}
		SPI_connect();
		LoyaltyRun(&distributed_query, NULL, NULL, SPI_OK_SELECT);
		distributed_cached = LoyaltyGetBool(0, 1) ? 1 : 0;
		SPI_finish();
	}
	return distributed_cached == 1;
}
