/*
 * order_batch.c
 *		Newly inserted orders, earned in one set-based statement.
 *
 * The INSERT side of the accrual trigger is a statement trigger: it works
 * out each new row's points in C (OrderInsertTarget, the same rule as
 * every other path), collects them here, and writes them all at once:
 * order states, ledger rows, lots, and one upsert per member (in member
 * order, so concurrent batches lock members in the same order).  A
 * repeated id within the batch counts once.  Rows inserted already refunded
 * take the one-by-one path (OrderEventApply), which reverses at once; so do,
 * after the flush, rows whose id loyalty knew already (ON CONFLICT DO
 * NOTHING: a closed order opens again, an open one earns nothing) and rows
 * of a member the batch would take above LOYALTY_MAX_BALANCE (the one-row
 * path keeps them in the dead letters): all rare, so the batch stays one
 * set-based statement.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "credit.h"
#include "order_batch.h"
#include "spi_util.h"

static LoyaltyQuery batch_insert = {
	"WITH input AS ("
	"  SELECT DISTINCT ON (u.order_id) u.*"
	"    FROM unnest($2::pg_catalog.text[], $3::pg_catalog.text[], $4::numeric[], $5::pg_catalog.text[], $6::numeric[], $7::pg_catalog.int8[],"
	"                $8::numeric[], $9::pg_catalog.bool[], $10::pg_catalog.timestamptz[], $11::pg_catalog.timestamptz[],"
	"                $12::pg_catalog.timestamptz[], $13::numeric[])"
	"         WITH ORDINALITY AS u(order_id, member_id, amount, currency, fx_rate, points, refunded,"
	"                              closed, ordered_at, available_at, expires_at, multiplier, ord)"
	"   ORDER BY u.order_id, u.ord),"
	" full_member AS MATERIALIZED ("
	"  SELECT b.member_id"
	"    FROM (SELECT i.member_id, pg_catalog.sum(i.points) AS points FROM input i"
	"           WHERE i.member_id IS NOT NULL GROUP BY i.member_id) b"
	"    JOIN loyalty.member m ON m.program OPERATOR(pg_catalog.=) $1"
	"                         AND m.member_id OPERATOR(pg_catalog.=) b.member_id"
	"   WHERE pg_catalog.int8larger(m.balance, m.lifetime_earned)"
	"         OPERATOR(pg_catalog.>) ($14 OPERATOR(pg_catalog.-) b.points)),"
	" s AS (INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, currency, fx_rate,"
	"         points, refunded_amount, reversed_target, earned_total, closed, ordered_at, multiplier)"
	"       SELECT $1, order_id, member_id, amount, currency, fx_rate, points, coalesce(refunded, 0),"
	"              0, points, closed, ordered_at, multiplier"
	"         FROM input i"
	"        WHERE NOT EXISTS (SELECT 1 FROM full_member f WHERE f.member_id OPERATOR(pg_catalog.=) i.member_id)"
	"        ORDER BY ord"
	"       ON CONFLICT DO NOTHING RETURNING order_id),"
	" sup AS (" LETTERS_SUPERSEDE
	"   WHERE d.program OPERATOR(pg_catalog.=) $1 AND d.resolved_at IS NULL"
	"     AND d.order_id OPERATOR(pg_catalog.=) ANY (SELECT s.order_id FROM s)),"
	" earned AS MATERIALIZED (SELECT i.* FROM input i"
	"                           JOIN s ON i.order_id OPERATOR(pg_catalog.=) s.order_id"
	"                          WHERE i.points OPERATOR(pg_catalog.>) 0),"
	" credit AS MATERIALIZED ("
	"   SELECT " CREDIT_NEXT_ID " AS id, x.member_id, 'earn'::pg_catalog.text AS kind, x.points,"
	"          NULL::pg_catalog.text AS ref, x.order_id, NULL::pg_catalog.text AS reason,"
	"          x.ordered_at AS occurred_at, x.available_at, x.expires_at"
	"     FROM (SELECT * FROM earned ORDER BY ord) x),"
	CREDIT_WRITE
	" SELECT pg_catalog.count(*),"
	"        CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.<) (SELECT pg_catalog.count(*) FROM input) THEN"
	"          ARRAY(SELECT i.ord::pg_catalog.int4 FROM input i"
	"                 WHERE NOT EXISTS (SELECT 1 FROM s WHERE s.order_id OPERATOR(pg_catalog.=) i.order_id)"
	"                 ORDER BY i.ord) END"
	"   FROM s",
	14, {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, NUMERICARRAYOID,
	INT8ARRAYOID, NUMERICARRAYOID, BOOLARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
	TIMESTAMPTZARRAYOID, NUMERICARRAYOID, INT8OID}
};

#define BATCH_ALLOC(type) palloc(sizeof(type) * ORDER_BATCH_SIZE)

OrderBatch *
OrderBatchCreate(void)
{
	OrderBatch *b = palloc0(sizeof(OrderBatch));

	b->order_id = BATCH_ALLOC(Datum);
	b->member_id = BATCH_ALLOC(Datum);
	b->member_null = BATCH_ALLOC(bool);
	b->amount = BATCH_ALLOC(Datum);
	b->amount_null = BATCH_ALLOC(bool);
	b->currency = BATCH_ALLOC(Datum);
	b->currency_null = BATCH_ALLOC(bool);
	b->rate = BATCH_ALLOC(Datum);
	b->rate_null = BATCH_ALLOC(bool);
	b->points = BATCH_ALLOC(Datum);
	b->refunded = BATCH_ALLOC(Datum);
	b->refunded_null = BATCH_ALLOC(bool);
	b->closed = BATCH_ALLOC(Datum);
	b->ordered_at = BATCH_ALLOC(Datum);
	b->available_at = BATCH_ALLOC(Datum);
	b->expires_at = BATCH_ALLOC(Datum);
	b->expires_null = BATCH_ALLOC(bool);
	b->multiplier = BATCH_ALLOC(Datum);
	b->status = BATCH_ALLOC(Datum);
	b->status_null = BATCH_ALLOC(bool);
	b->replay = BATCH_ALLOC(int);
	return b;
}

/* Adds a new order; the caller flushes when n reaches ORDER_BATCH_SIZE. */
void
OrderBatchAdd(OrderBatch *b, const LoyaltyProgram *prog, const OrderRow *row,
			  const OrderTarget *target)
{
	int			i = b->n++;
	TimestampTz expires_at = 0;

	Assert(i < ORDER_BATCH_SIZE);
	b->order_id[i] = CStringGetTextDatum(row->order_id);
	b->member_null[i] = target->member_id == NULL;
	b->member_id[i] = b->member_null[i] ? (Datum) 0 : CStringGetTextDatum(target->member_id);
	b->amount_null[i] = !row->has_amount;
	b->amount[i] = row->amount;
	b->currency_null[i] = row->currency == NULL;
	b->currency[i] = b->currency_null[i] ? (Datum) 0 : CStringGetTextDatum(row->currency);
	b->rate_null[i] = target->rate == (Datum) 0;
	b->rate[i] = target->rate;
	b->points[i] = Int64GetDatum(target->points);
	b->refunded_null[i] = !row->has_refunded;
	b->refunded[i] = row->refunded;
	b->closed[i] = BoolGetDatum(target->closed);
	b->ordered_at[i] = TimestampTzGetDatum(target->ordered_at);
	b->available_at[i] = TimestampTzGetDatum(LoyaltyAvailableAt(prog, target->ordered_at));
	b->expires_null[i] = !LoyaltyExpiresAt(prog, target->ordered_at, &expires_at);
	b->expires_at[i] = TimestampTzGetDatum(expires_at);
	b->multiplier[i] = target->multiplier;
	b->status_null[i] = row->status == NULL;
	b->status[i] = b->status_null[i] ? (Datum) 0 : CStringGetTextDatum(row->status);
}

/* Row i of the batch, as the trigger read it (for the one-row path). */
void
OrderBatchRow(const OrderBatch *b, int i, OrderRow *row)
{
	memset(row, 0, sizeof(*row));
	row->order_id = TextDatumGetCString(b->order_id[i]);
	row->member_id = b->member_null[i] ? NULL : TextDatumGetCString(b->member_id[i]);
	row->has_amount = !b->amount_null[i];
	row->amount = b->amount[i];
	row->currency = b->currency_null[i] ? NULL : TextDatumGetCString(b->currency[i]);
	row->status = b->status_null[i] ? NULL : TextDatumGetCString(b->status[i]);
	row->has_refunded = !b->refunded_null[i];
	row->refunded = b->refunded[i];
	row->has_time = true;
	row->ordered_at = DatumGetTimestampTz(b->ordered_at[i]);
}

/*
 * The batch as arrays: $1 the program, $2..$12 order id, member, amount,
 * currency, rate, points, refunded, closed, ordered at, available at,
 * expires at; $13 the multipliers.  args has room for ORDER_BATCH_NARGS.
 */
void
OrderBatchArgs(const OrderBatch *b, const LoyaltyProgram *prog, Datum *args)
{
	args[0] = CStringGetTextDatum(prog->code);
	args[1] = LoyaltyArray(b->order_id, NULL, b->n, TEXTOID);
	args[2] = LoyaltyArray(b->member_id, b->member_null, b->n, TEXTOID);
	args[3] = LoyaltyArray(b->amount, b->amount_null, b->n, NUMERICOID);
	args[4] = LoyaltyArray(b->currency, b->currency_null, b->n, TEXTOID);
	args[5] = LoyaltyArray(b->rate, b->rate_null, b->n, NUMERICOID);
	args[6] = LoyaltyArray(b->points, NULL, b->n, INT8OID);
	args[7] = LoyaltyArray(b->refunded, b->refunded_null, b->n, NUMERICOID);
	args[8] = LoyaltyArray(b->closed, NULL, b->n, BOOLOID);
	args[9] = LoyaltyArray(b->ordered_at, NULL, b->n, TIMESTAMPTZOID);
	args[10] = LoyaltyArray(b->available_at, NULL, b->n, TIMESTAMPTZOID);
	args[11] = LoyaltyArray(b->expires_at, b->expires_null, b->n, TIMESTAMPTZOID);
	args[12] = LoyaltyArray(b->multiplier, NULL, b->n, NUMERICOID);
}

/*
 * Writes the batch and empties it; returns how many orders were recorded.
 * Sets replay to the rows it did not write (a known id, a member without
 * room): the caller passes them to the one-row path before adding more.
 */
int64
OrderBatchFlush(OrderBatch *b, const LoyaltyProgram *prog)
{
	Datum		args[ORDER_BATCH_NARGS + 1];
	int64		recorded;

	b->nreplay = 0;
	if (b->n == 0)
		return 0;
	OrderBatchArgs(b, prog, args);
	args[ORDER_BATCH_NARGS] = Int64GetDatum(LOYALTY_MAX_BALANCE);
	LoyaltyRun(&batch_insert, args, NULL, SPI_OK_SELECT);
	recorded = LoyaltyGetInt64(0, 1);
	if (!LoyaltyIsNull(0, 2))
	{
		Datum	   *ord;
		bool	   *ord_null;
		int			n;

		deconstruct_array(DatumGetArrayTypeP(LoyaltyGetDatum(0, 2)), INT4OID, sizeof(int32),
						  true, TYPALIGN_INT, &ord, &ord_null, &n);
		for (int k = 0; k < n && k < ORDER_BATCH_SIZE; k++)
			b->replay[b->nreplay++] = DatumGetInt32(ord[k]) - 1;
	}
	SPI_freetuptable(SPI_tuptable);
	b->n = 0;
	return recorded;
}
