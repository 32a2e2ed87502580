/*
 * signal_hash.c
 *		Keyed hashes of fraud signals: HMAC-SHA-256 of "domain:normal form"
 *		under the installation's current key (loyalty.signal_key), the first
 *		SIGNAL_HASH_BYTES bytes kept.
 *
 * The kind is part of what is hashed, so an ip and a device id that happen
 * to be spelled alike never match; the two countries share one domain,
 * "country", so an order whose billing and IP countries are the same has
 * equal hashes (what geo_mismatch compares).  The key never leaves the server: SQL
 * sees only hashes and key ids.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "catalog/namespace.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"

#include "signal_hash.h"
#include "spi_util.h"

static LoyaltyQuery key_current = {
	"SELECT id, key FROM loyalty.signal_key WHERE retired_at IS NULL",
	0, {InvalidOid}
};

/*
 * The current key, kept for the life of the backend: every statement that
 * hashes (each order INSERT with signal columns) would otherwise read it.
 * A statement trigger on loyalty.signal_key (invalidate_program_cache)
 * sends a relcache invalidation for the table whenever a row changes:
 * this backend drops its copy at once, the others at their next
 * transaction.  The key id always goes with the key it names.
 */
static bool key_cache_valid = false;
static SignalKey key_cache;
static Oid	key_table = InvalidOid;

static void
SignalKeyForget(void)
{
	key_cache_valid = false;
	memset(key_cache.key, 0, SIGNAL_KEY_BYTES);
}

static void
SignalKeyRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == key_table)
		SignalKeyForget();
}

/* An aborted transaction may have made the key that was kept. */
static void
SignalKeyXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		SignalKeyForget();
}

static void
SignalKeySubXactCallback(SubXactEvent event, SubTransactionId my_subid,
						 SubTransactionId parent_subid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		SignalKeyForget();
}

void
SignalKeyCacheInit(void)
{
	CacheRegisterRelcacheCallback(SignalKeyRelcacheCallback, (Datum) 0);
	RegisterXactCallback(SignalKeyXactCallback, NULL);
	RegisterSubXactCallback(SignalKeySubXactCallback, NULL);
}

/*
 * The current key (kept, or read).  False when there is none: someone
 * deleted or retired every key by hand.
 */
bool
SignalKeyCurrent(SignalKey *key)
{
	bytea	   *bytes;

	if (key_cache_valid)
	{
		*key = key_cache;
		return true;
	}
	SPI_connect();
	if (!OidIsValid(key_table))
		key_table = get_relname_relid("signal_key", get_namespace_oid("loyalty", false));
	LoyaltyRun(&key_current, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		SPI_finish();
		return false;
	}
	bytes = DatumGetByteaPP(LoyaltyGetDatum(0, 2));
	if (VARSIZE_ANY_EXHDR(bytes) != SIGNAL_KEY_BYTES)
		elog(ERROR, "loyalty: signal key %d is not %d bytes long", LoyaltyGetInt32(0, 1),
			 SIGNAL_KEY_BYTES);
	key_cache.id = LoyaltyGetInt32(0, 1);
	memcpy(key_cache.key, VARDATA_ANY(bytes), SIGNAL_KEY_BYTES);
	SPI_finish();
	key_cache_valid = true;
	*key = key_cache;
	return true;
}

/* The domain a kind's values are hashed in: both countries in "country". */
static const char *
SignalDomain(const char *kind)
{
	if (strcmp(kind, "billing_country") == 0 || strcmp(kind, "ip_country") == 0)
		return "country";
	return kind;
}

/* HMAC-SHA-256 of "domain:normal" under key, its first SIGNAL_HASH_BYTES bytes. */
bytea *
SignalDigest(const uint8 *key, const char *kind, const char *normal)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	bytea	   *out;

	if (ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (pg_hmac_init(ctx, key, SIGNAL_KEY_BYTES) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) SignalDomain(kind), strlen(SignalDomain(kind))) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ":", 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) normal, strlen(normal)) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		pg_hmac_free(ctx);
		elog(ERROR, "loyalty: could not compute HMAC-SHA-256 of a signal");
	}
	pg_hmac_free(ctx);
	out = palloc(VARHDRSZ + SIGNAL_HASH_BYTES);
	SET_VARSIZE(out, VARHDRSZ + SIGNAL_HASH_BYTES);
	memcpy(VARDATA(out), mac, SIGNAL_HASH_BYTES);
	return out;
}

PG_FUNCTION_INFO_V1(loyalty_signal_hash);
/* loyalty.signal_hash(kind, value): the keyed hash under the current key (STRICT). */
Datum
loyalty_signal_hash(PG_FUNCTION_ARGS)
{
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *normal;
	SignalKey	key;

	SignalCheckKind(kind);
	normal = SignalNormalize(kind, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (normal == NULL)
		PG_RETURN_NULL();
	if (!SignalKeyCurrent(&key))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("loyalty has no current signal key"),
				 errhint("Make one with loyalty.rotate_signal_key().")));
	PG_RETURN_BYTEA_P(SignalDigest(key.key, kind, normal));
}

PG_FUNCTION_INFO_V1(loyalty_signal_digest);
/*
 * loyalty.signal_digest(key, kind, value): the keyed hash under a given
 * key, for the set-based statement of the signal trigger, which reads the
 * key once (STRICT).
 */
Datum
loyalty_signal_digest(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *normal;

	if (VARSIZE_ANY_EXHDR(key) != SIGNAL_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a signal key is %d bytes long, not %d", SIGNAL_KEY_BYTES,
						(int) VARSIZE_ANY_EXHDR(key))));
	SignalCheckKind(kind);
	normal = SignalNormalize(kind, text_to_cstring(PG_GETARG_TEXT_PP(2)));
	if (normal == NULL)
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(SignalDigest((const uint8 *) VARDATA_ANY(key), kind, normal));
}
