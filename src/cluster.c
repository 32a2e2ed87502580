/*
 * cluster.c
 *		Whether loyalty runs distributed on a Citus cluster (see
 *		94_cluster.sql), and which distributed table a Citus shard belongs to.
 *
 * On a cluster Citus fires a distributed table's triggers on its shards
 * (loyalty.order_earning_102040, public.orders_102216), on the node that
 * holds them.  There only router statements (one member's rows, the member
 * id known) can run, so the accrual code asks LoyaltyDistributed() once per
 * transaction and then takes its one-order-at-a-time path.  A single node
 * never asks Citus anything: its catalogs are read only when they exist.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "cluster.h"
#include "spi_util.h"

static LoyaltyQuery distributed_query = {
	"SELECT loyalty.distributed(), loyalty.on_worker()", 0, {InvalidOid}
};

static LoyaltyQuery shard_query = {
	"SELECT s.logicalrelid::pg_catalog.oid FROM pg_catalog.pg_dist_shard s"
	" WHERE s.shardid OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}
};

/* The answers of the current transaction (valid: read in it). */
static bool cached_valid = false;
static bool cached_distributed;
static bool cached_on_worker;
static bool callback_registered = false;

/* A transaction's end forgets the answers (distribute() may have run). */
static void
ClusterXactCallback(XactEvent event, void *arg)
{
	cached_valid = false;
}

static void
ClusterRead(void)
{
	if (cached_valid)
		return;
	if (!callback_registered)
	{
		RegisterXactCallback(ClusterXactCallback, NULL);
		callback_registered = true;
	}
	cached_distributed = false;
	cached_on_worker = false;
	/* Without Citus's catalog (a single node), no statement at all. */
	if (OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE)))
	{
		SPI_connect();
		LoyaltyRun(&distributed_query, NULL, NULL, SPI_OK_SELECT);
		cached_distributed = LoyaltyGetBool(0, 1);
		cached_on_worker = LoyaltyGetBool(0, 2);
		SPI_finish();
	}
	cached_valid = true;
}

/* Whether loyalty.distribute() turned this database into the cluster layout. */
bool
LoyaltyDistributed(void)
{
	ClusterRead();
	return cached_distributed;
}

/* Whether this node is a Citus worker (not the coordinator). */
bool
LoyaltyOnWorker(void)
{
	ClusterRead();
	return cached_on_worker;
}

/* The owner of a relation (InvalidOid when it is gone). */
static Oid
RelationOwner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * The distributed table whose shard relid is, or InvalidOid: relid is not a
 * shard (or Citus is absent).  A shard is named after its table with its
 * shard id appended (table_102216); pg_dist_shard tells whose it is.  A
 * table that only looks like a shard (another name before the shard id, or
 * another owner, as a role could make one to earn in another's program) is
 * not taken for one.
 */
Oid
LoyaltyShardOf(Oid relid)
{
	char	   *name = get_rel_name(relid);
	char	   *suffix;
	char	   *end;
	int64		shardid;
	Datum		arg;
	Oid			logical = InvalidOid;

	if (name == NULL || (suffix = strrchr(name, '_')) == NULL || suffix[1] == '\0')
		return InvalidOid;
	errno = 0;
	shardid = strtoi64(suffix + 1, &end, 10);
	if (*end != '\0' || errno != 0 || shardid <= 0)
		return InvalidOid;
	if (!OidIsValid(get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE)))
		return InvalidOid;
	arg = Int64GetDatum(shardid);
	SPI_connect();
	LoyaltyRun(&shard_query, &arg, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
		logical = DatumGetObjectId(LoyaltyGetDatum(0, 1));
	SPI_finish();
	/* Same schema, exactly the name the table's shards get, same owner. */
	if (OidIsValid(logical))
	{
		char	   *table = get_rel_name(logical);

		if (table == NULL ||
			get_rel_namespace(logical) != get_rel_namespace(relid) ||
			(size_t) (suffix - name) != strlen(table) ||
			strncmp(name, table, suffix - name) != 0 ||
			RelationOwner(logical) != RelationOwner(relid))
			return InvalidOid;
	}
	return logical;
}

/*
 * Whether rel is loyalty's table name, or on a cluster one of its shards
 * (the extension's triggers on that table fire on its shards there).
 */
bool
LoyaltyIsTable(Relation rel, const char *name)
{
	const char *relname = RelationGetRelationName(rel);
	size_t		len = strlen(name);
	char	   *nsp = get_namespace_name(RelationGetNamespace(rel));

	if (nsp == NULL || strcmp(nsp, "loyalty") != 0)
		return false;
	if (strcmp(relname, name) == 0)
		return true;
	if (strncmp(relname, name, len) != 0 || relname[len] != '_' ||
		strspn(relname + len + 1, "0123456789") != strlen(relname + len + 1) ||
		relname[len + 1] == '\0')
		return false;
	return LoyaltyShardOf(RelationGetRelid(rel)) ==
		get_relname_relid(name, RelationGetNamespace(rel));
}
