/*
 * fraud_fingerprint.c
 *		Who shares a device, payment card, shipping address, IP, email or
 *		phone: the shared_fingerprint rule, and the links coupon_farming and
 *		referral_ring follow.
 *
 * The orders arrive sorted by member, so each member gets a number once
 * and every order signal goes into one hash table keyed by the signal's
 * hash (its first 8 bytes, mixed with the kind: the hashes are keyed
 * HMACs, already uniform): an entry holds the one member seen with it, or
 * points to a "share" listing every member (a member's repeats are the
 * last one listed).  Only shared values (two members or more) keep their
 * full hash and member list; an entry costs 16 bytes.
 *
 * Contacts (email, phone) are read first, sorted by hash, so their shares
 * need no table.  Orders of the members a rule flags for a shared value
 * are looked up afterwards by the flagged hashes alone.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"

#include "fraud.h"
#include "spi_util.h"

/* Members listed in a flag's evidence besides the count. */
#define FRAUD_EVIDENCE_MEMBERS 20

/* A value used by two members or more. */
typedef struct FraudShare
{
	uint8		hash[FRAUD_HASH_LEN];
	FraudKind	kind;
	int32		n;
	int32		size;
	int32	   *members;		/* order kinds: member numbers, ascending */
	char	  **names;			/* member ids (contacts: from the start) */
} FraudShare;

/* A signal value in the table: its member, or -(share + 1). */
typedef struct PrintEntry
{
	uint64		key;
	int32		who;
	char		status;
} PrintEntry;

#define SH_PREFIX prints
#define SH_ELEMENT_TYPE PrintEntry
#define SH_KEY_TYPE uint64
#define SH_KEY key
#define SH_HASH_KEY(tb, k) ((uint32) ((k) ^ ((k) >> 32)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* What a member id leads to: its shares (and the orders it used each with). */
typedef struct MemberShares
{
	int32		n;
	int32		size;
	int32	   *share;
	List	  **orders;			/* per share: order ids (char *), flagged shares */
	int64	   *points;			/* per share: their points not reversed */
} MemberShares;

typedef struct NameEntry
{
	const char *name;
	uint32		hash;
	int32		value;			/* index into FraudPrints.by_member */
	char		status;
} NameEntry;

#define SH_PREFIX names
#define SH_ELEMENT_TYPE NameEntry
#define SH_KEY_TYPE const char *
#define SH_KEY name
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k), strlen(k))
#define SH_EQUAL(tb, a, b) (strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct FraudPrints
{
	MemoryContext cxt;
	prints_hash *table;
	FraudShare *shares;
	int32		nshares;
	int32		shares_size;
	/* member numbers: ids one after another, NUL-terminated */
	char	   *ids;
	int64		ids_len;
	int64		ids_size;
	int64	   *id_at;
	int32		nmembers;
	int32		members_size;
	/* members of contact shares, with their orders in the period */
	names_hash *contact_members;
	List	  **contact_orders;
	int64	   *contact_points;
	/* after the orders: member id -> shares */
	names_hash *by_name;
	MemberShares *by_member;
	int32		nby_member;
} FraudPrints;

static LoyaltyQuery contacts = {
	"SELECT c.kind OPERATOR(pg_catalog.=) 'email', c.hash, c.member_id"
	"  FROM loyalty.member_contact c"
	" WHERE c.program OPERATOR(pg_catalog.=) $1"
	"   AND NOT (c.member_id OPERATOR(pg_catalog.=) ANY (" FRAUD_EXCLUDED "))"
	" ORDER BY c.kind, c.hash, c.member_id COLLATE pg_catalog.\"C\"",
	1, {TEXTOID}
};

/*
 * The orders with a flagged shared value, from order_signal alone (its
 * member is the order's, as the sweep read it; the points come after, by
 * order id, for these orders only).
 */
static LoyaltyQuery flagged_orders = {
	"SELECT s.member_id, s.order_id, s.device_id, s.payment_fingerprint, s.shipping_address, s.ip"
	"  FROM loyalty.order_signal s"
	" WHERE s.program OPERATOR(pg_catalog.=) $1"
	"   AND s.ordered_at OPERATOR(pg_catalog.>=) $2 AND s.ordered_at OPERATOR(pg_catalog.<=) $3"
	"   AND (s.device_id OPERATOR(pg_catalog.=) ANY ($4) OR s.payment_fingerprint OPERATOR(pg_catalog.=) ANY ($5)"
	"        OR s.shipping_address OPERATOR(pg_catalog.=) ANY ($6) OR s.ip OPERATOR(pg_catalog.=) ANY ($7))"
	" ORDER BY s.ordered_at, s.order_id COLLATE pg_catalog.\"C\"",
	7, {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, BYTEAARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID,
	BYTEAARRAYOID}, true
};

/* What is left of the points of some orders (those of flagged shares). */
static LoyaltyQuery points_left = {
	"SELECT o.order_id, o.points OPERATOR(pg_catalog.-) o.reversed_target"
	"  FROM loyalty.order_earning o"
	" WHERE o.program OPERATOR(pg_catalog.=) $1 AND o.order_id OPERATOR(pg_catalog.=) ANY ($2)",
	2, {TEXTOID, TEXTARRAYOID}, true
};

static uint64
KeyOf(FraudKind kind, const uint8 *hash)
{
	uint64		key;

	memcpy(&key, hash, sizeof(key));
	return key ^ ((uint64) (kind + 1) * UINT64CONST(0x9E3779B97F4A7C15));
}

void
FraudPrintsInit(FraudRun *run)
{
	FraudPrints *p = palloc0(sizeof(FraudPrints));

	p->cxt = CurrentMemoryContext;
	p->table = prints_create(p->cxt, 64 * 1024, NULL);
	p->shares_size = 1024;
	p->shares = palloc(sizeof(FraudShare) * p->shares_size);
	p->ids_size = 1024 * 1024;
	p->ids = palloc(p->ids_size);
	p->members_size = 64 * 1024;
	p->id_at = palloc(sizeof(int64) * p->members_size);
	p->contact_members = names_create(p->cxt, 64, NULL);
	run->prints = p;
}

static int32
NewShare(FraudPrints *p, FraudKind kind, const uint8 *hash)
{
	FraudShare *s;

	if (p->nshares == p->shares_size)
	{
		p->shares_size *= 2;
		p->shares = repalloc_huge(p->shares, sizeof(FraudShare) * p->shares_size);
	}
	s = &p->shares[p->nshares];
	memcpy(s->hash, hash, FRAUD_HASH_LEN);
	s->kind = kind;
	s->n = 0;
	s->size = 4;
	s->members = MemoryContextAlloc(p->cxt, sizeof(int32) * s->size);
	s->names = NULL;
	return p->nshares++;
}

static void
ShareAdd(FraudPrints *p, FraudShare *s, int32 member, char *name)
{
	if (s->n == s->size)
	{
		s->size *= 2;
		s->members = repalloc_huge(s->members, sizeof(int32) * s->size);
		if (s->names)
			s->names = repalloc_huge(s->names, sizeof(char *) * s->size);
	}
	s->members[s->n] = member;
	if (s->names)
		s->names[s->n] = name;
	s->n++;
}

/* The next member's number (members come one after another). */
int32
FraudPrintsMember(FraudRun *run, const char *member_id, int len)
{
	FraudPrints *p = run->prints;

	if (p->nmembers == p->members_size)
	{
		p->members_size *= 2;
		p->id_at = repalloc_huge(p->id_at, sizeof(int64) * p->members_size);
	}
	while (p->ids_len + len + 1 > p->ids_size)
	{
		p->ids_size *= 2;
		p->ids = repalloc_huge(p->ids, p->ids_size);
	}
	memcpy(p->ids + p->ids_len, member_id, len);
	p->ids[p->ids_len + len] = '\0';
	p->id_at[p->nmembers] = p->ids_len;
	p->ids_len += len + 1;
	return p->nmembers++;
}

static char *
MemberName(FraudPrints *p, int32 member)
{
	return p->ids + p->id_at[member];
}

/* An order's signal value of a kind, used by member (the current one). */
void
FraudPrintsAddOrder(FraudRun *run, int32 member, FraudKind kind, const uint8 *hash)
{
	FraudPrints *p = run->prints;
	bool		found;
	PrintEntry *e = prints_insert(p->table, KeyOf(kind, hash), &found);
	FraudShare *s;

	if (!found)
	{
		e->who = member;
		return;
	}
	if (e->who >= 0)
	{
		int32		first = e->who;
		int32		id;

		if (first == member)
			return;
		id = NewShare(p, kind, hash);
		ShareAdd(p, &p->shares[id], first, NULL);
		ShareAdd(p, &p->shares[id], member, NULL);
		e->who = -(id + 1);
		return;
	}
	s = &p->shares[-(e->who + 1)];
	if (s->members[s->n - 1] != member)
		ShareAdd(p, s, member, NULL);
}

/* Contacts of one hash, read so far. */
typedef struct ContactGroup
{
	FraudRun   *run;
	bool		email;
	uint8		hash[FRAUD_HASH_LEN];
	int			n;
	int			size;
	char	  **names;
} ContactGroup;

/* A group of two members or more becomes a share. */
static void
ContactGroupEnd(ContactGroup *g)
{
	FraudPrints *p = g->run->prints;
	FraudShare *s;

	if (g->n >= 2)
	{
		s = &p->shares[NewShare(p, g->email ? FK_EMAIL : FK_PHONE, g->hash)];
		s->names = MemoryContextAlloc(p->cxt, sizeof(char *) * s->size);
		for (int i = 0; i < g->n; i++)
			ShareAdd(p, s, -1, g->names[i]);
	}
	else if (g->n == 1)
		pfree(g->names[0]);
	g->n = 0;
}

static void
ContactRow(const Datum *v, const bool *isnull, MemoryContext keep, void *arg)
{
	ContactGroup *g = arg;
	bool		email = DatumGetBool(v[0]);
	bytea	   *hash = DatumGetByteaPP(v[1]);

	if (VARSIZE_ANY_EXHDR(hash) != FRAUD_HASH_LEN)
		return;					/* not a signal hash: matches nothing */
	if (g->n > 0 && (email != g->email || memcmp(g->hash, VARDATA_ANY(hash), FRAUD_HASH_LEN) != 0))
		ContactGroupEnd(g);
	if (g->n == 0)
	{
		g->email = email;
		memcpy(g->hash, VARDATA_ANY(hash), FRAUD_HASH_LEN);
	}
	if (g->n == g->size)
	{
		g->size *= 2;
		g->names = repalloc(g->names, sizeof(char *) * g->size);
	}
	g->names[g->n++] = MemoryContextStrdup(keep, TextDatumGetCString(v[2]));
}

/*
 * Reads the program's contacts, sorted by hash: each email or phone of two
 * members or more becomes a share.  The members of those the
 * shared_fingerprint rule flags are remembered, so the order sweep keeps
 * their orders.
 */
void
FraudLoadContacts(FraudRun *run)
{
	FraudPrints *p = run->prints;
	const FraudRule *sf = &run->rules[FR_SHARED_FINGERPRINT];
	ContactGroup g = {run, false, {0}, 0, 16, palloc(sizeof(char *) * 16)};
	int32		nmembers = 0;

	LoyaltyStream(&contacts, (Datum[]) {CStringGetTextDatum(run->program)}, NULL, ContactRow, &g);
	ContactGroupEnd(&g);
	if (!sf->enabled)
		return;
	for (int32 id = 0; id < p->nshares; id++)
	{
		FraudShare *s = &p->shares[id];

		if (!sf->kinds[s->kind] || s->n < sf->contact_members)
			continue;
		for (int i = 0; i < s->n; i++)
		{
			bool		found;
			NameEntry  *e = names_insert(p->contact_members, s->names[i], &found);

			if (!found)
				e->value = nmembers++;
		}
	}
	p->contact_orders = palloc0(sizeof(List *) * Max(nmembers, 1));
	p->contact_points = palloc0(sizeof(int64) * Max(nmembers, 1));
}

/* Keeps the orders of a member of a flagged contact share. */
void
FraudPrintsMemberOrders(FraudRun *run, const char *member_id, const FraudOrder *orders, int n)
{
	FraudPrints *p = run->prints;
	NameEntry  *e;
	MemoryContext old;

	if (p->contact_members->members == 0 ||
		(e = names_lookup(p->contact_members, member_id)) == NULL)
		return;
	old = MemoryContextSwitchTo(p->cxt);
	for (int i = 0; i < n; i++)
	{
		p->contact_orders[e->value] = lappend(p->contact_orders[e->value], pstrdup(orders[i].order_id));
		p->contact_points[e->value] += orders[i].points_left;
	}
	MemoryContextSwitchTo(old);
}

/*
 * Indexes the shares by member id (order shares get their members' ids
 * here), for the link rules and the evidence of flagged shares.
 */
void
FraudPrintsIndexMembers(FraudRun *run)
{
	FraudPrints *p = run->prints;
	int32		size = 1024;

	p->by_name = names_create(p->cxt, 1024, NULL);
	p->by_member = palloc(sizeof(MemberShares) * size);
	for (int32 id = 0; id < p->nshares; id++)
	{
		FraudShare *s = &p->shares[id];

		if (s->names == NULL)
		{
			s->names = MemoryContextAlloc(p->cxt, sizeof(char *) * s->size);
			for (int i = 0; i < s->n; i++)
				s->names[i] = MemberName(p, s->members[i]);
		}
		for (int i = 0; i < s->n; i++)
		{
			bool		found;
			NameEntry  *e = names_insert(p->by_name, s->names[i], &found);
			MemberShares *m;

			if (!found)
			{
				if (p->nby_member == size)
				{
					size *= 2;
					p->by_member = repalloc_huge(p->by_member, sizeof(MemberShares) * size);
				}
				e->value = p->nby_member++;
				m = &p->by_member[e->value];
				m->n = 0;
				m->size = 4;
				m->share = palloc(sizeof(int32) * m->size);
				m->orders = palloc0(sizeof(List *) * m->size);
				m->points = palloc0(sizeof(int64) * m->size);
			}
			m = &p->by_member[e->value];
			if (m->n == m->size)
			{
				m->size *= 2;
				m->share = repalloc(m->share, sizeof(int32) * m->size);
				m->orders = repalloc(m->orders, sizeof(List *) * m->size);
				m->points = repalloc(m->points, sizeof(int64) * m->size);
				for (int k = m->n; k < m->size; k++)
				{
					m->orders[k] = NIL;
					m->points[k] = 0;
				}
			}
			m->share[m->n++] = id;
		}
	}
}

/* The shares of a member (ids), NULL when it shares nothing. */
const int32 *
FraudPrintsOfMember(FraudRun *run, const char *member_id, int *n)
{
	FraudPrints *p = run->prints;
	NameEntry  *e = names_lookup(p->by_name, member_id);

	*n = e ? p->by_member[e->value].n : 0;
	return e ? p->by_member[e->value].share : NULL;
}

/* Whether a share links members for coupon_farming and referral_ring. */
bool
FraudShareLinks(FraudRun *run, int32 id)
{
	return run->prints->shares[id].kind != FK_IP;
}

int32
FraudShareCount(FraudRun *run)
{
	return run->prints->nshares;
}

/* Whether two members share a device, card, address, email or phone. */
bool
FraudMembersShare(FraudRun *run, const char *a, const char *b)
{
	int			na,
				nb;
	const int32 *sa = FraudPrintsOfMember(run, a, &na);
	const int32 *sb = FraudPrintsOfMember(run, b, &nb);

	for (int i = 0; i < na; i++)
		for (int j = 0; j < nb; j++)
			if (sa[i] == sb[j] && FraudShareLinks(run, sa[i]))
				return true;
	return false;
}

/* Whether the shared_fingerprint rule flags the members of a share. */
static bool
ShareFlagged(const FraudRun *run, const FraudShare *s)
{
	const FraudRule *sf = &run->rules[FR_SHARED_FINGERPRINT];

	return sf->enabled && sf->kinds[s->kind] &&
		s->n >= (s->kind >= FK_EMAIL ? sf->contact_members : sf->members);
}

/* The orders of flagged order shares, each kept with its member's share. */
typedef struct EvidenceReader
{
	FraudRun   *run;
	int64		rows;
} EvidenceReader;

static void
EvidenceRow(const Datum *v, const bool *isnull, MemoryContext keep, void *arg)
{
	EvidenceReader *r = arg;
	FraudPrints *p = r->run->prints;
	NameEntry  *e;
	MemberShares *m;

	if (isnull[0] || (e = names_lookup(p->by_name, TextDatumGetCString(v[0]))) == NULL)
		return;					/* no member, or one not counted (excluded) */
	m = &p->by_member[e->value];
	for (int kind = 0; kind < FK_ORDER_KINDS; kind++)
	{
		bytea	   *hash;
		PrintEntry *pe;
		int32		id;

		if (isnull[2 + kind])
			continue;
		hash = DatumGetByteaPP(v[2 + kind]);
		if (VARSIZE_ANY_EXHDR(hash) != FRAUD_HASH_LEN ||
			(pe = prints_lookup(p->table, KeyOf(kind, (uint8 *) VARDATA_ANY(hash)))) == NULL ||
			pe->who >= 0)
			continue;
		id = -(pe->who + 1);
		for (int i = 0; i < m->n; i++)
		{
			MemoryContext row;

			if (m->share[i] != id)
				continue;
			row = MemoryContextSwitchTo(keep);
			m->orders[i] = lappend(m->orders[i], TextDatumGetCString(v[1]));
			MemoryContextSwitchTo(row);
		}
	}
	r->rows++;
}

/*
 * The points still held by the orders of each member's flagged shares: one
 * query by their ids.
 */
static void
AddPointsLeft(FraudRun *run)
{
	FraudPrints *p = run->prints;
	names_hash *seen = names_create(CurrentMemoryContext, 1024, NULL);
	Datum	   *ids = NULL;
	int64	   *points;
	int			n = 0;
	int			size = 1024;

	ids = palloc(sizeof(Datum) * size);
	for (int32 mi = 0; mi < p->nby_member; mi++)
	{
		MemberShares *m = &p->by_member[mi];

		for (int i = 0; i < m->n; i++)
		{
			ListCell   *lc;

			foreach(lc, m->orders[i])
			{
				bool		found;
				NameEntry  *e = names_insert(seen, lfirst(lc), &found);

				if (found)
					continue;
				if (n == size)
				{
					size *= 2;
					ids = repalloc_huge(ids, sizeof(Datum) * size);
				}
				e->value = n;
				ids[n++] = CStringGetTextDatum(lfirst(lc));
			}
		}
	}
	if (n == 0)
		return;
	points = palloc0(sizeof(int64) * n);
	LoyaltyRun(&points_left, (Datum[]) {CStringGetTextDatum(run->program),
		LoyaltyArray(ids, NULL, n, TEXTOID)}, NULL, SPI_OK_SELECT);
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		NameEntry  *e = names_lookup(seen, LoyaltyGetText(row, 1));

		if (e)
			points[e->value] = LoyaltyGetInt64(row, 2);
	}
	SPI_freetuptable(SPI_tuptable);
	for (int32 mi = 0; mi < p->nby_member; mi++)
	{
		MemberShares *m = &p->by_member[mi];

		for (int i = 0; i < m->n; i++)
		{
			ListCell   *lc;

			foreach(lc, m->orders[i])
				m->points[i] += points[names_lookup(seen, lfirst(lc))->value];
		}
	}
}

/* Reads the orders of the flagged order shares (one query by their hashes). */
static void
ReadFlaggedOrders(FraudRun *run)
{
	FraudPrints *p = run->prints;
	Datum	   *hashes[FK_ORDER_KINDS];
	int			n[FK_ORDER_KINDS] = {0};
	Datum		args[7];
	EvidenceReader r = {run, 0};
	bool		any = false;

	for (int k = 0; k < FK_ORDER_KINDS; k++)
		hashes[k] = palloc(sizeof(Datum) * Max(p->nshares, 1));
	for (int32 id = 0; id < p->nshares; id++)
	{
		FraudShare *s = &p->shares[id];

		if (s->kind < FK_ORDER_KINDS && ShareFlagged(run, s))
		{
			bytea	   *h = palloc(VARHDRSZ + FRAUD_HASH_LEN);

			SET_VARSIZE(h, VARHDRSZ + FRAUD_HASH_LEN);
			memcpy(VARDATA(h), s->hash, FRAUD_HASH_LEN);
			hashes[s->kind][n[s->kind]++] = PointerGetDatum(h);
			any = true;
		}
	}
	if (!any)
		return;
	args[0] = CStringGetTextDatum(run->program);
	args[1] = TimestampTzGetDatum(run->since);
	args[2] = TimestampTzGetDatum(run->as_of);
	for (int k = 0; k < FK_ORDER_KINDS; k++)
		args[3 + k] = LoyaltyArray(hashes[k], NULL, n[k], BYTEAOID);
	LoyaltyStream(&flagged_orders, args, NULL, EvidenceRow, &r);
	AddPointsLeft(run);
}

/* The orders (and their points) a member used with a share. */
static List *
ShareOrders(FraudRun *run, const FraudShare *s, int32 id, const char *member_id, int64 *points)
{
	FraudPrints *p = run->prints;
	NameEntry  *e;

	*points = 0;
	if (s->kind >= FK_EMAIL)
	{
		e = names_lookup(p->contact_members, member_id);
		if (e == NULL)
			return NIL;
		*points = p->contact_points[e->value];
		return p->contact_orders[e->value];
	}
	e = names_lookup(p->by_name, member_id);
	for (int i = 0; e && i < p->by_member[e->value].n; i++)
		if (p->by_member[e->value].share[i] == id)
		{
			*points = p->by_member[e->value].points[i];
			return p->by_member[e->value].orders[i];
		}
	return NIL;
}

static void
ShareFlag(FraudRun *run, const FraudShare *s, int32 id, int member)
{
	const char *member_id = s->names[member];
	const char **others = palloc(sizeof(char *) * FRAUD_EVIDENCE_MEMBERS);
	int			nothers = 0;
	int64		points;
	List	   *orders = ShareOrders(run, s, id, member_id, &points);
	const char **order_ids = palloc(sizeof(char *) * Max(list_length(orders), 1));
	int			norders = 0;
	ListCell   *lc;
	StringInfoData ev;

	for (int i = 0; i < s->n && nothers < FRAUD_EVIDENCE_MEMBERS; i++)
		if (i != member)
			others[nothers++] = s->names[i];
	foreach(lc, orders)
		order_ids[norders++] = lfirst(lc);
	FraudJsonStart(&ev);
	FraudJsonStrings(&ev, "orders", order_ids, norders);
	FraudJsonStrings(&ev, "members", others, nothers);
	FraudJsonInt(&ev, "member_count", s->n);
	FraudJsonEnd(&ev);
	FraudFlagAdd(run, member_id, FR_SHARED_FINGERPRINT,
				 psprintf("%s:%s", FraudKindNames[s->kind], FraudHex(s->hash)), &ev, points);
}

/*
 * shared_fingerprint: every member of a value of the rule's kinds used by
 * `members` members or more (email and phone: `contact_members`), subject
 * KIND:HEX, evidence the orders of the period the member used it in
 * (email, phone: all its orders of the period) and the other members.
 */
void
FraudSharedFingerprintFlags(FraudRun *run)
{
	FraudPrints *p = run->prints;
	MemoryContext share_cxt;

	if (!FRAUD_RULE_ON(run, FR_SHARED_FINGERPRINT))
		return;
	ReadFlaggedOrders(run);
	/* A flag's evidence is built here and copied by FraudFlagAdd: reset per share. */
	share_cxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty fraud share flags",
									  ALLOCSET_DEFAULT_SIZES);
	for (int32 id = 0; id < p->nshares; id++)
	{
		FraudShare *s = &p->shares[id];
		MemoryContext old;

		if (!ShareFlagged(run, s))
			continue;
		old = MemoryContextSwitchTo(share_cxt);
		for (int i = 0; i < s->n; i++)
			ShareFlag(run, s, id, i);
		MemoryContextSwitchTo(old);
		MemoryContextReset(share_cxt);
		if (run->flags.n >= 10000)
			FraudFlagsFlush(run);
	}
	MemoryContextDelete(share_cxt);
}
