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
#include "utils/lsyscache.h"

#include "member_alias.h"
#include "signal_hash.h"
#include "spi_util.h"

static bool alias_cache_valid = false;
static bool alias_any = false;
static bool alias_callback_registered = false;
static Oid	merge_table = InvalidOid;
static Oid	forgotten_table = InvalidOid;

static LoyaltyQuery alias_exists = {
	"SELECT EXISTS (SELECT 1 FROM loyalty.member_merge)"
	"    OR EXISTS (SELECT 1 FROM loyalty.forgotten_member)",
	0, {InvalidOid}
};

static LoyaltyQuery alias_of = {
	"SELECT loyalty.member_alias($1, $2)",
	2, {TEXTOID, TEXTOID}
};

static void
AliasRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == merge_table || relid == forgotten_table)
		alias_cache_valid = false;
}

/* Whether any member was merged or forgotten (caller is SPI-connected). */
static bool
AliasAny(void)
{
	if (alias_cache_valid)
		return alias_any;
	if (!alias_callback_registered)
	{
		CacheRegisterRelcacheCallback(AliasRelcacheCallback, (Datum) 0);
		alias_callback_registered = true;
	}
	merge_table = get_relname_relid("member_merge", get_namespace_oid("loyalty", false));
	forgotten_table = get_relname_relid("forgotten_member", get_namespace_oid("loyalty", false));
	/* A library newer than the installed schema (before ALTER EXTENSION UPDATE): none. */
	if (!OidIsValid(merge_table) || !OidIsValid(forgotten_table))
		return false;
	LoyaltyRun(&alias_exists, NULL, NULL, SPI_OK_SELECT);
	alias_any = LoyaltyGetBool(0, 1);
	alias_cache_valid = true;
	return alias_any;
}

/*
 * The member an order of member_id belongs to: member_id itself, the member
 * it was merged into, or NULL (a guest) when it was forgotten.
 */
char *
MemberAliasResolve(const char *program, char *member_id)
{
	Datum		args[2];

	if (member_id == NULL || member_id[0] == '\0' || !AliasAny())
		return member_id;
	args[0] = CStringGetTextDatum(program);
	args[1] = CStringGetTextDatum(member_id);
	LoyaltyRun(&alias_of, args, NULL, SPI_OK_SELECT);
	return LoyaltyIsNull(0, 1) ? NULL : LoyaltyGetText(0, 1);
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

/* Whether the statement-level member lock must resolve aliases first. */
bool
MemberAliasesExist(void)
{
	return AliasAny();
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
