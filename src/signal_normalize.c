/*
 * signal_normalize.c
 *		The normal form of a fraud signal before it is hashed, so that two
 *		spellings of one email, phone or address match.
 *
 * Only ASCII is folded or dropped (letters, digits, punctuation, blanks):
 * other characters are kept as they are, so the result depends on the
 * value alone, never on a locale or collation (the function is IMMUTABLE
 * and the hashes must agree between databases and releases).
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "signal_hash.h"

/* Order signals first (order_signal's columns), then member contacts. */
const char *const SignalKinds[] = {
	"ip", "device_id", "payment_fingerprint", "shipping_address", "billing_country",
	"ip_country", "email", "phone", NULL
};

/* Mail providers that deliver user+tag@ to user@. */
static const char *const plus_tag_domains[] = {
	"gmail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "icloud.com",
	"me.com", "mac.com", "protonmail.com", "proton.me", "pm.me", "fastmail.com",
	"fastmail.fm", "yandex.ru", "yandex.com", NULL
};

bool
SignalKindKnown(const char *kind)
{
	for (int i = 0; SignalKinds[i] != NULL; i++)
		if (strcmp(kind, SignalKinds[i]) == 0)
			return true;
	return false;
}

static bool
IsBlank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A copy of value without leading and trailing ASCII blanks. */
static char *
Trimmed(const char *value)
{
	size_t		len;

	while (IsBlank(*value))
		value++;
	len = strlen(value);
	while (len > 0 && IsBlank(value[len - 1]))
		len--;
	return pnstrdup(value, len);
}

static char *
AsciiFold(char *s, bool upper)
{
	for (char *p = s; *p; p++)
		*p = upper ? pg_ascii_toupper((unsigned char) *p) : pg_ascii_tolower((unsigned char) *p);
	return s;
}

static bool
InList(const char *s, const char *const *list)
{
	for (int i = 0; list[i] != NULL; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/*
 * Email: lower case, trimmed; googlemail.com is gmail.com; the +tag of the
 * local part dropped where the provider ignores it; dots of the local part
 * dropped for gmail.com.  A value without "@" is kept lower case.
 */
static char *
NormalEmail(const char *value)
{
	char	   *s = AsciiFold(Trimmed(value), false);
	char	   *at = strrchr(s, '@');
	const char *domain;
	StringInfoData out;

	if (at == NULL)
		return s;
	*at = '\0';
	domain = at + 1;
	if (strcmp(domain, "googlemail.com") == 0)
		domain = "gmail.com";
	if (InList(domain, plus_tag_domains))
	{
		char	   *plus = strchr(s, '+');

		if (plus != NULL)
			*plus = '\0';
	}
	initStringInfo(&out);
	for (const char *p = s; *p; p++)
		if (*p != '.' || strcmp(domain, "gmail.com") != 0)
			appendStringInfoChar(&out, *p);
	appendStringInfo(&out, "@%s", domain);
	return out.data;
}

/* Phone: the digits, with a leading "+" kept; no digit: empty. */
static char *
NormalPhone(const char *value)
{
	char	   *s = Trimmed(value);
	StringInfoData out;
	bool		digits = false;

	initStringInfo(&out);
	if (s[0] == '+')
		appendStringInfoChar(&out, '+');
	for (const char *p = s; *p; p++)
		if (*p >= '0' && *p <= '9')
		{
			appendStringInfoChar(&out, *p);
			digits = true;
		}
	return digits ? out.data : "";
}

/* Address: lower case, ASCII punctuation dropped, blanks collapsed to one space. */
static char *
NormalAddress(const char *value)
{
	char	   *s = AsciiFold(Trimmed(value), false);
	StringInfoData out;
	bool		blank = false;

	initStringInfo(&out);
	for (const char *p = s; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c < 0x80 && ispunct(c))
			continue;
		if (IsBlank(*p))
		{
			blank = out.len > 0;
			continue;
		}
		if (blank)
			appendStringInfoChar(&out, ' ');
		blank = false;
		appendStringInfoChar(&out, *p);
	}
	return out.data;
}

/*
 * The normal form of value as a signal of kind, or NULL when nothing is
 * left.  kind must be known (SignalKindKnown).  ip: trimmed, lower case
 * (IPv6 hex digits); device_id, payment_fingerprint: trimmed; countries:
 * trimmed, upper case.
 */
char *
SignalNormalize(const char *kind, const char *value)
{
	char	   *normal;

	if (strcmp(kind, "email") == 0)
		normal = NormalEmail(value);
	else if (strcmp(kind, "phone") == 0)
		normal = NormalPhone(value);
	else if (strcmp(kind, "shipping_address") == 0)
		normal = NormalAddress(value);
	else if (strcmp(kind, "billing_country") == 0 || strcmp(kind, "ip_country") == 0)
		normal = AsciiFold(Trimmed(value), true);
	else if (strcmp(kind, "ip") == 0)
		normal = AsciiFold(Trimmed(value), false);
	else
		normal = Trimmed(value);
	return normal[0] == '\0' ? NULL : normal;
}

/* Raises 22023 unless kind is a signal kind. */
void
SignalCheckKind(const char *kind)
{
	if (!SignalKindKnown(kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown signal kind: \"%s\"", kind),
				 errhint("Use ip, device_id, payment_fingerprint, shipping_address, billing_country, ip_country, email or phone.")));
}

PG_FUNCTION_INFO_V1(loyalty_normalize_signal);
/* loyalty.normalize_signal(kind, value): the normal form hashed (STRICT). */
Datum
loyalty_normalize_signal(PG_FUNCTION_ARGS)
{
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *normal;

	SignalCheckKind(kind);
	normal = SignalNormalize(kind, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (normal == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(normal));
}
