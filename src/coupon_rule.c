/*
 * coupon_rule.c
 *		The loyalty.coupon_rule type: input, output, binary I/O, accessors.
 *
 * Text form (docs/coupons.md has the grammar):
 *   [options |] step [| step ...]
 *   options: first_order min_items=3 lifecycle=active,at_risk categories=shoes
 *            exclude_categories=gift_cards countries=VN,TH tiers=Gold
 *            segments="At Risk",Champions valid=2024-11-01..2024-11-12 stack=exclusive
 *   step:    [spend AMOUNT CUR get] (AMOUNT CUR off | PCT% off [max AMOUNT CUR]
 *            | free shipping | gift SKU)
 * Every rule is checked in one place (CheckDraft) after text and binary
 * input alike, and an error's DETAIL names the part of the input at fault.
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"

#include "coupon_rule.h"
#include "currency.h"
#include "type_input.h"

/* A rule being read, before it is packed. */
typedef struct RuleDraft
{
	bool		first_order;
	int32		min_items;
	bool		has_valid;
	DateADT		valid_from;
	DateADT		valid_until;
	CouponStack stack;
	char	   *stack_group;
	int			list_count[COUPON_NLISTS];
	char	   *list_item[COUPON_NLISTS][COUPON_MAX_LIST];
	int			nsteps;
	CouponStep	step[COUPON_MAX_STEPS];
	char	   *gift[COUPON_MAX_STEPS];
	bool		seen[16];		/* options given, by OptionKey */
} RuleDraft;

typedef enum OptionKey
{
	OPT_FIRST_ORDER = 0,
	OPT_MIN_ITEMS,
	OPT_LIFECYCLE,
	OPT_CATEGORIES,
	OPT_EXCLUDE_CATEGORIES,
	OPT_COUNTRIES,
	OPT_TIERS,
	OPT_SEGMENTS,
	OPT_VALID,
	OPT_STACK,
	OPT_COUNT
} OptionKey;

/* In canonical order. */
static const char *const option_names[OPT_COUNT] = {
	"first_order", "min_items", "lifecycle", "categories", "exclude_categories",
	"countries", "tiers", "segments", "valid", "stack"
};

/* The list option of each list key (OPT_LIFECYCLE .. OPT_SEGMENTS). */
static const CouponList option_list[OPT_COUNT] = {
	0, 0, COUPON_LIFECYCLE, COUPON_CATEGORIES, COUPON_EXCLUDE_CATEGORIES,
	COUPON_COUNTRIES, COUPON_TIERS, COUPON_SEGMENTS, 0, 0
};

/* The lifecycle stages of member_lifecycle_at(). */
static const char *const lifecycle_stages[] = {"new", "active", "at_risk", "dormant", "churned"};

#define RULE_EXAMPLE "'spend 100 USD get 10 USD off | spend 200 USD get 25 USD off' or 'first_order | 20% off max 50 USD'"
#define RULE_BLANKS " \t\n\r\f\v"

/*
 * Reports a rule that breaks a rule of the grammar and returns false.
 * Text input raises 22P02 quoting the input; binary input (binary true)
 * raises 22P03.  detail names the part at fault.
 */
static bool
RuleError(Node *escontext, const char *input, bool binary, const char *detail)
{
	if (binary)
		TypeInputError(escontext,
					   errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					   errmsg("invalid external coupon_rule value"),
					   errdetail_internal("%s", detail));
	else
		TypeInputError(escontext,
					   errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					   errmsg("invalid input syntax for type %s: \"%s\"", "coupon_rule", input),
					   errdetail_internal("%s", detail),
					   errhint("%s", "Write for example " RULE_EXAMPLE "; the grammar is in docs/coupons.md."));
	return false;
}

/* The state of one parse: where errors go. */
typedef struct RuleParse
{
	const char *input;
	bool		binary;
	Node	   *escontext;
	RuleDraft  *draft;
} RuleParse;

#define FAIL(ps, ...) RuleError((ps)->escontext, (ps)->input, (ps)->binary, psprintf(__VA_ARGS__))

/*
 * Reads a decimal above or at zero with at most `decimals` decimals into a
 * fixed point integer (value x 10^decimals); false when it is not one or
 * is above max.
 */
static bool
ParseFixed(const char *s, int decimals, int64 max, int64 *out)
{
	int64		value = 0;
	int			seen_decimals = -1;

	if (*s == '\0' || *s == '.')
		return false;
	for (; *s; s++)
	{
		if (*s == '.' && seen_decimals < 0)
			seen_decimals = 0;
		else if (*s >= '0' && *s <= '9')
		{
			if (seen_decimals >= 0 && ++seen_decimals > decimals)
				return false;
			/* value * 10 + digit <= max, exactly (max itself is allowed) */
			if (value > (max - (*s - '0')) / 10)
				return false;
			value = value * 10 + (*s - '0');
		}
		else
			return false;
	}
	if (seen_decimals == 0)
		return false;			/* "5." */
	for (int i = Max(seen_decimals, 0); i < decimals; i++)
	{
		if (value > max / 10)
			return false;
		value *= 10;
	}
	*out = value;
	return true;
}

/* A fixed point integer as text, without trailing zeros ("10.5"). */
static void
AppendFixed(StringInfo out, int64 value, int decimals)
{
	int64		scale = 1;
	int64		fraction;
	char		digits[32];
	int			len;

	for (int i = 0; i < decimals; i++)
		scale *= 10;
	fraction = value % scale;
	appendStringInfo(out, INT64_FORMAT, value / scale);
	if (fraction == 0)
		return;
	snprintf(digits, sizeof(digits), "%0*" INT64_MODIFIER "d", decimals, fraction);
	len = strlen(digits);
	while (len > 0 && digits[len - 1] == '0')
		digits[--len] = '\0';
	appendStringInfo(out, ".%s", digits);
}

static char *
FormatFixed(int64 value, int decimals)
{
	StringInfoData out;

	initStringInfo(&out);
	AppendFixed(&out, value, decimals);
	return out.data;
}

static bool
IsBlank(const char *s)
{
	return s[strspn(s, RULE_BLANKS)] == '\0';
}

/*
 * Splits s at the separator sep outside double quotes, in place: the
 * pieces in parts (at most max; one more is reported as max + 1).  An
 * unterminated quote gives -1.
 */
static int
SplitOutsideQuotes(char *s, char sep, char **parts, int max)
{
	int			n = 0;
	bool		quoted = false;

	parts[n++] = s;
	for (char *p = s; *p; p++)
	{
		if (*p == '"')
			quoted = !quoted;
		else if (*p == sep && !quoted)
		{
			*p = '\0';
			if (n > max)
				return max + 1;
			parts[n++] = p + 1;
		}
	}
	return quoted ? -1 : n;
}

/* The next blank-separated word (quotes keep blanks inside), or NULL. */
static char *
NextWord(char **cursor)
{
	char	   *start = *cursor + strspn(*cursor, RULE_BLANKS);
	char	   *p = start;
	bool		quoted = false;

	if (*start == '\0')
		return NULL;
	for (; *p && (quoted || strchr(RULE_BLANKS, *p) == NULL); p++)
		if (*p == '"')
			quoted = !quoted;
	if (*p)
		*p++ = '\0';
	*cursor = p;
	return start;
}

/*
 * Why a name (list item, stack group, gift SKU) breaks the rules, or NULL:
 * 1 to COUPON_MAX_NAME characters; no control characters, no "|", ",",
 * "=" or '"'; words separated by one space (written in quotes).
 */
static const char *
NameProblem(const char *name)
{
	int			len = strlen(name);

	if (len == 0)
		return "is empty";
	if (pg_mbstrlen_with_len(name, len) > COUPON_MAX_NAME)
		return psprintf("is longer than %d characters", COUPON_MAX_NAME);
	if (name[0] == ' ' || name[len - 1] == ' ' || strstr(name, "  ") != NULL)
		return "starts or ends with a space or has two in a row";
	for (const char *p = name; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c < 0x20 || c == 0x7F)
			return "contains a control character";
		if (strchr("|,=\"", c) != NULL)
			return psprintf("contains \"%c\"", c);
	}
	return NULL;
}

/* A list item without its quotes: "\"At Risk\"" -> "At Risk". */
static char *
Unquote(char *item)
{
	int			len = strlen(item);

	if (len >= 2 && item[0] == '"' && item[len - 1] == '"')
	{
		item[len - 1] = '\0';
		return item + 1;
	}
	return item;
}

/* True when a and b are the same name: case ignored, "_" and " " alike. */
static bool
SameName(const char *a, const char *b)
{
	for (;; a++, b++)
	{
		char		ca = (*a == '_') ? ' ' : pg_tolower((unsigned char) *a);
		char		cb = (*b == '_') ? ' ' : pg_tolower((unsigned char) *b);

		if (ca != cb)
			return false;
		if (ca == '\0')
			return true;
	}
}

/* A YYYY-MM-DD date, or false. */
static bool
ParseDate(const char *s, DateADT *out)
{
	int			y, m, d, n = 0;
	int			y2, m2, d2;

	if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 ||
		s[4] != '-' || s[7] != '-' || !isdigit((unsigned char) s[0]) ||
		!isdigit((unsigned char) s[5]) || !isdigit((unsigned char) s[8]) || y < 1 || m < 1 || m > 12 || d < 1)
		return false;
	j2date(date2j(y, m, d), &y2, &m2, &d2);
	if (y2 != y || m2 != m || d2 != d)
		return false;			/* 2024-02-30 */
	*out = date2j(y, m, d) - POSTGRES_EPOCH_JDATE;
	return true;
}

static void
AppendDate(StringInfo out, DateADT date)
{
	int			y, m, d;

	j2date(date + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	appendStringInfo(out, "%04d-%02d-%02d", y, m, d);
}

/* The items of a list option: "shoes,bags" or "\"At Risk\",Champions". */
static bool
ParseListOption(RuleParse *ps, OptionKey key, char *value)
{
	CouponList list = option_list[key];
	char	   *items[COUPON_MAX_LIST + 1];
	int			n = SplitOutsideQuotes(value, ',', items, COUPON_MAX_LIST);
	RuleDraft  *draft = ps->draft;

	if (n > COUPON_MAX_LIST)
		return FAIL(ps, "Option %s: a list has at most %d items.", option_names[key], COUPON_MAX_LIST);
	for (int i = 0; i < n; i++)
	{
		char	   *item = Unquote(items[i]);
		const char *problem = NameProblem(item);

		if (problem != NULL)
			return FAIL(ps, "Option %s: item %d \"%s\" %s.", option_names[key], i + 1, item, problem);
		if (list == COUPON_COUNTRIES)
		{
			if (strlen(item) != 2 || !isalpha((unsigned char) item[0]) || !isalpha((unsigned char) item[1]))
				return FAIL(ps, "Option countries: \"%s\" is not a two-letter country code (ISO 3166-1).", item);
			item[0] = pg_toupper((unsigned char) item[0]);
			item[1] = pg_toupper((unsigned char) item[1]);
		}
		if (list == COUPON_LIFECYCLE)
		{
			int			stage = -1;

			for (int s = 0; s < (int) lengthof(lifecycle_stages); s++)
				if (SameName(item, lifecycle_stages[s]))
					stage = s;
			if (stage < 0)
				return FAIL(ps, "Option lifecycle: unknown stage \"%s\": use new, active, at_risk, dormant or churned.", item);
			item = pstrdup(lifecycle_stages[stage]);
		}
		for (int j = 0; j < i; j++)
			if (SameName(item, draft->list_item[list][j]))
				return FAIL(ps, "Option %s: \"%s\" is listed twice.", option_names[key], item);
		draft->list_item[list][i] = item;
	}
	draft->list_count[list] = n;
	return true;
}

/* One option: "first_order" or key=value. */
static bool
ParseOption(RuleParse *ps, char *word)
{
	RuleDraft  *draft = ps->draft;
	char	   *eq = strchr(word, '=');
	char	   *value = NULL;
	int			key = -1;
	int64		number;

	if (eq != NULL)
	{
		*eq = '\0';
		value = eq + 1;
	}
	for (int i = 0; i < OPT_COUNT; i++)
		if (pg_strcasecmp(word, option_names[i]) == 0)
			key = i;
	if (key < 0)
		return FAIL(ps, "Unknown option \"%s\": use first_order, min_items, lifecycle, categories, exclude_categories, countries, tiers, segments, valid or stack.", word);
	if (draft->seen[key])
		return FAIL(ps, "Option %s is given twice.", option_names[key]);
	draft->seen[key] = true;
	if (key == OPT_FIRST_ORDER)
	{
		if (value != NULL)
			return FAIL(ps, "Option first_order is a flag and takes no value.");
		draft->first_order = true;
		return true;
	}
	if (value == NULL || *value == '\0')
		return FAIL(ps, "Option %s needs a value, as in %s=...", option_names[key], option_names[key]);
	switch (key)
	{
		case OPT_MIN_ITEMS:
			if (!ParseFixed(value, 0, COUPON_MAX_MIN_ITEMS, &number) || number < 1)
				return FAIL(ps, "Option min_items: \"%s\" is not a whole number from 1 to %d.", value, COUPON_MAX_MIN_ITEMS);
			draft->min_items = (int32) number;
			return true;
		case OPT_VALID:
			{
				char	   *dots = strstr(value, "..");

				if (dots == NULL)
					return FAIL(ps, "Option valid: \"%s\" is not written as YYYY-MM-DD..YYYY-MM-DD.", value);
				*dots = '\0';
				if (!ParseDate(value, &draft->valid_from) || !ParseDate(dots + 2, &draft->valid_until))
					return FAIL(ps, "Option valid: \"%s..%s\" is not written as YYYY-MM-DD..YYYY-MM-DD with real dates.", value, dots + 2);
				draft->has_valid = true;
				return true;
			}
		case OPT_STACK:
			{
				char	   *group = Unquote(value);
				const char *problem = NameProblem(group);

				if (pg_strcasecmp(group, "exclusive") == 0)
				{
					draft->stack = COUPON_STACK_EXCLUSIVE;
					return true;
				}
				if (problem != NULL)
					return FAIL(ps, "Option stack: group \"%s\" %s.", group, problem);
				draft->stack = COUPON_STACK_GROUP;
				draft->stack_group = group;
				return true;
			}
		default:
			return ParseListOption(ps, (OptionKey) key, value);
	}
}

static bool
ParseOptions(RuleParse *ps, char *part)
{
	char	   *cursor = part;

	for (char *word = NextWord(&cursor); word; word = NextWord(&cursor))
		if (!ParseOption(ps, word))
			return false;
	return true;
}

/* An amount and its currency: "10.5" "USD" into step's currency and *amount. */
static bool
ParseMoney(RuleParse *ps, int stepno, const char *what, const char *amount, const char *code,
		   CouponStep *step, int64 *out)
{
	char		currency[4];
	int			minor;

	if (code == NULL || !CurrencyNormalize(code, strlen(code), currency))
		return FAIL(ps, "Step %d: %s currency \"%s\" is not an ISO 4217 currency code.", stepno, what,
					code ? code : "");
	minor = CurrencyMinorUnit(currency, 3);
	if (step->currency[0] != '\0' && strcmp(step->currency, currency) != 0)
		return FAIL(ps, "Step %d: the %s is in %s but the threshold in %s; a step names one currency.",
					stepno, what, currency, step->currency);
	if (!ParseFixed(amount, minor, COUPON_MAX_AMOUNT, out) || *out == 0)
		return FAIL(ps, "Step %d: %s \"%s %s\" is not an amount above zero with at most %d decimals (the minor unit of %s) and below 10^15 minor units.",
					stepno, what, amount, currency, minor, currency);
	memcpy(step->currency, currency, 4);
	step->minor = (int8) minor;
	return true;
}

/* A percent word: "20%" or "12.5%", above 0 and at most 100. */
static bool
ParsePercent(RuleParse *ps, int stepno, char *word, int32 *out)
{
	int			len = strlen(word);
	int64		value;

	word[len - 1] = '\0';
	if (!ParseFixed(word, 2, PG_INT32_MAX, &value))
		return FAIL(ps, "Step %d: percent \"%s%%\" is not a number with at most 2 decimals.", stepno, word);
	if (value == 0 || value > 100 * COUPON_PERCENT_SCALE)
		return FAIL(ps, "Step %d: percent %s%% is not above 0 and at most 100.", stepno, word);
	*out = (int32) value;
	return true;
}

/*
 * One step: "[spend AMOUNT CUR get] REWARD".  Keywords in any case; every
 * word must be used.
 */
static bool
ParseStep(RuleParse *ps, char *part)
{
	RuleDraft  *draft = ps->draft;
	int			stepno = draft->nsteps + 1;
	char	   *w[12];
	int			n = 0;
	int			i = 0;
	char	   *cursor = part;
	CouponStep *step;

	if (draft->nsteps >= COUPON_MAX_STEPS)
		return FAIL(ps, "A rule has at most %d steps.", COUPON_MAX_STEPS);
	step = &draft->step[draft->nsteps];
	memset(step, 0, sizeof(*step));
	step->threshold = -1;
	step->amount = -1;
	step->minor = -1;
	for (char *word = NextWord(&cursor); word; word = NextWord(&cursor))
	{
		if (n == lengthof(w) - 1)
			return FAIL(ps, "Step %d has too many words.", stepno);
		w[n++] = word;
	}
	w[n] = NULL;
	if (pg_strcasecmp(w[0], "spend") == 0)
	{
		if (n < 5 || pg_strcasecmp(w[3], "get") != 0)
			return FAIL(ps, "Step %d: write a threshold as \"spend AMOUNT CURRENCY get REWARD\".", stepno);
		if (!ParseMoney(ps, stepno, "threshold", w[1], w[2], step, &step->threshold))
			return false;
		i = 4;
	}
	if (i + 1 < n && pg_strcasecmp(w[i], "free") == 0 && pg_strcasecmp(w[i + 1], "shipping") == 0)
	{
		step->reward = COUPON_FREE_SHIPPING;
		i += 2;
	}
	else if (i + 1 < n && pg_strcasecmp(w[i], "gift") == 0)
	{
		const char *problem = NameProblem(w[i + 1]);

		if (problem != NULL)
			return FAIL(ps, "Step %d: gift SKU \"%s\" %s.", stepno, w[i + 1], problem);
		step->reward = COUPON_GIFT;
		draft->gift[draft->nsteps] = w[i + 1];
		i += 2;
	}
	else if (i + 1 < n && strlen(w[i]) > 1 && w[i][strlen(w[i]) - 1] == '%' &&
			 pg_strcasecmp(w[i + 1], "off") == 0)
	{
		step->reward = COUPON_PERCENT_OFF;
		if (!ParsePercent(ps, stepno, w[i], &step->percent))
			return false;
		i += 2;
		if (i < n && pg_strcasecmp(w[i], "max") == 0)
		{
			if (i + 2 >= n)
				return FAIL(ps, "Step %d: write a cap as \"max AMOUNT CURRENCY\".", stepno);
			if (!ParseMoney(ps, stepno, "cap", w[i + 1], w[i + 2], step, &step->amount))
				return false;
			i += 3;
		}
	}
	else if (i + 2 < n && pg_strcasecmp(w[i + 2], "off") == 0)
	{
		step->reward = COUPON_AMOUNT_OFF;
		if (!ParseMoney(ps, stepno, "amount off", w[i], w[i + 1], step, &step->amount))
			return false;
		i += 3;
	}
	else
		return FAIL(ps, "Step %d: \"%s\" is not a reward: use AMOUNT CURRENCY off, PERCENT%% off [max AMOUNT CURRENCY], free shipping or gift SKU.",
					stepno, w[i]);
	if (i < n)
		return FAIL(ps, "Step %d: unexpected \"%s\" after the reward.", stepno, w[i]);
	draft->nsteps++;
	return true;
}

/* True when a part is the options part: "first_order" or a word with "=". */
static bool
IsOptionsPart(const char *part)
{
	char	   *copy = pstrdup(part);
	char	   *cursor = copy;
	char	   *first = NextWord(&cursor);

	return strchr(part, '=') != NULL || (first && pg_strcasecmp(first, "first_order") == 0);
}

/* The text form: options (optional), then steps, separated by "|". */
static bool
ParseRule(RuleParse *ps, const char *input)
{
	char	   *copy = pstrdup(input);
	char	   *parts[COUPON_MAX_STEPS + 2];
	int			n;

	if (IsBlank(input))
		return FAIL(ps, "A rule needs at least one step.");
	n = SplitOutsideQuotes(copy, '|', parts, COUPON_MAX_STEPS + 1);
	if (n < 0)
		return FAIL(ps, "A double quote is not closed.");
	if (n > COUPON_MAX_STEPS + 1)
		return FAIL(ps, "A rule has at most %d steps.", COUPON_MAX_STEPS);
	for (int i = 0; i < n; i++)
	{
		if (IsBlank(parts[i]))
			return FAIL(ps, "Part %d (between two \"|\", or before the first or after the last) is empty.", i + 1);
		if (i == 0 && IsOptionsPart(parts[i]))
		{
			if (!ParseOptions(ps, parts[i]))
				return false;
		}
		else if (i > 0 && IsOptionsPart(parts[i]))
			return FAIL(ps, "Part %d: options come first, before the first \"|\".", i + 1);
		else if (!ParseStep(ps, parts[i]))
			return false;
	}
	return true;
}

/*
 * The rules every rule keeps, whether it comes from text or binary input:
 * at least one step; thresholds on every step or on none; without
 * thresholds, one step; with them, rising strictly per currency in step
 * order; percents in (0, 100]; categories not both included and excluded.
 */
static bool
CheckDraft(RuleParse *ps)
{
	RuleDraft  *d = ps->draft;
	bool		thresholds = d->nsteps > 0 && d->step[0].threshold >= 0;

	if (d->nsteps == 0)
		return FAIL(ps, "A rule needs at least one step.");
	if (d->has_valid && d->valid_from > d->valid_until)
		return FAIL(ps, "Option valid: the first date is after the last.");
	for (int i = 0; i < d->nsteps; i++)
	{
		CouponStep *s = &d->step[i];

		if ((s->threshold >= 0) != thresholds)
			return FAIL(ps, "Step %d: either every step has a \"spend AMOUNT CURRENCY get\" threshold or none has.", i + 1);
		if (!thresholds && d->nsteps > 1)
			return FAIL(ps, "Step %d: a rule without thresholds has one step.", i + 1);
		for (int j = i - 1; thresholds && j >= 0; j--)
			if (strcmp(d->step[j].currency, s->currency) == 0)
			{
				if (s->threshold <= d->step[j].threshold)
					return FAIL(ps, "Step %d: threshold %s %s does not rise above %s %s.", i + 1,
								FormatFixed(s->threshold, s->minor), s->currency,
								FormatFixed(d->step[j].threshold, s->minor), s->currency);
				break;
			}
	}
	for (int i = 0; i < d->list_count[COUPON_CATEGORIES]; i++)
		for (int j = 0; j < d->list_count[COUPON_EXCLUDE_CATEGORIES]; j++)
			if (SameName(d->list_item[COUPON_CATEGORIES][i], d->list_item[COUPON_EXCLUDE_CATEGORIES][j]))
				return FAIL(ps, "Category \"%s\" is both in categories and in exclude_categories.",
							d->list_item[COUPON_CATEGORIES][i]);
	return true;
}

/* Appends s and its NUL to the strings; returns its offset. */
static uint16
AddString(StringInfo strings, const char *s)
{
	int			offset = strings->len;

	appendBinaryStringInfo(strings, s, strlen(s) + 1);
	return (uint16) offset;
}

static CouponRule *
PackDraft(const RuleDraft *d)
{
	StringInfoData strings;
	CouponStep	steps[COUPON_MAX_STEPS];
	CouponRule *rule;
	Size		size;
	int			list_start[COUPON_NLISTS];
	int			stack_group = 0;

	initStringInfo(&strings);
	memcpy(steps, d->step, sizeof(CouponStep) * d->nsteps);
	for (int l = 0; l < COUPON_NLISTS; l++)
	{
		list_start[l] = strings.len;
		for (int i = 0; i < d->list_count[l]; i++)
			AddString(&strings, d->list_item[l][i]);
	}
	if (d->stack == COUPON_STACK_GROUP)
		stack_group = AddString(&strings, d->stack_group);
	for (int i = 0; i < d->nsteps; i++)
		steps[i].gift = steps[i].reward == COUPON_GIFT ? AddString(&strings, d->gift[i]) : 0;
	size = offsetof(CouponRule, steps) + sizeof(CouponStep) * d->nsteps + strings.len;
	rule = palloc0(size);
	SET_VARSIZE(rule, size);
	rule->first_order = d->first_order;
	rule->stack = (uint8) d->stack;
	rule->has_valid = d->has_valid;
	rule->nsteps = (int16) d->nsteps;
	rule->stack_group = (uint16) stack_group;
	rule->min_items = d->min_items;
	rule->valid_from = d->has_valid ? d->valid_from : 0;
	rule->valid_until = d->has_valid ? d->valid_until : 0;
	for (int l = 0; l < COUPON_NLISTS; l++)
	{
		rule->list_start[l] = d->list_count[l] ? (uint16) list_start[l] : 0;
		rule->list_count[l] = (uint8) d->list_count[l];
	}
	for (int i = 0; i < d->nsteps; i++)
	{
		/* Field by field: the padding of the packed steps stays zero. */
		rule->steps[i].threshold = steps[i].threshold;
		rule->steps[i].amount = steps[i].amount;
		rule->steps[i].percent = steps[i].percent;
		rule->steps[i].reward = steps[i].reward;
		rule->steps[i].minor = steps[i].minor;
		memcpy(rule->steps[i].currency, steps[i].currency, 4);
		rule->steps[i].gift = steps[i].gift;
	}
	memcpy((char *) CouponStrings(rule), strings.data, strings.len);
	return rule;
}

const char *
CouponListItem(const CouponRule *rule, CouponList list, int i)
{
	const char *item = CouponStrings(rule) + rule->list_start[list];

	while (i-- > 0)
		item += strlen(item) + 1;
	return item;
}

/* Reads and checks a rule's text; NULL after a (soft) error. */
static CouponRule *
ReadRule(const char *input, bool binary, Node *escontext)
{
	RuleDraft  *draft = palloc0(sizeof(RuleDraft));
	RuleParse	ps = {input, binary, escontext, draft};

	if (!ParseRule(&ps, input) || !CheckDraft(&ps))
		return NULL;
	return PackDraft(draft);
}

/* A list item, quoted when it holds a space. */
static void
AppendName(StringInfo out, const char *name)
{
	if (strchr(name, ' ') != NULL)
		appendStringInfo(out, "\"%s\"", name);
	else
		appendStringInfoString(out, name);
}

static void
AppendMoney(StringInfo out, int64 amount, const CouponStep *step)
{
	AppendFixed(out, amount, step->minor);
	appendStringInfo(out, " %s", step->currency);
}

/* The canonical text: options in the order of option_names, lists as given. */
static char *
RuleText(const CouponRule *rule)
{
	StringInfoData out;
	const char *strings = CouponStrings(rule);

	initStringInfo(&out);
	if (rule->first_order)
		appendStringInfoString(&out, "first_order ");
	if (rule->min_items > 0)
		appendStringInfo(&out, "min_items=%d ", rule->min_items);
	for (int key = OPT_LIFECYCLE; key <= OPT_SEGMENTS; key++)
	{
		CouponList list = option_list[key];

		if (rule->list_count[list] == 0)
			continue;
		appendStringInfo(&out, "%s=", option_names[key]);
		for (int i = 0; i < rule->list_count[list]; i++)
		{
			if (i > 0)
				appendStringInfoChar(&out, ',');
			AppendName(&out, CouponListItem(rule, list, i));
		}
		appendStringInfoChar(&out, ' ');
	}
	if (rule->has_valid)
	{
		appendStringInfoString(&out, "valid=");
		AppendDate(&out, rule->valid_from);
		appendStringInfoString(&out, "..");
		AppendDate(&out, rule->valid_until);
		appendStringInfoChar(&out, ' ');
	}
	if (rule->stack == COUPON_STACK_EXCLUSIVE)
		appendStringInfoString(&out, "stack=exclusive ");
	else if (rule->stack == COUPON_STACK_GROUP)
	{
		appendStringInfoString(&out, "stack=");
		AppendName(&out, strings + rule->stack_group);
		appendStringInfoChar(&out, ' ');
	}
	if (out.len > 0)
		appendStringInfoString(&out, "| ");
	for (int i = 0; i < rule->nsteps; i++)
	{
		const CouponStep *s = &rule->steps[i];

		if (i > 0)
			appendStringInfoString(&out, " | ");
		if (s->threshold >= 0)
		{
			appendStringInfoString(&out, "spend ");
			AppendMoney(&out, s->threshold, s);
			appendStringInfoString(&out, " get ");
		}
		switch ((CouponReward) s->reward)
		{
			case COUPON_AMOUNT_OFF:
				AppendMoney(&out, s->amount, s);
				appendStringInfoString(&out, " off");
				break;
			case COUPON_PERCENT_OFF:
				AppendFixed(&out, s->percent, 2);
				appendStringInfoString(&out, "% off");
				if (s->amount >= 0)
				{
					appendStringInfoString(&out, " max ");
					AppendMoney(&out, s->amount, s);
				}
				break;
			case COUPON_FREE_SHIPPING:
				appendStringInfoString(&out, "free shipping");
				break;
			case COUPON_GIFT:
				appendStringInfo(&out, "gift %s", strings + s->gift);
				break;
		}
	}
	return out.data;
}

PG_FUNCTION_INFO_V1(coupon_rule_in);
/* coupon_rule_in: the text form, every rule checked; soft errors on 16+. */
Datum
coupon_rule_in(PG_FUNCTION_ARGS)
{
	char	   *input = PG_GETARG_CSTRING(0);
	CouponRule *rule = ReadRule(input, false, fcinfo->context);

	if (rule == NULL)
		PG_RETURN_NULL();
	PG_RETURN_COUPON_RULE_P(rule);
}

PG_FUNCTION_INFO_V1(coupon_rule_out);
/* coupon_rule_out: the canonical text form. */
Datum
coupon_rule_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(RuleText(PG_GETARG_COUPON_RULE_P(0)));
}

#define COUPON_BINARY_VERSION 1

PG_FUNCTION_INFO_V1(coupon_rule_recv);
/*
 * coupon_rule_recv: a version byte, then the text form in the client's
 * encoding, read by the text parser: binary input accepts exactly what the
 * text form accepts (errors 22P03).
 */
Datum
coupon_rule_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			version = pq_getmsgbyte(buf);
	char	   *text;
	int			nbytes;

	if (version != COUPON_BINARY_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid external coupon_rule value"),
				 errdetail("Version %d is not a known coupon_rule binary format (%d is).",
						   version, COUPON_BINARY_VERSION)));
	text = pq_getmsgtext(buf, buf->len - buf->cursor, &nbytes);
	if ((int) strlen(text) != nbytes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid external coupon_rule value"),
				 errdetail("The rule's text contains a zero byte.")));
	PG_RETURN_COUPON_RULE_P(ReadRule(text, true, NULL));
}

PG_FUNCTION_INFO_V1(coupon_rule_send);
/* coupon_rule_send: the version byte and the canonical text. */
Datum
coupon_rule_send(PG_FUNCTION_ARGS)
{
	char	   *text = RuleText(PG_GETARG_COUPON_RULE_P(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, COUPON_BINARY_VERSION);
	pq_sendtext(&buf, text, strlen(text));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Packed rules are canonical (zeroed padding): equal rules have equal bytes. */
static bool
RulesEqual(FunctionCallInfo fcinfo)
{
	CouponRule *a = PG_GETARG_COUPON_RULE_P(0);
	CouponRule *b = PG_GETARG_COUPON_RULE_P(1);

	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

PG_FUNCTION_INFO_V1(coupon_rule_eq);
/* coupon_rule_eq: the same rule (same canonical text). */
Datum
coupon_rule_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(RulesEqual(fcinfo));
}

PG_FUNCTION_INFO_V1(coupon_rule_ne);
/* coupon_rule_ne: not the same rule. */
Datum
coupon_rule_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!RulesEqual(fcinfo));
}

PG_FUNCTION_INFO_V1(coupon_rule_stack);
/* coupon_rule_stack: 'exclusive', the group name, or NULL (no stack= option). */
Datum
coupon_rule_stack(PG_FUNCTION_ARGS)
{
	CouponRule *rule = PG_GETARG_COUPON_RULE_P(0);

	if (rule->stack == COUPON_STACK_EXCLUSIVE)
		PG_RETURN_TEXT_P(cstring_to_text("exclusive"));
	if (rule->stack == COUPON_STACK_GROUP)
		PG_RETURN_TEXT_P(cstring_to_text(CouponStrings(rule) + rule->stack_group));
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(coupon_rule_valid_from);
/* coupon_rule_valid_from: the first date of valid=, NULL without one. */
Datum
coupon_rule_valid_from(PG_FUNCTION_ARGS)
{
	CouponRule *rule = PG_GETARG_COUPON_RULE_P(0);

	if (!rule->has_valid)
		PG_RETURN_NULL();
	PG_RETURN_DATEADT(rule->valid_from);
}

PG_FUNCTION_INFO_V1(coupon_rule_valid_until);
/* coupon_rule_valid_until: the last date of valid=, NULL when open-ended. */
Datum
coupon_rule_valid_until(PG_FUNCTION_ARGS)
{
	CouponRule *rule = PG_GETARG_COUPON_RULE_P(0);

	if (!rule->has_valid)
		PG_RETURN_NULL();
	PG_RETURN_DATEADT(rule->valid_until);
}

PG_FUNCTION_INFO_V1(coupon_rule_first_order);
/* coupon_rule_first_order: whether the rule is for a member's first order only. */
Datum
coupon_rule_first_order(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_GETARG_COUPON_RULE_P(0)->first_order != 0);
}
