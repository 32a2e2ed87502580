/*
 * rfm_store.c
 *		Stores a scoring pass in loyalty.rfm_score, writing only the members
 *		whose figures changed, and records the pass in loyalty.rfm_pass.
 *
 * The scored members go into a hash table by member id; the program's
 * stored scores are streamed past it and each is looked up: changed
 * members go to one upsert, members no longer scored are deleted, and the
 * members not found among the stored are new (upserted too).
 * Recency in days is not stored (the view loyalty.member_rfm works it out
 * against the pass's time), so a nightly pass rewrites the members who
 * ordered, whose orders left the window or whose score crossed a quintile
 * boundary, not the whole table.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "rfm.h"
#include "rfm_score.h"
#include "spi_util.h"

/* Members per upsert or delete statement, and per NOTICE of progress. */
#define RFM_WRITE_BATCH 50000

static LoyaltyQuery stored_scores = {
	"SELECT member_id, last_order_at, frequency, monetary, rfm, segment"
	"  FROM loyalty.rfm_score WHERE program OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}
};

/* Its columns. */
enum
{
	S_MEMBER, S_LAST_ORDER, S_FREQUENCY, S_MONETARY, S_RFM, S_SEGMENT, S_COLUMNS
};

static LoyaltyQuery scores_upsert = {
	"INSERT INTO loyalty.rfm_score AS s (program, member_id, last_order_at, frequency, monetary,"
	"                                    rfm, segment)"
	"SELECT $1, u.member_id, u.last_order_at, u.frequency, u.monetary, u.score::loyalty.rfm, u.segment"
	"  FROM unnest($2::pg_catalog.text[], $3::pg_catalog.timestamptz[], $4::integer[], $5::numeric[], $6::pg_catalog.text[], $7::pg_catalog.text[])"
	"       AS u(member_id, last_order_at, frequency, monetary, score, segment)"
	" ON CONFLICT (program, member_id) DO UPDATE"
	" SET last_order_at = excluded.last_order_at, frequency = excluded.frequency,"
	"     monetary = excluded.monetary, rfm = excluded.rfm, segment = excluded.segment",
	7, {TEXTOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, INT4ARRAYOID, NUMERICARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID}
};

static LoyaltyQuery scores_delete = {
	"DELETE FROM loyalty.rfm_score"
	" WHERE program OPERATOR(pg_catalog.=) $1 AND member_id OPERATOR(pg_catalog.=) ANY ($2)",
	2, {TEXTOID, TEXTARRAYOID}
};

static LoyaltyQuery pass_record = {
	"INSERT INTO loyalty.rfm_pass AS p (program, scored_at, lookback, members, written)"
	" VALUES ($1, $2, $3, $4, $5)"
	" ON CONFLICT (program) DO UPDATE"
	" SET scored_at = excluded.scored_at, lookback = excluded.lookback,"
	"     members = excluded.members, written = excluded.written",
	5, {TEXTOID, TIMESTAMPTZOID, INTERVALOID, INT8OID, INT8OID}
};

/* A member id's bytes. */
typedef struct MemberKey
{
	const char *id;
	int			len;
} MemberKey;

/* A member's scores as the last pass stored them (values of a streamed row). */
typedef struct StoredScore
{
	Datum		member_id;		/* text */
	TimestampTz last_order_at;
	int32		frequency;
	Datum		monetary;		/* numeric */
	Rfm			rfm;
	Datum		segment;		/* text, 0 when NULL */
} StoredScore;

/* A hash table entry: a scored member's id and place in the members array. */
typedef struct MemberEntry
{
	MemberKey	key;
	uint32		hash;
	int32		member;
	char		status;			/* for simplehash */
} MemberEntry;

#define SH_PREFIX members
#define SH_ELEMENT_TYPE MemberEntry
#define SH_KEY_TYPE MemberKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k).id, (k).len)
#define SH_EQUAL(tb, a, b) ((a).len == (b).len && memcmp((a).id, (b).id, (a).len) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

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

static Datum
SegmentOf(const ScoreWrites *w, const RfmMember *mem)
{
	return w->segments[(mem->r - 1) * 25 + (mem->f - 1) * 5 + (mem->m - 1)];
}

static MemberKey
KeyOf(Datum member_id)
{
	text	   *t = DatumGetTextPP(member_id);
	MemberKey	key = {VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)};

	return key;
}

static bool
ScoreChanged(const ScoreWrites *w, const RfmMember *mem, const StoredScore *old)
{
	return old->last_order_at != mem->last_order_at ||
		old->frequency != mem->frequency ||
		old->rfm != RfmMake(mem->r, mem->f, mem->m) ||
		old->segment == (Datum) 0 ||
		!datum_image_eq(old->segment, SegmentOf(w, mem), false, -1) ||
		!DatumGetBool(DirectFunctionCall2(numeric_eq, old->monetary, mem->monetary));
}

/* The members by id. */
static members_hash *
MembersById(const RfmMember *members, int n)
{
	members_hash *by_id = members_create(CurrentMemoryContext, Max(n, 16), NULL);

	for (int i = 0; i < n; i++)
	{
		bool		found;

		members_insert(by_id, KeyOf(members[i].member_id), &found)->member = i;
	}
	return by_id;
}

/* What the stored scores tell, gathered while they are read. */
typedef struct StoredCompare
{
	ScoreWrites *w;
	const RfmMember *members;
	members_hash *by_id;
	bool	   *found;			/* per member: it has stored scores */
	int		   *changed;		/* members whose scores changed */
	int			nchanged;
	Datum	   *dropped;		/* stored members not scored now (ids copied) */
	int			ndropped;
	int			dropped_size;
	int64		compared;
} StoredCompare;

/* A row of stored_scores, compared with the member's new scores. */
static void
CompareStored(const Datum *v, const bool *isnull, MemoryContext keep, void *arg)
{
	StoredCompare *c = (StoredCompare *) arg;
	StoredScore old;
	MemberEntry *e;

	old.member_id = v[S_MEMBER];
	old.last_order_at = DatumGetTimestampTz(v[S_LAST_ORDER]);
	old.frequency = DatumGetInt32(v[S_FREQUENCY]);
	old.monetary = v[S_MONETARY];
	old.rfm = DatumGetRfm(v[S_RFM]);
	old.segment = isnull[S_SEGMENT] ? (Datum) 0 : v[S_SEGMENT];
	e = members_lookup(c->by_id, KeyOf(old.member_id));
	if (e == NULL)
	{
		MemoryContext row = MemoryContextSwitchTo(keep);

		if (c->ndropped == c->dropped_size)
		{
			c->dropped_size *= 2;
			c->dropped = repalloc_huge(c->dropped, sizeof(Datum) * c->dropped_size);
		}
		c->dropped[c->ndropped++] = datumCopy(old.member_id, false, -1);
		MemoryContextSwitchTo(row);
	}
	else
	{
		c->found[e->member] = true;
		if (ScoreChanged(c->w, &c->members[e->member], &old))
			c->changed[c->nchanged++] = e->member;
	}
	if (++c->compared % RFM_WRITE_BATCH == 0)
	{
		ereport(NOTICE,
				(errmsg("loyalty: score_rfm %s: " INT64_FORMAT " stored scores compared",
						c->w->program, c->compared)));
		CHECK_FOR_INTERRUPTS();
	}
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
DeleteScore(ScoreWrites *w, Datum member_id)
{
	w->deleted[w->ndeleted++] = member_id;
	if (w->ndeleted == RFM_WRITE_BATCH)
		FlushWrites(w);
}

int64
RfmStore(const char *program, TimestampTz as_of, Interval *window, const RfmMember *members, int n,
		 Datum *segments)
{
	ScoreWrites *w = palloc0(sizeof(ScoreWrites));
	StoredCompare c = {w, members, MembersById(members, n), palloc0(sizeof(bool) * Max(n, 1)),
	palloc(sizeof(int) * Max(n, 1)), 0, palloc(sizeof(Datum) * 1024), 0, 1024, 0};
	int64		written;
	Datum		args[5];

	w->program = program;
	w->segments = segments;
	LoyaltyStream(&stored_scores, (Datum[]) {CStringGetTextDatum(program)}, NULL, CompareStored, &c);
	members_destroy(c.by_id);
	for (int i = 0; i < c.nchanged; i++)
		WriteScore(w, &members[c.changed[i]]);
	for (int i = 0; i < n; i++)
		if (!c.found[i])
			WriteScore(w, &members[i]);	/* new */
	for (int i = 0; i < c.ndropped; i++)
		DeleteScore(w, c.dropped[i]);	/* no longer scored */
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
