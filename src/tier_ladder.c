/*
 * tier_ladder.c
 *		The loyalty.tier_ladder type: input, output, binary I/O, lookups.
 *
 * Text form (docs/reference.md):
 *   basis=spend window=365d grace=30d downgrade=step | Member 0 x1 | Silver 500 x1.25 | ...
 * Options first (each optional: basis spend|points|orders, window in days,
 * grace in days, downgrade step|drop), then the levels from the lowest:
 * a name (words), a threshold and a point multiplier.  Thresholds start at
 * 0 and rise strictly; names are unique; multipliers are above zero.
 * Every rule is checked on text and binary input alike, and an error names
 * the part of the input that breaks it.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "tier_ladder.h"
#include "type_input.h"

/* A ladder being read, before it is packed. */
typedef struct LadderDraft
{
	TierBasis	basis;
	TierDowngrade downgrade;
	int32		window_days;
	int32		grace_days;
	int			nlevels;
	int64		threshold[TIER_MAX_LEVELS];
	int32		multiplier[TIER_MAX_LEVELS];
	char	   *name[TIER_MAX_LEVELS];
} LadderDraft;

static const char *const basis_names[] = {"spend", "points", "orders"};
static const char *const downgrade_names[] = {"step", "drop"};

#define LADDER_EXAMPLE "'basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2'"
#define LADDER_BLANKS " \t\n\r\f\v"	/* what separates words and options */
#define LADDER_MAX_DAYS 36500	/* window and grace: at most 100 years */

/*
 * Reports a ladder that breaks a rule and returns false.  Text input (input
 * given) raises 22P02 quoting the input; binary input (input NULL) raises
 * 22P03.  detail names the part at fault; hint NULL gives the example.
 */
static bool
LadderError(Node *escontext, const char *input, const char *detail, const char *hint)
{
	if (input == NULL)
		TypeInputError(escontext,
					   errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					   errmsg("invalid external tier_ladder value"),
					   errdetail_internal("%s", detail));
	else
		TypeInputError(escontext,
					   errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					   errmsg("invalid input syntax for type %s: \"%s\"", "tier_ladder", input),
					   errdetail_internal("%s", detail),
					   errhint("%s", hint ? hint : "Write for example " LADDER_EXAMPLE "."));
	return false;
}

/*
 * Reads a non-negative decimal with at most `decimals` decimals into a fixed
 * point integer (value x 10^decimals).  False when it is not one.
 */
static bool
ParseFixed(const char *s, int decimals, int64 *out)
{
	int64		value = 0;
	int			seen_decimals = -1;

	if (*s == '\0')
		return false;
	for (; *s; s++)
	{
		if (*s == '.' && seen_decimals < 0)
			seen_decimals = 0;
		else if (*s >= '0' && *s <= '9')
		{
			if (seen_decimals >= 0 && ++seen_decimals > decimals)
				return false;
			if (value > (PG_INT64_MAX - 9) / 10)
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
		if (value > PG_INT64_MAX / 10)
			return false;
		value *= 10;
	}
	*out = value;
	return true;
}

/*
 * A fixed point integer as text, without trailing zeros ("2000.5").  A
 * negative value only shows up in an error about a binary ladder.
 */
static char *
FormatFixed(int64 value, int decimals)
{
	uint64		magnitude = value < 0 ? -(uint64) value : (uint64) value;
	const char *sign = value < 0 ? "-" : "";
	uint64		scale = 1;
	uint64		fraction;
	char		digits[32];
	int			len;

	for (int i = 0; i < decimals; i++)
		scale *= 10;
	fraction = magnitude % scale;
	if (fraction == 0)
		return psprintf("%s" UINT64_FORMAT, sign, magnitude / scale);
	snprintf(digits, sizeof(digits), "%0*" INT64_MODIFIER "u", decimals, fraction);
	len = strlen(digits);
	while (len > 0 && digits[len - 1] == '0')
		digits[--len] = '\0';
	return psprintf("%s" UINT64_FORMAT ".%s", sign, magnitude / scale, digits);
}

/* A number of days written "30d" (or "30"). */
static bool
ParseDays(const char *s, int32 *out)
{
	int64		days;
	char	   *copy = pstrdup(s);
	int			len = strlen(copy);

	if (len > 0 && copy[len - 1] == 'd')
		copy[len - 1] = '\0';
	if (!ParseFixed(copy, 0, &days) || days > 36500)
		return false;
	*out = (int32) days;
	return true;
}

static int
NameIndex(const char *const *names, int n, const char *value)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], value) == 0)
			return i;
	return -1;
}

/* A word written like a multiplier: "x" then digits and dots ("x1.25"). */
static bool
IsMultiplierWord(const char *word, int len)
{
	bool		digit = false;

	if (len < 2 || word[0] != 'x')
		return false;
	for (int i = 1; i < len; i++)
	{
		if (word[i] >= '0' && word[i] <= '9')
			digit = true;
		else if (word[i] != '.')
			return false;
	}
	return digit;
}

/* The options part: "basis=spend window=365d grace=30d downgrade=step". */
static bool
ParseOptions(char *part, const char *input, LadderDraft *draft, Node *escontext)
{
	char	   *save = NULL;
	bool		seen[4] = {false, false, false, false};

	for (char *tok = strtok_r(part, LADDER_BLANKS, &save); tok; tok = strtok_r(NULL, LADDER_BLANKS, &save))
	{
		char	   *eq = strchr(tok, '=');
		char	   *value;
		int			key;
		int			found = -1;

		if (eq == NULL)
			return LadderError(escontext, input,
							   psprintf("Option \"%s\" is not of the form key=value.", tok), NULL);
		*eq = '\0';
		value = eq + 1;
		key = NameIndex((const char *const[]) {"basis", "window", "grace", "downgrade"}, 4, tok);
		if (key < 0)
			return LadderError(escontext, input,
							   psprintf("Unknown option \"%s\": use basis, window, grace or downgrade.", tok), NULL);
		if (seen[key])
			return LadderError(escontext, input,
							   psprintf("Option \"%s\" is given twice.", tok), NULL);
		seen[key] = true;
		if (key == 0 && (found = NameIndex(basis_names, lengthof(basis_names), value)) >= 0)
			draft->basis = (TierBasis) found;
		else if (key == 1 && ParseDays(value, &draft->window_days) && draft->window_days > 0)
			continue;
		else if (key == 2 && ParseDays(value, &draft->grace_days))
			continue;
		else if (key == 3 && (found = NameIndex(downgrade_names, lengthof(downgrade_names), value)) >= 0)
			draft->downgrade = (TierDowngrade) found;
		else
			return LadderError(escontext, input,
							   psprintf("Bad value \"%s\" for option \"%s\": %s.", value, tok,
										key == 0 ? "use spend, points or orders" :
										key == 3 ? "use step or drop" :
										key == 1 ? "use a number of days from 1 to 36500, as in 365d" :
										"use a number of days from 0 to 36500, as in 30d"), NULL);
	}
	return true;
}

/*
 * One level: "Silver 500 x1.25".  The name is every word before the last
 * two; a name word written like a multiplier means a "|" is missing
 * ("Member 0 x1 Silver 500 x1.25" is two levels, not one named
 * "Member 0 x1 Silver").
 */
static bool
ParseLevel(char *part, const char *input, LadderDraft *draft, Node *escontext)
{
	char	  **words = palloc(sizeof(char *) * (strlen(part) / 2 + 1));
	int			nwords = 0;
	char	   *save = NULL;
	int			level = draft->nlevels;
	StringInfoData name;
	int64		multiplier;
	char	   *shown = pstrdup(part + strspn(part, LADDER_BLANKS));	/* for errors, trimmed */
	int			shown_len = strlen(shown);

	while (shown_len > 0 && strchr(LADDER_BLANKS, shown[shown_len - 1]) != NULL)
		shown[--shown_len] = '\0';
	for (char *tok = strtok_r(part, LADDER_BLANKS, &save); tok; tok = strtok_r(NULL, LADDER_BLANKS, &save))
		words[nwords++] = tok;
	if (level >= TIER_MAX_LEVELS)
		return LadderError(escontext, input,
						   psprintf("A ladder has at most %d levels.", TIER_MAX_LEVELS), NULL);
	if (nwords < 3)
		return LadderError(escontext, input,
						   psprintf("Level %d \"%s\" is not \"name threshold xmultiplier\".", level + 1, shown), NULL);
	for (int i = 0; i < nwords - 2; i++)
		if (i > 0 && IsMultiplierWord(words[i], strlen(words[i])))
			return LadderError(escontext, input,
							   psprintf("Level %d \"%s\": a \"|\" is missing after \"%s\".", level + 1, shown, words[i]),
							   "Separate levels with \"|\", as in 'Member 0 x1 | Silver 500 x1.25'.");

	initStringInfo(&name);
	for (int i = 0; i < nwords - 2; i++)
		appendStringInfo(&name, "%s%s", i > 0 ? " " : "", words[i]);
	draft->name[level] = name.data;
	if (!ParseFixed(words[nwords - 2], 4, &draft->threshold[level]))
		return LadderError(escontext, input,
						   psprintf("Level \"%s\": threshold \"%s\" is not a number of zero or more with at most 4 decimals.",
									name.data, words[nwords - 2]), NULL);
	if (words[nwords - 1][0] != 'x' || !ParseFixed(words[nwords - 1] + 1, 3, &multiplier))
		return LadderError(escontext, input,
						   psprintf("Level \"%s\": multiplier \"%s\" is not written as x followed by a number, as in x1.25.",
									name.data, words[nwords - 1]), NULL);
	if (multiplier > 100 * TIER_MULTIPLIER_SCALE)
		multiplier = PG_INT32_MAX;	/* rejected by CheckDraft */
	draft->multiplier[level] = (int32) multiplier;
	draft->nlevels++;
	return true;
}

/* True when s holds nothing but blanks. */
static bool
IsBlank(const char *s)
{
	return s[strspn(s, LADDER_BLANKS)] == '\0';
}

/*
 * The text form: an optional options part, then levels, separated by "|".
 * Every part between two "|" must hold something: an empty one is a typo,
 * not a level to skip.
 */
static bool
ParseLadder(const char *input, LadderDraft *draft, Node *escontext)
{
	char	   *part = pstrdup(input);

	if (IsBlank(input))
		return LadderError(escontext, input, "A ladder needs at least one level.", NULL);
	for (int partno = 1;; partno++)
	{
		char	   *bar = strchr(part, '|');
		bool		ok;

		if (bar != NULL)
			*bar = '\0';
		if (IsBlank(part))
			return LadderError(escontext, input,
							   psprintf("Part %d (between two \"|\", or before the first or after the last) is empty.", partno),
							   "Remove the extra \"|\".");
		if (partno == 1 && strchr(part, '=') != NULL)
			ok = ParseOptions(part, input, draft, escontext);
		else
			ok = ParseLevel(part, input, draft, escontext);
		if (!ok)
			return false;
		if (bar == NULL)
			return true;
		part = bar + 1;
	}
}

/*
 * Why a character may not be in a level name, or NULL when it may: names
 * are printable text.  Code points are Unicode in a UTF-8 database; in
 * other encodings only the ASCII controls are known and refused.
 */
static const char *
NameCharProblem(pg_wchar c)
{
	if (c < 0x20 || (c >= 0x7F && c <= 0x9F))
		return "the control character";
	if (c == 0xAD || c == 0x61C || c == 0x180E || (c >= 0x200B && c <= 0x200F) ||
		(c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x206F) ||
		c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB))
		return "the invisible character";
	if (c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
		c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000)
		return "the space character";
	return NULL;
}

/*
 * The rules of a level name, or NULL when it keeps them: 1 to TIER_MAX_NAME
 * characters; words of printable characters separated by one space, so the
 * text form reads back as the same name; no "|" (it separates levels) and
 * no word written like a multiplier (it would read as the end of a level).
 */
static char *
NameProblem(const char *name, int level)
{
	int			len = strlen(name);
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;
	const char *word = name;

	if (len == 0)
		return psprintf("Level %d has an empty name.", level);
	if (pg_mbstrlen_with_len(name, len) > TIER_MAX_NAME)
		return psprintf("Level %d: name \"%s\" is longer than %d characters.", level, name, TIER_MAX_NAME);
	if (name[0] == ' ' || name[len - 1] == ' ' || strstr(name, "  ") != NULL)
		return psprintf("Level %d: name \"%s\" starts or ends with a space or has two in a row.", level, name);
	for (const char *p = name;; p += utf8 ? pg_utf_mblen((const unsigned char *) p) : pg_mblen(p))
	{
		pg_wchar	c = utf8 ? utf8_to_unicode((const unsigned char *) p) : (unsigned char) *p;
		const char *problem = NameCharProblem(utf8 || c < 0x80 ? c : 'a');

		if (*p == ' ' || *p == '\0')
		{
			if (IsMultiplierWord(word, p - word))
				return psprintf("Level %d: name \"%s\" has the word \"%s\", which reads as a multiplier.",
								level, name, pnstrdup(word, p - word));
			if (*p == '\0')
				break;
			word = p + 1;
		}
		else if (*p == '|')
			return psprintf("Level %d: name \"%s\" contains \"|\", which separates levels.", level, name);
		else if (problem != NULL)
			return psprintf("Level %d: name \"%s\" contains %s U+%04X.", level, name, problem, c);
	}
	return NULL;
}

/*
 * The rules every ladder keeps, whether it comes from text or binary input:
 * the one check both share, so that binary input accepts nothing the text
 * form cannot write and read back.  input NULL: binary input.
 */
static bool
CheckDraft(const LadderDraft *draft, const char *input, Node *escontext)
{
	if (draft->nlevels == 0)
		return LadderError(escontext, input, "A ladder needs at least one level.", NULL);
	if (draft->nlevels > TIER_MAX_LEVELS)
		return LadderError(escontext, input,
						   psprintf("A ladder has at most %d levels.", TIER_MAX_LEVELS), NULL);
	if ((int) draft->basis < 0 || draft->basis >= lengthof(basis_names) ||
		(int) draft->downgrade < 0 || draft->downgrade >= lengthof(downgrade_names))
		return LadderError(escontext, input,
						   psprintf("Basis %d or downgrade %d is not a known policy.",
									(int) draft->basis, (int) draft->downgrade), NULL);
	if (draft->window_days <= 0 || draft->window_days > LADDER_MAX_DAYS ||
		draft->grace_days < 0 || draft->grace_days > LADDER_MAX_DAYS)
		return LadderError(escontext, input,
						   psprintf("The window (%d days) must be 1 to %d days and the grace (%d days) 0 to %d days.",
									draft->window_days, LADDER_MAX_DAYS, draft->grace_days, LADDER_MAX_DAYS),
						   NULL);
	if (draft->threshold[0] != 0)
		return LadderError(escontext, input,
						   psprintf("The first level \"%s\" must start at threshold 0, not %s.",
									draft->name[0], FormatFixed(draft->threshold[0], 4)), NULL);
	for (int i = 0; i < draft->nlevels; i++)
	{
		char	   *problem = NameProblem(draft->name[i], i + 1);

		if (problem != NULL)
			return LadderError(escontext, input, problem,
							   "A level name is 1 to 63 printable characters: words separated by one space, without \"|\".");
		if (draft->multiplier[i] <= 0 || draft->multiplier[i] > 100 * TIER_MULTIPLIER_SCALE)
			return LadderError(escontext, input,
							   psprintf("Level \"%s\": the multiplier must be above 0 and at most 100.",
										draft->name[i]), NULL);
		if (i > 0 && draft->threshold[i] <= draft->threshold[i - 1])
			return LadderError(escontext, input,
							   psprintf("Level \"%s\": threshold %s must be above the threshold of \"%s\" (%s).",
										draft->name[i], FormatFixed(draft->threshold[i], 4),
										draft->name[i - 1], FormatFixed(draft->threshold[i - 1], 4)), NULL);
		for (int j = 0; j < i; j++)
			if (pg_strcasecmp(draft->name[i], draft->name[j]) == 0)
				return LadderError(escontext, input,
								   psprintf("Level name \"%s\" is used twice.", draft->name[i]), NULL);
	}
	return true;
}

static TierLadder *
PackDraft(const LadderDraft *draft)
{
	Size		names = 0;
	Size		size;
	TierLadder *ladder;
	char	   *dest;

	for (int i = 0; i < draft->nlevels; i++)
		names += strlen(draft->name[i]);
	size = offsetof(TierLadder, levels) + sizeof(TierLevel) * draft->nlevels + names;
	ladder = palloc0(size);
	SET_VARSIZE(ladder, size);
	ladder->basis = (uint8) draft->basis;
	ladder->downgrade = (uint8) draft->downgrade;
	ladder->nlevels = (int16) draft->nlevels;
	ladder->window_days = draft->window_days;
	ladder->grace_days = draft->grace_days;
	dest = (char *) TierNames(ladder);
	names = 0;
	for (int i = 0; i < draft->nlevels; i++)
	{
		int			len = strlen(draft->name[i]);

		ladder->levels[i].threshold = draft->threshold[i];
		ladder->levels[i].multiplier = draft->multiplier[i];
		ladder->levels[i].name_offset = (uint16) names;
		ladder->levels[i].name_length = (uint16) len;
		memcpy(dest + names, draft->name[i], len);
		names += len;
	}
	return ladder;
}

static void
DraftDefaults(LadderDraft *draft)
{
	memset(draft, 0, sizeof(*draft));
	draft->basis = TIER_BASIS_SPEND;
	draft->downgrade = TIER_DOWNGRADE_STEP;
	draft->window_days = 365;
	draft->grace_days = 0;
}

static char *
LevelName(const TierLadder *ladder, int level)
{
	return pnstrdup(TierNames(ladder) + ladder->levels[level].name_offset,
					ladder->levels[level].name_length);
}

char *
TierLevelName(const TierLadder *ladder, int level)
{
	return LevelName(ladder, level);
}

/* The level of a tier name; 0 (the first level) for NULL or a name not on the ladder. */
int
TierLevelNamed(const TierLadder *ladder, const char *name)
{
	if (name == NULL)
		return 0;
	for (int i = 0; i < ladder->nlevels; i++)
		if (ladder->levels[i].name_length == strlen(name) &&
			memcmp(TierNames(ladder) + ladder->levels[i].name_offset, name,
				   ladder->levels[i].name_length) == 0)
			return i;
	return 0;
}

/* The highest level whose threshold is at most value (x TIER_THRESHOLD_SCALE). */
int
TierLevelFor(const TierLadder *ladder, int64 value_scaled)
{
	int			level = 0;

	for (int i = 1; i < ladder->nlevels; i++)
		if (ladder->levels[i].threshold <= value_scaled)
			level = i;
	return level;
}

PG_FUNCTION_INFO_V1(tier_ladder_in);
/* tier_ladder_in: the text form, every rule checked; soft errors on 16+. */
Datum
tier_ladder_in(PG_FUNCTION_ARGS)
{
	char	   *input = PG_GETARG_CSTRING(0);
	Node	   *escontext = fcinfo->context;
	LadderDraft draft;

	DraftDefaults(&draft);
	if (!ParseLadder(input, &draft, escontext) || !CheckDraft(&draft, input, escontext))
		PG_RETURN_NULL();
	PG_RETURN_TIER_LADDER_P(PackDraft(&draft));
}

PG_FUNCTION_INFO_V1(tier_ladder_out);
/* tier_ladder_out: the canonical text form, every option written. */
Datum
tier_ladder_out(PG_FUNCTION_ARGS)
{
	TierLadder *ladder = PG_GETARG_TIER_LADDER_P(0);
	StringInfoData out;

	initStringInfo(&out);
	appendStringInfo(&out, "basis=%s window=%dd grace=%dd downgrade=%s",
					 basis_names[ladder->basis], ladder->window_days, ladder->grace_days,
					 downgrade_names[ladder->downgrade]);
	for (int i = 0; i < ladder->nlevels; i++)
		appendStringInfo(&out, " | %s %s x%s", LevelName(ladder, i),
						 FormatFixed(ladder->levels[i].threshold, 4),
						 FormatFixed(ladder->levels[i].multiplier, 3));
	PG_RETURN_CSTRING(out.data);
}

PG_FUNCTION_INFO_V1(tier_ladder_recv);
/*
 * tier_ladder_recv: the binary form, then the rules of the text form
 * (CheckDraft): a ladder read in binary prints as text that reads back.
 */
Datum
tier_ladder_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	LadderDraft draft;

	DraftDefaults(&draft);
	draft.basis = (TierBasis) pq_getmsgbyte(buf);
	draft.downgrade = (TierDowngrade) pq_getmsgbyte(buf);
	draft.window_days = pq_getmsgint(buf, 4);
	draft.grace_days = pq_getmsgint(buf, 4);
	draft.nlevels = (int16) pq_getmsgint(buf, 2);
	/* The count bounds the draft's arrays: checked before the levels are read. */
	if (draft.nlevels < 0 || draft.nlevels > TIER_MAX_LEVELS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid external tier_ladder value"),
				 errdetail("A ladder has 1 to %d levels, not %d.", TIER_MAX_LEVELS, draft.nlevels)));
	for (int i = 0; i < draft.nlevels; i++)
	{
		int			nbytes;

		draft.threshold[i] = pq_getmsgint64(buf);
		draft.multiplier[i] = pq_getmsgint(buf, 4);
		draft.name[i] = pq_getmsgtext(buf, pq_getmsgint(buf, 4), &nbytes);
		if ((int) strlen(draft.name[i]) != nbytes)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid external tier_ladder value"),
					 errdetail("The name of level %d contains a zero byte.", i + 1)));
	}
	CheckDraft(&draft, NULL, NULL);
	PG_RETURN_TIER_LADDER_P(PackDraft(&draft));
}

PG_FUNCTION_INFO_V1(tier_ladder_send);
/* tier_ladder_send: options, then each level's threshold, multiplier and name. */
Datum
tier_ladder_send(PG_FUNCTION_ARGS)
{
	TierLadder *ladder = PG_GETARG_TIER_LADDER_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, ladder->basis);
	pq_sendbyte(&buf, ladder->downgrade);
	pq_sendint32(&buf, ladder->window_days);
	pq_sendint32(&buf, ladder->grace_days);
	pq_sendint16(&buf, ladder->nlevels);
	for (int i = 0; i < ladder->nlevels; i++)
	{
		char	   *plain = LevelName(ladder, i);
		char	   *name = pg_server_to_client(plain, strlen(plain));

		pq_sendint64(&buf, ladder->levels[i].threshold);
		pq_sendint32(&buf, ladder->levels[i].multiplier);
		/* The name in the client's encoding, its length first. */
		pq_sendint32(&buf, strlen(name));
		pq_sendbytes(&buf, name, strlen(name));
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* A numeric as a threshold-scaled integer, floored, clamped to int64; NaN reaches nothing. */
int64
TierScaledValue(Datum value)
{
	Datum		scaled = DirectFunctionCall1(numeric_floor,
											 DirectFunctionCall2(numeric_mul, value,
																 DirectFunctionCall1(int8_numeric,
																					 Int64GetDatum(TIER_THRESHOLD_SCALE))));
	Datum		max = DirectFunctionCall1(int8_numeric, Int64GetDatum(PG_INT64_MAX));

	if (numeric_is_nan(DatumGetNumeric(value)))
		return PG_INT64_MIN;
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, scaled, max)) >= 0)
		return PG_INT64_MAX;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, scaled));
}

PG_FUNCTION_INFO_V1(tier_of);
/* loyalty.tier_of(ladder, value): the name of the level value reaches. */
Datum
tier_of(PG_FUNCTION_ARGS)
{
	TierLadder *ladder = PG_GETARG_TIER_LADDER_P(0);

	PG_RETURN_TEXT_P(cstring_to_text(LevelName(ladder,
											   TierLevelFor(ladder, TierScaledValue(PG_GETARG_DATUM(1))))));
}

/* A fixed point integer as a numeric without trailing zeros. */
static Datum
FixedNumeric(int64 value, int decimals)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum(FormatFixed(value, decimals)),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* A level's points multiplier as numeric. */
Datum
TierMultiplier(const TierLadder *ladder, int level)
{
	return FixedNumeric(ladder->levels[level].multiplier, 3);
}

PG_FUNCTION_INFO_V1(tier_levels);
/* loyalty.tier_levels(ladder): one row per level, lowest first. */
Datum
tier_levels(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	TierLadder *ladder;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		TupleDesc	desc;

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		funcctx->user_fctx = PG_GETARG_TIER_LADDER_P(0);
		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "loyalty: tier_levels must return rows");
		funcctx->tuple_desc = BlessTupleDesc(desc);
		funcctx->max_calls = ((TierLadder *) funcctx->user_fctx)->nlevels;
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	ladder = (TierLadder *) funcctx->user_fctx;
	if (funcctx->call_cntr < funcctx->max_calls)
	{
		int			i = (int) funcctx->call_cntr;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		values[0] = Int32GetDatum(i + 1);
		values[1] = CStringGetTextDatum(LevelName(ladder, i));
		values[2] = FixedNumeric(ladder->levels[i].threshold, 4);
		values[3] = FixedNumeric(ladder->levels[i].multiplier, 3);
		SRF_RETURN_NEXT(funcctx, HeapTupleGetDatum(heap_form_tuple(funcctx->tuple_desc, values, nulls)));
	}
	SRF_RETURN_DONE(funcctx);
}

PG_FUNCTION_INFO_V1(tier_ladder_options);
/* loyalty.tier_ladder_options(ladder): basis, window, grace and downgrade policy. */
Datum
tier_ladder_options(PG_FUNCTION_ARGS)
{
	TierLadder *ladder = PG_GETARG_TIER_LADDER_P(0);
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "loyalty: tier_ladder_options must return a row");
	values[0] = CStringGetTextDatum(basis_names[ladder->basis]);
	values[1] = Int32GetDatum(ladder->window_days);
	values[2] = Int32GetDatum(ladder->grace_days);
	values[3] = CStringGetTextDatum(downgrade_names[ladder->downgrade]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
