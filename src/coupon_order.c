/*
 * coupon_order.c
 *		The REPEATABLE READ guard of coupon redemptions on one order_ref.
 *
 * redeem_coupon checks stacking and the cap of an order_ref under the
 * order's advisory lock.  Under READ COMMITTED each check takes a fresh
 * snapshot after the lock, so it sees every committed coupon of the order.
 * Under REPEATABLE READ the transaction's snapshot is older than the lock:
 * a coupon another session committed on the order meanwhile is invisible,
 * and two coupons of one stack group (or past the cap) both went through.
 * Coupons of one campaign conflict on the campaign row anyway; this catches
 * the others: when the latest snapshot sees more active redemptions of the
 * order than the transaction's, it is a serialization failure (40001), as
 * PostgreSQL reports for a row changed since the snapshot.  SERIALIZABLE
 * would catch it too (SSI); it is checked the same way, earlier.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "loyalty.h"

static const char *const ORDER_COUPONS_SQL =
	"SELECT pg_catalog.count(*) FROM loyalty.coupon_redemption r"
	" WHERE r.program OPERATOR(pg_catalog.=) $1 AND r.order_ref OPERATOR(pg_catalog.=) $2"
	" AND r.released_at IS NULL";

/* Active redemptions of the order under a snapshot. */
static int64
OrderCoupons(SPIPlanPtr plan, Datum *values, Snapshot snapshot)
{
	bool		isnull;
	int			rc = SPI_execute_snapshot(plan, values, NULL, snapshot, InvalidSnapshot, true, false, 1);

	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "loyalty: counting the coupons of an order failed: %d", rc);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

PG_FUNCTION_INFO_V1(loyalty_check_coupon_order_snapshot);
/*
 * loyalty.check_coupon_order_snapshot(program, order_ref): 40001 when a
 * transaction-snapshot transaction cannot see a coupon committed on the
 * order since its snapshot.  Call it holding the order's lock.
 */
Datum
loyalty_check_coupon_order_snapshot(PG_FUNCTION_ARGS)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	SPIPlanPtr	plan;
	int64		seen;
	int64		latest;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || !IsolationUsesXactSnapshot())
		PG_RETURN_VOID();
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	SPI_connect();
	plan = SPI_prepare(ORDER_COUPONS_SQL, 2, argtypes);
	if (plan == NULL)
		elog(ERROR, "loyalty: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	seen = OrderCoupons(plan, values, GetTransactionSnapshot());
	latest = OrderCoupons(plan, values, GetLatestSnapshot());
	SPI_finish();
	if (latest != seen)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent coupon redemption on order_ref \"%s\"",
						text_to_cstring(PG_GETARG_TEXT_PP(1))),
				 errdetail("Another transaction changed the coupons of the order after this transaction's snapshot."),
				 errhint("Retry the transaction; stacking and the discount cap are checked against every coupon of the order.")));
	PG_RETURN_VOID();
}
