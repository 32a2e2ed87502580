/*
 * member_alias.c
 *		The member id an order's member id stands for: a merged member's
 *		orders go to the member it was merged into, a forgotten member's
 *		orders are a guest's (loyalty.member_alias, 38_member_admin.sql).
 *
 * Most installations never merge or forget anyone: the accrual trigger then
 * asks nothing.  Whether any alias exists is kept per backend and dropped
 * when loyalty.member_merge or loyalty.forgotten_member changes (their
 * statement triggers send a relcache invalidation, as for programs).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "storage/lmgr.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "member_alias.h"
#include "signal_hash.h"
#include "spi_util.h"

/*
 * The aliases, loaded once per backend and dropped on any change: merged
 * ids by a digest of program and id (SHA-256 based, 16 bytes), forgotten
 * ids by key id and keyed hash, and the keys those hashes were made with.
 * A member id of an order is looked up in memory: bulk loads pay a hash or
 * two per row, not a query.
 */
typedef struct AliasDigest
{
	int32		key_id;			/* 0 for a merged id's digest */
	uint8		hash[SIGNAL_HASH_BYTES];
} AliasDigest;

typedef struct MergeEntry
{
	AliasDigest from;
	char	   *into;
} MergeEntry;

static bool alias_cache_valid = false;
static bool alias_callback_registered = false;
static MemoryContext alias_context = NULL;
static HTAB *merged = NULL;		/* MergeEntry */
static HTAB *forgotten = NULL;	/* AliasDigest */
static int	nkeys = 0;
static SignalKey *keys = NULL;	/* the keys of forgotten_member's hashes */
static Oid	merge_table = InvalidOid;
static Oid	forgotten_table = InvalidOid;
static Oid	key_table = InvalidOid;
static const uint8 merge_key[SIGNAL_KEY_BYTES] = {0};

static LoyaltyQuery merges_query = {
	"SELECT m.program, m.from_member_id, m.into_member_id FROM loyalty.member_merge m",
	0, {InvalidOid}
};

static LoyaltyQuery forgotten_query = {
	"SELECT f.key_id, k.key, f.id_hash FROM loyalty.forgotten_member f"
	"  JOIN loyalty.signal_key k ON k.id OPERATOR(pg_catalog.=) f.key_id",
	0, {InvalidOid}
};

static void
AliasRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == merge_table || relid == forgotten_table || relid == key_table)
		alias_cache_valid = false;
}

/* "program\x1fmember_id", hashed with the key (a signal key, or merge_key). */
static void
AliasDigestOf(const uint8 *key, int32 key_id, const char *program, const char *member_id,
			  AliasDigest *out)
{
	bytea	   *mac = SignalDigest(key, "forgotten_member", psprintf("%s\x1f%s", program, member_id));

	memset(out, 0, sizeof(*out));
	out->key_id = key_id;
	memcpy(out->hash, VARDATA(mac), SIGNAL_HASH_BYTES);
}

static void
MergeRow(const Datum *values, const bool *isnull, MemoryContext keep, void *arg)
{
	AliasDigest from;
	MergeEntry *entry;
	bool		found;

	AliasDigestOf(merge_key, 0, TextDatumGetCString(values[0]), TextDatumGetCString(values[1]), &from);
	entry = hash_search(merged, &from, HASH_ENTER, &found);
	entry->into = MemoryContextStrdup(alias_context, TextDatumGetCString(values[2]));
}

static void
ForgottenRow(const Datum *values, const bool *isnull, MemoryContext keep, void *arg)
{
	AliasDigest digest;
	bytea	   *key = DatumGetByteaPP(values[1]);
	bytea	   *hash = DatumGetByteaPP(values[2]);
	bool		found = false;

	if (VARSIZE_ANY_EXHDR(key) != SIGNAL_KEY_BYTES || VARSIZE_ANY_EXHDR(hash) != SIGNAL_HASH_BYTES)
		return;
	memset(&digest, 0, sizeof(digest));
	digest.key_id = DatumGetInt32(values[0]);
	memcpy(digest.hash, VARDATA_ANY(hash), SIGNAL_HASH_BYTES);
	hash_search(forgotten, &digest, HASH_ENTER, NULL);
	for (int i = 0; i < nkeys && !found; i++)
		found = keys[i].id == digest.key_id;
	if (!found)
	{
		keys = nkeys == 0 ? MemoryContextAlloc(alias_context, sizeof(SignalKey) * 8)
			: (nkeys % 8 == 0 ? repalloc(keys, sizeof(SignalKey) * (nkeys + 8)) : keys);
		keys[nkeys].id = digest.key_id;
		memcpy(keys[nkeys].key, VARDATA_ANY(key), SIGNAL_KEY_BYTES);
		nkeys++;
	}
}

/* Loads the aliases (caller is SPI-connected); false when there are none. */
static bool
AliasLoad(void)
{
	Oid			nsp;
	HASHCTL		ctl;
	MemoryContext old;

	if (alias_cache_valid)
		return hash_get_num_entries(merged) > 0 || hash_get_num_entries(forgotten) > 0;
	if (!alias_callback_registered)
	{
		CacheRegisterRelcacheCallback(AliasRelcacheCallback, (Datum) 0);
		alias_callback_registered = true;
	}
	nsp = get_namespace_oid("loyalty", false);
	merge_table = get_relname_relid("member_merge", nsp);
	forgotten_table = get_relname_relid("forgotten_member", nsp);
	key_table = get_relname_relid("signal_key", nsp);
	/* A library newer than the installed schema (before ALTER EXTENSION UPDATE): none. */
	if (!OidIsValid(merge_table) || !OidIsValid(forgotten_table))
		return false;

	if (alias_context == NULL)
		alias_context = AllocSetContextCreate(CacheMemoryContext, "loyalty member aliases",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(alias_context);
	nkeys = 0;
	keys = NULL;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(AliasDigest);
	ctl.entrysize = sizeof(MergeEntry);
	ctl.hcxt = alias_context;
	merged = hash_create("loyalty merged members", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.entrysize = sizeof(AliasDigest);
	forgotten = hash_create("loyalty forgotten members", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	old = MemoryContextSwitchTo(alias_context);
	PG_TRY();
	{
		LoyaltyStream(&merges_query, NULL, NULL, MergeRow, NULL);
		LoyaltyStream(&forgotten_query, NULL, NULL, ForgottenRow, NULL);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextReset(alias_context);
		merged = forgotten = NULL;
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	alias_cache_valid = true;
	return hash_get_num_entries(merged) > 0 || hash_get_num_entries(forgotten) > 0;
}

/* Whether the id was forgotten: its keyed hash under a key of the hashes kept. */
static bool
AliasForgotten(const char *program, const char *member_id)
{
	for (int i = 0; i < nkeys; i++)
	{
		AliasDigest digest;

		AliasDigestOf(keys[i].key, keys[i].id, program, member_id, &digest);
		if (hash_search(forgotten, &digest, HASH_FIND, NULL) != NULL)
			return true;
	}
	return false;
}

/* Whether any member was merged or forgotten (caller is SPI-connected). */
bool
MemberAliasesExist(void)
{
	return AliasLoad();
}

/*
 * The member an order of member_id belongs to: member_id itself, the member
 * it was merged into, or NULL (a guest) when it was forgotten.  As
 * loyalty.member_alias says, without a query.
 */
char *
MemberAliasResolve(const char *program, char *member_id)
{
	AliasDigest from;
	MergeEntry *entry;

	if (member_id == NULL || member_id[0] == '\0' || !AliasLoad())
		return member_id;
	if (AliasForgotten(program, member_id))
		return NULL;
	if (hash_get_num_entries(merged) == 0)
		return member_id;
	AliasDigestOf(merge_key, 0, program, member_id, &from);
	entry = hash_search(merged, &from, HASH_FIND, NULL);
	return entry == NULL ? member_id : pstrdup(entry->into);
}

/*
 * Orders wait for a merge or forget in progress, and see it once it is
 * committed: every accrual event takes ROW SHARE on member_merge and
 * forgotten_member (a weak, fast-path lock, held to the end of the
 * transaction), which merge_members and forget_member lock in EXCLUSIVE
 * mode first.  So a merge waits for the transactions that are inserting
 * orders, and an order that comes during a merge waits for it, then sees
 * it: taking the lock reads the invalidation the merge sent.
 */
void
MemberAliasBarrier(void)
{
	Oid			nsp = get_namespace_oid("loyalty", true);
	Oid			rel;

	if (!OidIsValid(nsp))
		return;
	rel = get_relname_relid("member_merge", nsp);
	if (OidIsValid(rel))
		LockRelationOid(rel, RowShareLock);
	rel = get_relname_relid("forgotten_member", nsp);
	if (OidIsValid(rel))
		LockRelationOid(rel, RowShareLock);
}

PG_FUNCTION_INFO_V1(loyalty_forgotten_id_hash);
/*
 * loyalty.forgotten_id_hash(key, program, member_id): the keyed hash kept of
 * a forgotten member's id (HMAC-SHA-256 under a signal key, its first 16
 * bytes, of "forgotten_member:" program, a unit separator, member id).
 */
Datum
loyalty_forgotten_id_hash(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	char	   *program = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *member_id = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (VARSIZE_ANY_EXHDR(key) != SIGNAL_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a signal key is %d bytes long, not %d", SIGNAL_KEY_BYTES,
						(int) VARSIZE_ANY_EXHDR(key))));
	PG_RETURN_BYTEA_P(SignalDigest((const uint8 *) VARDATA_ANY(key), "forgotten_member",
								   psprintf("%s\x1f%s", program, member_id)));
}
