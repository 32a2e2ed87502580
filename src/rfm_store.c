/*
 * rfm_store.c
 *		Stores a scoring pass in loyalty.rfm_score, writing only the members
 *		whose figures changed, and records the pass in loyalty.rfm_pass.
 *
 * The program's stored scores are read, both sides are sorted by member
 * id and merged: new and changed members go to one upsert, members no
 * longer scored are deleted.  Recency in days is not stored (the view
 * loyalty.member_rfm works it out against the pass's time), so a nightly
 * pass rewrites the members who ordered, whose orders left the window or
 * whose score crossed a quintile boundary, not the whole table.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "rfm.h"
#include "rfm_score.h"
#include "spi_util.h"

/* Members per upsert or delete statement, and per NOTICE of progress. */
#define RFM_WRITE_BATCH 50000

static LoyaltyQuery stored_scores = {
	"SELECT member_id, last_order_at, frequency, monetary, rfm, segment"
	"  FROM loyalty.rfm_score WHERE program = $1",
	1, {TEXTOID}
};

static LoyaltyQuery scores_upsert = {
	"INSERT INTO loyalty.rfm_score AS s (program, member_id, last_order_at, frequency, monetary,"
	"                                    rfm, segment)"
	"SELECT $1, u.member_id, u.last_order_at, u.frequency, u.monetary, u.score::loyalty.rfm, u.segment"
	"  FROM unnest($2::text[], $3::timestamptz[], $4::integer[], $5::numeric[], $6::text[], $7::text[])"
	"       AS u(member_id, last_order_at, frequency, monetary, score, segment)"
	" ON CONFLICT (program, member_id) DO UPDATE"
	" SET last_order_at = excluded.last_order_at, frequency = excluded.frequency,"
	"     monetary = excluded.monetary, rfm = excluded.rfm, segment = excluded.segment",
	7, {TEXTOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, INT4ARRAYOID, NUMERICARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID}
};

static LoyaltyQuery scores_delete = {
	"DELETE FROM loyalty.rfm_score WHERE program = $1 AND member_id = ANY ($2)",
	2, {TEXTOID, TEXTARRAYOID}
};

static LoyaltyQuery pass_record = {
	"INSERT INTO loyalty.rfm_pass AS p (program, scored_at, \"window\", members, written)"
	" VALUES ($1, $2, $3, $4, $5)"
	" ON CONFLICT (program) DO UPDATE"
	" SET scored_at = excluded.scored_at, \"window\" = excluded.\"window\","
	"     members = excluded.members, written = excluded.written",
	5, {TEXTOID, TIMESTAMPTZOID, INTERVALOID, INT8OID, INT8OID}
};

/* A member's scores as the last pass stored them. */
typedef struct StoredScore
{
	Datum		member_id;		/* text */
	const char *id;				/* its bytes and length */
	int			id_len;
	TimestampTz last_order_at;
	int32		frequency;
	Datum		monetary;		/* numeric */
	Rfm			rfm;
	Datum		segment;		/* text, 0 when NULL */
} StoredScore;

/* Rows waiting for the next upsert and the next delete. */
typedef struct ScoreWrites
{
	const char *program;
	Datum	   *segments;
	int			n;
	Datum		ids[RFM_WRITE_BATCH];
	Datum		last[RFM_WRITE_BATCH];
	Datum		frequency[RFM_WRITE_BATCH];
	Datum		monetary[RFM_WRITE_BATCH];
	Datum		scores[RFM_WRITE_BATCH];
	Datum		segment[RFM_WRITE_BATCH];
	int			ndeleted;
	Datum		deleted[RFM_WRITE_BATCH];
	int64		written;
} ScoreWrites;

void
RfmIdBytes(Datum member_id, const char **id, int *id_len)
{
	text	   *t = DatumGetTextPP(member_id);

	*id = VARDATA_ANY(t);
	*id_len = VARSIZE_ANY_EXHDR(t);
}

/* Member ids in byte order (any fixed order serves a merge). */
static int
CompareIds(const char *a, int la, const char *b, int lb)
{
	int			c = memcmp(a, b, Min(la, lb));

	return c != 0 ? c : (la > lb) - (la < lb);
}

static int
CompareMembers(const void *a, const void *b)
{
	const RfmMember *ma = *(RfmMember *const *) a;
	const RfmMember *mb = *(RfmMember *const *) b;

	return CompareIds(ma->id, ma->id_len, mb->id, mb->id_len);
}

static int
CompareStored(const void *a, const void *b)
{
	const StoredScore *sa = (const StoredScore *) a;
	const StoredScore *sb = (const StoredScore *) b;

	return CompareIds(sa->id, sa->id_len, sb->id, sb->id_len);
}

static bool
SameText(Datum a, Datum b)
{
	const char *pa,
			   *pb;
	int			la,
				lb;

	RfmIdBytes(a, &pa, &la);
	RfmIdBytes(b, &pb, &lb);
	return la == lb && memcmp(pa, pb, la) == 0;
}

static Datum
SegmentOf(const ScoreWrites *w, const RfmMember *mem)
{
	return w->segments[(mem->r - 1) * 25 + (mem->f - 1) * 5 + (mem->m - 1)];
}

static bool
ScoreChanged(const ScoreWrites *w, const RfmMember *mem, const StoredScore *old)
{
	return old->last_order_at != mem->last_order_at ||
		old->frequency != mem->frequency ||
		old->rfm != RfmMake(mem->r, mem->f, mem->m) ||
		old->segment == (Datum) 0 ||
		!SameText(old->segment, SegmentOf(w, mem)) ||
		!DatumGetBool(DirectFunctionCall2(numeric_eq, old->monetary, mem->monetary));
}

/* The program's stored scores, sorted by member id. */
static StoredScore *
StoredScores(const char *program, int *n)
{
	StoredScore *stored;

	LoyaltyRun(&stored_scores, (Datum[]) {CStringGetTextDatum(program)}, NULL, SPI_OK_SELECT);
	*n = (int) SPI_processed;
	stored = palloc(sizeof(StoredScore) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		stored[i].member_id = LoyaltyGetDatum(i, 1);
		RfmIdBytes(stored[i].member_id, &stored[i].id, &stored[i].id_len);
		stored[i].last_order_at = DatumGetTimestampTz(LoyaltyGetDatum(i, 2));
		stored[i].frequency = LoyaltyGetInt32(i, 3);
		stored[i].monetary = LoyaltyGetDatum(i, 4);
		stored[i].rfm = DatumGetRfm(LoyaltyGetDatum(i, 5));
		stored[i].segment = LoyaltyIsNull(i, 6) ? (Datum) 0 : LoyaltyGetDatum(i, 6);
	}
	qsort(stored, *n, sizeof(StoredScore), CompareStored);
	return stored;
}

static void
FlushWrites(ScoreWrites *w)
{
	Datum		args[7];

	args[0] = CStringGetTextDatum(w->program);
	if (w->n > 0)
	{
		args[1] = LoyaltyArray(w->ids, NULL, w->n, TEXTOID);
		args[2] = LoyaltyArray(w->last, NULL, w->n, TIMESTAMPTZOID);
		args[3] = LoyaltyArray(w->frequency, NULL, w->n, INT4OID);
		args[4] = LoyaltyArray(w->monetary, NULL, w->n, NUMERICOID);
		args[5] = LoyaltyArray(w->scores, NULL, w->n, TEXTOID);
		args[6] = LoyaltyArray(w->segment, NULL, w->n, TEXTOID);
		LoyaltyRun(&scores_upsert, args, NULL, SPI_OK_INSERT);
	}
	if (w->ndeleted > 0)
	{
		args[1] = LoyaltyArray(w->deleted, NULL, w->ndeleted, TEXTOID);
		LoyaltyRun(&scores_delete, args, NULL, SPI_OK_DELETE);
	}
	w->written += w->n + w->ndeleted;
	w->n = 0;
	w->ndeleted = 0;
	CHECK_FOR_INTERRUPTS();
}

static void
WriteScore(ScoreWrites *w, const RfmMember *mem)
{
	int			i = w->n++;

	w->ids[i] = mem->member_id;
	w->last[i] = TimestampTzGetDatum(mem->last_order_at);
	w->frequency[i] = Int32GetDatum(mem->frequency);
	w->monetary[i] = mem->monetary;
	w->scores[i] = CStringGetTextDatum(psprintf("%d%d%d", mem->r, mem->f, mem->m));
	w->segment[i] = SegmentOf(w, mem);
	if (w->n == RFM_WRITE_BATCH)
		FlushWrites(w);
}

static void
DeleteScore(ScoreWrites *w, const StoredScore *old)
{
	w->deleted[w->ndeleted++] = old->member_id;
	if (w->ndeleted == RFM_WRITE_BATCH)
		FlushWrites(w);
}

int64
RfmStore(const char *program, TimestampTz as_of, Interval *window, RfmMember *members, int n,
		 Datum *segments)
{
	ScoreWrites *w = palloc0(sizeof(ScoreWrites));
	RfmMember **by_id = palloc(sizeof(RfmMember *) * Max(n, 1));
	int			nstored;
	StoredScore *stored = StoredScores(program, &nstored);
	int			i = 0,
				j = 0;
	int64		written;
	Datum		args[5];

	w->program = program;
	w->segments = segments;
	for (int k = 0; k < n; k++)
		by_id[k] = &members[k];
	qsort(by_id, n, sizeof(RfmMember *), CompareMembers);

	while (i < n || j < nstored)
	{
		int			c = i >= n ? 1 : j >= nstored ? -1 :
			CompareIds(by_id[i]->id, by_id[i]->id_len, stored[j].id, stored[j].id_len);

		if (c > 0)
		{
			DeleteScore(w, &stored[j++]);	/* no longer scored */
			continue;
		}
		if (c < 0 || ScoreChanged(w, by_id[i], &stored[j]))
			WriteScore(w, by_id[i]);
		if (c == 0)
			j++;
		if (++i % RFM_WRITE_BATCH == 0)
			ereport(NOTICE,
					(errmsg("loyalty: score_rfm %s: %d of %d members compared", program, i, n)));
	}
	FlushWrites(w);
	written = w->written;

	args[0] = CStringGetTextDatum(program);
	args[1] = TimestampTzGetDatum(as_of);
	args[2] = PointerGetDatum(window);
	args[3] = Int64GetDatum(n);
	args[4] = Int64GetDatum(written);
	LoyaltyRun(&pass_record, args, NULL, SPI_OK_INSERT);
	return written;
}
