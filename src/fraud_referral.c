/*
 * fraud_referral.c
 *		referral_ring: referrals between accounts that share a device, card,
 *		address, email or phone (one person referring itself), and cycles of
 *		referrals (A referred B, B referred C, C referred A).
 *
 * All the program's referrals are read (a cycle may run through older
 * ones); those made in the period are checked.  The evidence of a flag is
 * the referral reward the member got for it (refs
 * referral:<referee>:referrer and referral:<referee>:referee, written by
 * settle_referrals): what confirming the flag takes back.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "fraud.h"
#include "spi_util.h"

static LoyaltyQuery all_referrals = {
	"SELECT r.member_id, r.referrer_id,"
	"       r.referred_at OPERATOR(pg_catalog.>=) $2 AND r.referred_at OPERATOR(pg_catalog.<=) $3"
	"  FROM loyalty.referral r"
	" WHERE r.program OPERATOR(pg_catalog.=) $1"
	"   AND NOT (r.member_id OPERATOR(pg_catalog.=) ANY (" FRAUD_EXCLUDED "))"
	"   AND NOT (r.referrer_id OPERATOR(pg_catalog.=) ANY (" FRAUD_EXCLUDED "))"
	" ORDER BY r.member_id COLLATE pg_catalog.\"C\"",
	3, {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

static LoyaltyQuery rewards = {
	"SELECT l.ref, l.id, l.points FROM loyalty.ledger l"
	" WHERE l.program OPERATOR(pg_catalog.=) $1 AND l.ref OPERATOR(pg_catalog.=) ANY ($2)"
	"   AND l.points OPERATOR(pg_catalog.>) 0",
	2, {TEXTOID, TEXTARRAYOID}, true
};

typedef struct Referral
{
	char	   *referee;
	char	   *referrer;
	bool		in_period;
	bool		shared;			/* the two share a value */
	bool		cycle;			/* the referrer's chain comes back to the referee */
} Referral;

typedef struct RefereeEntry
{
	const char *name;
	uint32		hash;
	int32		referral;
	char		status;
} RefereeEntry;

#define SH_PREFIX referees
#define SH_ELEMENT_TYPE RefereeEntry
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

/* Whether following referrers from the referral's referrer leads back to its referee. */
static bool
OnCycle(referees_hash *by_referee, const Referral *all, int n, const Referral *r)
{
	const char *at = r->referrer;

	for (int steps = 0; steps < n; steps++)
	{
		RefereeEntry *e;

		if (strcmp(at, r->referee) == 0)
			return true;
		if ((e = referees_lookup(by_referee, at)) == NULL)
			return false;
		at = all[e->referral].referrer;
	}
	return false;
}

/* The reward ledger row of ref: its id and points, false when none. */
typedef struct Reward
{
	char	   *ref;
	int64		id;
	int64		points;
} Reward;

static const Reward *
RewardOf(const Reward *rw, int n, const char *ref)
{
	for (int i = 0; i < n; i++)
		if (strcmp(rw[i].ref, ref) == 0)
			return &rw[i];
	return NULL;
}

static void
RingFlag(FraudRun *run, const Referral *r, bool referrer_side, const Reward *rw, int nrw)
{
	const char *member_id = referrer_side ? r->referrer : r->referee;
	const Reward *reward = RewardOf(rw, nrw, psprintf("referral:%s:%s", r->referee,
													  referrer_side ? "referrer" : "referee"));
	StringInfoData ev;

	FraudJsonStart(&ev);
	FraudJsonStrings(&ev, "orders", NULL, 0);
	if (reward)
		appendStringInfo(&ev, ", \"ledger\": [" INT64_FORMAT "]", reward->id);
	else
		appendStringInfoString(&ev, ", \"ledger\": []");
	FraudJsonText(&ev, "referee", r->referee);
	FraudJsonText(&ev, "referrer", r->referrer);
	FraudJsonText(&ev, "reason", r->cycle ? (r->shared ? "shared_fingerprint, cycle" : "cycle") : "shared_fingerprint");
	FraudJsonEnd(&ev);
	FraudFlagAdd(run, member_id, FR_REFERRAL_RING, psprintf("referral:%s", r->referee), &ev,
				 reward ? reward->points : 0);
}

/* The reward rows of the flagged referrals, by ref. */
static Reward *
ReadRewards(FraudRun *run, const Referral *all, int n, int *nrw)
{
	Datum	   *refs = palloc(sizeof(Datum) * 2 * Max(n, 1));
	int			nrefs = 0;
	Reward	   *rw;

	for (int i = 0; i < n; i++)
		if (all[i].shared || all[i].cycle)
		{
			refs[nrefs++] = CStringGetTextDatum(psprintf("referral:%s:referrer", all[i].referee));
			refs[nrefs++] = CStringGetTextDatum(psprintf("referral:%s:referee", all[i].referee));
		}
	*nrw = 0;
	if (nrefs == 0)
		return NULL;
	LoyaltyRun(&rewards, (Datum[]) {CStringGetTextDatum(run->program),
		LoyaltyArray(refs, NULL, nrefs, TEXTOID)}, NULL, SPI_OK_SELECT);
	rw = palloc(sizeof(Reward) * Max(SPI_processed, 1));
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		rw[row].ref = LoyaltyGetText(row, 1);
		rw[row].id = LoyaltyGetInt64(row, 2);
		rw[row].points = LoyaltyGetInt64(row, 3);
	}
	*nrw = SPI_processed;
	return rw;
}

/*
 * referral_ring: a referral made in the period whose referrer and referee
 * share a device, card, address (orders of the period), email or phone,
 * or whose referrer's chain of referrers leads back to the referee: both
 * members flagged, subject referral:<referee>.
 */
void
FraudReferralRing(FraudRun *run)
{
	Referral   *all;
	int			n;
	referees_hash *by_referee;
	Reward	   *rw;
	int			nrw;

	if (!FRAUD_RULE_ON(run, FR_REFERRAL_RING))
		return;
	LoyaltyRun(&all_referrals, (Datum[]) {CStringGetTextDatum(run->program),
		TimestampTzGetDatum(run->since), TimestampTzGetDatum(run->as_of)}, NULL, SPI_OK_SELECT);
	n = SPI_processed;
	all = palloc(sizeof(Referral) * Max(n, 1));
	by_referee = referees_create(CurrentMemoryContext, Max(n, 16), NULL);
	for (int i = 0; i < n; i++)
	{
		bool		found;

		all[i].referee = LoyaltyGetText(i, 1);
		all[i].referrer = LoyaltyGetText(i, 2);
		all[i].in_period = LoyaltyGetBool(i, 3);
		referees_insert(by_referee, all[i].referee, &found)->referral = i;
	}
	SPI_freetuptable(SPI_tuptable);
	for (int i = 0; i < n; i++)
	{
		all[i].shared = all[i].in_period && FraudMembersShare(run, all[i].referee, all[i].referrer);
		all[i].cycle = all[i].in_period && OnCycle(by_referee, all, n, &all[i]);
	}
	rw = ReadRewards(run, all, n, &nrw);
	for (int i = 0; i < n; i++)
		if (all[i].shared || all[i].cycle)
		{
			RingFlag(run, &all[i], false, rw, nrw);
			RingFlag(run, &all[i], true, rw, nrw);
		}
}
