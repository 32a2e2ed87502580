/*
 * fraud_json.c
 *		A flag's evidence, written as JSON text only for flagged members
 *		(the INSERT casts it to jsonb), and the day and hex forms subjects use.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "fraud.h"

/* Keys after the first are preceded by a comma. */
static void
Key(StringInfo buf, const char *key)
{
	if (buf->data[buf->len - 1] != '{')
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
}

void
FraudJsonStart(StringInfo buf)
{
	initStringInfo(buf);
	appendStringInfoChar(buf, '{');
}

void
FraudJsonEnd(StringInfo buf)
{
	appendStringInfoChar(buf, '}');
}

/* "orders": the ids of orders[which[i]] (all n of orders when which is NULL). */
void
FraudJsonOrders(StringInfo buf, const FraudOrder *orders, const int *which, int n)
{
	Key(buf, "orders");
	appendStringInfoChar(buf, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, orders[which ? which[i] : i].order_id);
	}
	appendStringInfoChar(buf, ']');
}

void
FraudJsonStrings(StringInfo buf, const char *key, const char *const *values, int n)
{
	Key(buf, key);
	appendStringInfoChar(buf, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, values[i]);
	}
	appendStringInfoChar(buf, ']');
}

void
FraudJsonText(StringInfo buf, const char *key, const char *value)
{
	Key(buf, key);
	escape_json(buf, value);
}

/* A figure, with up to 6 significant digits (what the rule compared). */
void
FraudJsonNumber(StringInfo buf, const char *key, double value)
{
	Key(buf, key);
	appendStringInfo(buf, "%.6g", value);
}

void
FraudJsonInt(StringInfo buf, const char *key, int64 value)
{
	Key(buf, key);
	appendStringInfo(buf, INT64_FORMAT, value);
}

/* The date of at in the program's time zone, YYYY-MM-DD. */
char *
FraudDay(const FraudRun *run, TimestampTz at)
{
	Datum		local = DirectFunctionCall2(timestamptz_zone, run->timezone,
											TimestampTzGetDatum(at));
	DateADT		day = DatumGetDateADT(DirectFunctionCall1(timestamp_date, local));
	int			year,
				month,
				mday;

	/* Not date_out: its form follows DateStyle, and subjects must not. */
	j2date(day + POSTGRES_EPOCH_JDATE, &year, &month, &mday);
	return psprintf("%04d-%02d-%02d", year, month, mday);
}

char *
FraudHex(const uint8 *hash)
{
	char	   *hex = palloc(FRAUD_HASH_LEN * 2 + 1);

	for (int i = 0; i < FRAUD_HASH_LEN; i++)
		sprintf(hex + 2 * i, "%02x", hash[i]);
	return hex;
}
