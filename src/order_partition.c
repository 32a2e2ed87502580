/*
 * order_partition.c
 *		Partitioned orders tables.
 *
 * attach_orders() on a partitioned table puts the INSERT statement trigger
 * on the table and on each of its partitions (an INSERT fires the statement
 * triggers of the table it names only; src/sql/22_partitions.sql keeps new
 * partitions covered), and the UPDATE/DELETE row trigger on the table, which
 * PostgreSQL clones to every partition.  So the trigger fires on partitions,
 * which are not in loyalty.order_source: they are resolved here to the
 * attached table they belong to.
 *
 * An UPDATE that changes the partition key moves the row: PostgreSQL fires
 * DELETE on the old partition and INSERT on the new one, at row level only.
 * Such a DELETE (the old row version says it moved) looks the order id up
 * in the attached table: found, the order was moved, not deleted, and is
 * applied as an UPDATE to the row found.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/tupconvert.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "tcop/deparse_utility.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "order_partition.h"
#include "spi_util.h"

/* The attached table among a partition's ancestors (nearest first). */
static LoyaltyQuery attached_ancestor = {
	"SELECT s.orders::pg_catalog.oid"
	"  FROM pg_catalog.pg_partition_ancestors($2) WITH ORDINALITY AS a(relid, depth)"
	"  JOIN loyalty.order_source s ON s.orders OPERATOR(pg_catalog.=) a.relid"
	" WHERE s.program OPERATOR(pg_catalog.=) $1"
	" ORDER BY a.depth LIMIT 1",
	2, {TEXTOID, REGCLASSOID}
};

/*
 * The table attached to program that relid is a partition of, InvalidOid
 * when none is.  Runs in the caller's SPI connection.
 */
Oid
OrderPartitionAttachedAncestor(const char *program, Oid relid)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(program);
	args[1] = ObjectIdGetDatum(relid);
	LoyaltyRun(&attached_ancestor, args, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return InvalidOid;
	return DatumGetObjectId(LoyaltyGetDatum(0, 1));
}

/*
 * The equality operator of a type, schema-qualified for OPERATOR(...), NULL
 * when the type has none.
 */
static char *
QualifiedEqualityOperator(Oid type)
{
	TypeCacheEntry *entry = lookup_type_cache(type, TYPECACHE_EQ_OPR);
	List	   *names;
	List	   *args;

	if (!OidIsValid(entry->eq_opr))
		return NULL;
	format_operator_parts(entry->eq_opr, &names, &args, false);
	return psprintf("%s.%s", quote_identifier((char *) linitial(names)),
					(char *) lsecond(names));
}

/*
 * Whether a deleted row was moved to another partition: heap_delete marks
 * the old version so (its t_ctid), and the AFTER trigger reads that version
 * from the table.  A plain DELETE costs no lookup.  A foreign partition's
 * rows carry no mark: looked up always.
 */
static bool
RowMoved(Relation partition, HeapTuple old)
{
	if (partition->rd_rel->relkind == RELKIND_FOREIGN_TABLE)
		return true;
	return HeapTupleHeaderIndicatesMovedPartitions(old->t_data);
}

/*
 * The lookup's plan, kept for the next DELETE (a bulk DELETE fires once per
 * row): one plan, for the last statement text, replaced when it changes.
 */
static SPIPlanPtr
MovedRowPlan(const char *sql, Oid type)
{
	static SPIPlanPtr plan = NULL;
	static char *plan_sql = NULL;
	static Oid	plan_type = InvalidOid;

	if (plan != NULL && plan_type == type && strcmp(plan_sql, sql) == 0)
		return plan;
	if (plan != NULL)
	{
		SPI_freeplan(plan);
		pfree(plan_sql);
		plan = NULL;
	}
	plan = SPI_prepare(sql, 1, &type);
	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "loyalty: could not prepare the moved order lookup: %s",
			 SPI_result_code_string(SPI_result));
	plan_sql = MemoryContextStrdup(TopMemoryContext, sql);
	plan_type = type;
	return plan;
}

/*
 * After a DELETE on a partition of orders: the row of the same order id now
 * in orders (an UPDATE moved it to another partition), in the layout of
 * partition, allocated outside SPI; NULL when the order is gone.  An order
 * id is one order: an attached table holds it once.
 */
HeapTuple
OrderPartitionMovedRow(Relation partition, Oid orders, const char *order_id_column,
					   HeapTuple old)
{
	TupleDesc	desc = RelationGetDescr(partition);
	int			attnum = SPI_fnumber(desc, order_id_column);
	Oid			type;
	char	   *eq;
	bool		isnull;
	Datum		id;
	StringInfoData sql;
	TupleConversionMap *map;
	HeapTuple	found;

	if (attnum <= 0 || !RowMoved(partition, old))
		return NULL;
	id = SPI_getbinval(old, desc, attnum, &isnull);
	type = SPI_gettypeid(desc, attnum);
	eq = QualifiedEqualityOperator(type);
	if (isnull || eq == NULL)
		return NULL;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT o.* FROM %s AS o WHERE o.%s OPERATOR(%s) $1 LIMIT 1",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(orders)),
												get_rel_name(orders)),
					 quote_identifier(order_id_column), eq);
	if (SPI_execute_plan(MovedRowPlan(sql.data, type), &id, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "loyalty: moved order lookup failed");
	if (SPI_processed == 0)
		return NULL;

	map = convert_tuples_by_name(SPI_tuptable->tupdesc, desc);
	found = map ? execute_attr_map_tuple(SPI_tuptable->vals[0], map) : SPI_tuptable->vals[0];
	return SPI_copytuple(found);
}

/* Whether an ALTER TABLE subcommand changes a partition tree or an owner. */
static bool
PartitionSubcommand(const CollectedATSubcmd *sub)
{
	const AlterTableCmd *cmd = (const AlterTableCmd *) sub->parsetree;

	if (!IsA(cmd, AlterTableCmd))
		return false;
	return cmd->subtype == AT_AttachPartition || cmd->subtype == AT_DetachPartition ||
		cmd->subtype == AT_DetachPartitionFinalize || cmd->subtype == AT_ChangeOwner;
}

PG_FUNCTION_INFO_V1(loyalty_partition_ddl_command);
/*
 * Whether a DDL command collected for an event trigger creates, attaches or
 * detaches a partition, or changes a table's owner: the commands after which
 * loyalty.sync_partition_triggers() may have work.  Other ALTER TABLEs (a
 * restore's ADD CONSTRAINT, which comes before the dump's own CREATE
 * TRIGGERs) must not make it create triggers.
 */
Datum
loyalty_partition_ddl_command(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	ListCell   *lc;

	if (cmd->type == SCT_Simple && cmd->parsetree != NULL && IsA(cmd->parsetree, CreateStmt))
		PG_RETURN_BOOL(((CreateStmt *) cmd->parsetree)->partbound != NULL);
	if (cmd->type != SCT_AlterTable)
		PG_RETURN_BOOL(false);
	foreach(lc, cmd->d.alterTable.subcmds)
		if (PartitionSubcommand((CollectedATSubcmd *) lfirst(lc)))
			PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}
