/*
 * fraud_params.c
 *		The effective parameters of a program's fraud rules, read once per
 *		run from loyalty.fraud_rule_params() (checked when they were set);
 *		whole numbers through numeric, as check_fraud_params accepts 5.0.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "fraud.h"
#include "spi_util.h"

const char *const FraudRuleNames[FR_COUNT] = {
	"velocity", "small_payment_burst", "shared_fingerprint", "geo_mismatch",
	"refund_ratio", "earn_burn", "coupon_farming", "referral_ring"
};

const char *const FraudKindNames[FK_COUNT] = {
	"device_id", "payment_fingerprint", "shipping_address", "ip", "email", "phone"
};

static LoyaltyQuery rule_params = {
	"SELECT r.rule, r.enabled,"
	"       (r.params OPERATOR(pg_catalog.->) 'orders')::pg_catalog.numeric::integer,"
	"       (r.params OPERATOR(pg_catalog.->>) 'minutes')::pg_catalog.float8,"
	"       (r.params OPERATOR(pg_catalog.->>) 'max_amount')::pg_catalog.float8,"
	"       (r.params OPERATOR(pg_catalog.->) 'members')::pg_catalog.numeric::integer,"
	"       (r.params OPERATOR(pg_catalog.->) 'contact_members')::pg_catalog.numeric::integer,"
	"       (r.params OPERATOR(pg_catalog.->>) 'share')::pg_catalog.float8,"
	"       (r.params OPERATOR(pg_catalog.->>) 'ratio')::pg_catalog.float8,"
	"       (r.params OPERATOR(pg_catalog.->) 'points')::pg_catalog.numeric::bigint,"
	"       (r.params OPERATOR(pg_catalog.->>) 'hours')::pg_catalog.float8,"
	"       (r.params OPERATOR(pg_catalog.->>) 'score')::pg_catalog.float8,"
	"       ARRAY(SELECT pg_catalog.jsonb_array_elements_text(r.params OPERATOR(pg_catalog.->) 'kinds'))"
	"  FROM loyalty.fraud_rule_params($1) r",
	1, {TEXTOID}
};

static double
Float8Or(int row, int col, double dflt)
{
	return LoyaltyIsNull(row, col) ? dflt : DatumGetFloat8(LoyaltyGetDatum(row, col));
}

static int32
Int32Or(int row, int col, int32 dflt)
{
	return LoyaltyIsNull(row, col) ? dflt : LoyaltyGetInt32(row, col);
}

/* Which kinds a text[] of kind names lists. */
static void
KindsOf(Datum array, bool *kinds)
{
	Datum	   *names;
	bool	   *nulls;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &names, &nulls, &n);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < FK_COUNT; k++)
			if (!nulls[i] && strcmp(TextDatumGetCString(names[i]), FraudKindNames[k]) == 0)
				kinds[k] = true;
}

void
FraudLoadRules(FraudRun *run)
{
	LoyaltyRun(&rule_params, (Datum[]) {CStringGetTextDatum(run->program)}, NULL, SPI_OK_SELECT);
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		char	   *name = LoyaltyGetText(row, 1);

		for (int r = 0; r < FR_COUNT; r++)
		{
			FraudRule  *rule = &run->rules[r];

			if (strcmp(name, FraudRuleNames[r]) != 0)
				continue;
			rule->enabled = LoyaltyGetBool(row, 2);
			rule->orders = Int32Or(row, 3, 0);
			rule->minutes = Float8Or(row, 4, 0);
			rule->max_amount = Float8Or(row, 5, 0);
			rule->members = Int32Or(row, 6, 0);
			rule->contact_members = Int32Or(row, 7, 0);
			rule->share = Float8Or(row, 8, 0);
			rule->ratio = Float8Or(row, 9, 0);
			rule->points = LoyaltyIsNull(row, 10) ? 0 : LoyaltyGetInt64(row, 10);
			rule->hours = Float8Or(row, 11, 0);
			rule->score = Float8Or(row, 12, 0);
			KindsOf(LoyaltyGetDatum(row, 13), rule->kinds);
		}
	}
}
