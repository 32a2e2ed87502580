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

static void pg_attribute_noreturn()
LadderError(int sqlstate, const char *input, const char *detail)
{
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("invalid input syntax for type tier_ladder: \"%s\"", input),
			 errdetail_internal("%s", detail),
			 errhint("Write for example 'basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2'.")));
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

/* A fixed point integer as text, without trailing zeros ("2000.5"). */
static char *
FormatFixed(int64 value, int decimals)
{
	int64		scale = 1;
	int64		fraction;
	char		digits[32];
	int			len;

	for (int i = 0; i < decimals; i++)
		scale *= 10;
	fraction = value % scale;
	if (fraction == 0)
		return psprintf(INT64_FORMAT, value / scale);
	snprintf(digits, sizeof(digits), "%0*" INT64_MODIFIER "d", decimals, fraction);
	len = strlen(digits);
	while (len > 0 && digits[len - 1] == '0')
		digits[--len] = '\0';
	return psprintf(INT64_FORMAT ".%s", value / scale, digits);
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

/* The options part: "basis=spend window=365d grace=30d downgrade=step". */
static void
ParseOptions(char *part, const char *input, LadderDraft *draft)
{
	char	   *save = NULL;
	bool		seen[4] = {false, false, false, false};

	for (char *tok = strtok_r(part, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
	{
		char	   *eq = strchr(tok, '=');
		char	   *value;
		int			key;
		int			found = -1;

		if (eq == NULL)
			LadderError(ERRCODE_INVALID_TEXT_REPRESENTATION, input,
						psprintf("Option \"%s\" is not of the form key=value.", tok));
		*eq = '\0';
		value = eq + 1;
		key = NameIndex((const char *const[]) {"basis", "window", "grace", "downgrade"}, 4, tok);
		if (key < 0)
			LadderError(ERRCODE_INVALID_TEXT_REPRESENTATION, input,
						psprintf("Unknown option \"%s\": use basis, window, grace or downgrade.", tok));
		if (seen[key])
			LadderError(ERRCODE_INVALID_TEXT_REPRESENTATION, input,
						psprintf("Option \"%s\" is given twice.", tok));
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
			LadderError(ERRCODE_INVALID_TEXT_REPRESENTATION, input,
						psprintf("Bad value \"%s\" for option \"%s\": %s.", value, tok,
								 key == 0 ? "use spend, points or orders" :
								 key == 3 ? "use step or drop" :
								 key == 1 ? "use a number of days above zero, as in 365d" :
								 "use a number of days, as in 30d"));
	}
}

/* One level: "Silver 500 x1.25" (the name may have several words). */
static void
ParseLevel(char *part, const char *input, LadderDraft *draft)
{
	char	   *words[64];
	int			nwords = 0;
	char	   *save = NULL;
	int			level = draft->nlevels;
	StringInfoData name;
	int64		multiplier;
	char	   *shown = pstrdup(part);

	for (char *tok = strtok_r(part, " \t\n", &save); tok && nwords < 64; tok = strtok_r(NULL, " \t\n", &save))
		words[nwords++] = tok;
	if (level >= TIER_MAX_LEVELS)
		LadderError(ERRCODE_INVALID_TEXT_REPRESENTATION, input,
					psprintf("A ladder has at most %d levels.", TIER_MAX_LEVELS));
	if (nwords < 3)
		LadderError(ERRCODE_INVALID_TEXT_REPRESENTATION, input,
					psprintf("Level %d \"%s\" is not \"name threshold xmultiplier\".", level + 1, shown));

	initStringInfo(&name);
	for (int i = 0; i < nwords - 2; i++)
		appendStringInfo(&name, "%s%s", i > 0 ? " " : "", words[i]);
	draft->name[level] = name.data;
	if (!ParseFixed(words[nwords - 2], 4, &draft->threshold[level]))
		LadderError(ERRCODE_INVALID_TEXT_REPRESENTATION, input,
					psprintf("Level \"%s\": threshold \"%s\" is not a number of zero or more with at most 4 decimals.",
							 name.data, words[nwords - 2]));
	if (words[nwords - 1][0] != 'x' || !ParseFixed(words[nwords - 1] + 1, 3, &multiplier))
		LadderError(ERRCODE_INVALID_TEXT_REPRESENTATION, input,
					psprintf("Level \"%s\": multiplier \"%s\" is not written as x followed by a number, as in x1.25.",
							 name.data, words[nwords - 1]));
	if (multiplier > 100 * TIER_MULTIPLIER_SCALE)
		multiplier = PG_INT32_MAX;	/* rejected by CheckDraft */
	draft->multiplier[level] = (int32) multiplier;
	draft->nlevels++;
}

/* The rules every ladder keeps, from text or binary input. */
static void
CheckDraft(const LadderDraft *draft, const char *input, int sqlstate)
{
	if (draft->nlevels == 0)
		LadderError(sqlstate, input, "A ladder needs at least one level.");
	if (draft->threshold[0] != 0)
		LadderError(sqlstate, input,
					psprintf("The first level \"%s\" must start at threshold 0, not %s.",
							 draft->name[0], FormatFixed(draft->threshold[0], 4)));
	for (int i = 0; i < draft->nlevels; i++)
	{
		int			len = strlen(draft->name[i]);

		if (len == 0 || len > TIER_MAX_NAME || strchr(draft->name[i], '|') != NULL)
			LadderError(sqlstate, input,
						psprintf("Level %d: a name is 1 to %d characters without \"|\".", i + 1, TIER_MAX_NAME));
		if (draft->multiplier[i] <= 0 || draft->multiplier[i] > 100 * TIER_MULTIPLIER_SCALE)
			LadderError(sqlstate, input,
						psprintf("Level \"%s\": the multiplier must be above 0 and at most 100.", draft->name[i]));
		if (i > 0 && draft->threshold[i] <= draft->threshold[i - 1])
			LadderError(sqlstate, input,
						psprintf("Level \"%s\": threshold %s must be above the threshold of \"%s\" (%s).",
								 draft->name[i], FormatFixed(draft->threshold[i], 4),
								 draft->name[i - 1], FormatFixed(draft->threshold[i - 1], 4)));
		for (int j = 0; j < i; j++)
			if (pg_strcasecmp(draft->name[i], draft->name[j]) == 0)
				LadderError(sqlstate, input,
							psprintf("Level name \"%s\" is used twice.", draft->name[i]));
	}
	if (draft->window_days <= 0 || draft->grace_days < 0)
		LadderError(sqlstate, input, "The window must be above 0 days and the grace 0 days or more.");
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
/* tier_ladder_in: the text form, every rule checked. */
Datum
tier_ladder_in(PG_FUNCTION_ARGS)
{
	char	   *input = PG_GETARG_CSTRING(0);
	char	   *copy = pstrdup(input);
	LadderDraft draft;
	char	   *save = NULL;
	bool		first = true;

	DraftDefaults(&draft);
	for (char *part = strtok_r(copy, "|", &save); part; part = strtok_r(NULL, "|", &save), first = false)
	{
		if (first && strchr(part, '=') != NULL)
			ParseOptions(part, input, &draft);
		else
			ParseLevel(part, input, &draft);
	}
	CheckDraft(&draft, input, ERRCODE_INVALID_TEXT_REPRESENTATION);
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
/* tier_ladder_recv: the binary form, checked like the text form. */
Datum
tier_ladder_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	LadderDraft draft;
	int			basis;
	int			downgrade;

	DraftDefaults(&draft);
	basis = pq_getmsgbyte(buf);
	downgrade = pq_getmsgbyte(buf);
	draft.window_days = pq_getmsgint(buf, 4);
	draft.grace_days = pq_getmsgint(buf, 4);
	draft.nlevels = pq_getmsgint(buf, 2);
	if (basis < 0 || basis >= (int) lengthof(basis_names) || downgrade < 0 ||
		downgrade >= (int) lengthof(downgrade_names) ||
		draft.nlevels < 0 || draft.nlevels > TIER_MAX_LEVELS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid external tier_ladder value"),
				 errdetail("Basis %d, downgrade %d or level count %d is out of range.",
						   basis, downgrade, draft.nlevels)));
	draft.basis = (TierBasis) basis;
	draft.downgrade = (TierDowngrade) downgrade;
	for (int i = 0; i < draft.nlevels; i++)
	{
		int			nbytes;

		draft.threshold[i] = pq_getmsgint64(buf);
		draft.multiplier[i] = pq_getmsgint(buf, 4);
		draft.name[i] = pq_getmsgtext(buf, pq_getmsgint(buf, 4), &nbytes);
	}
	CheckDraft(&draft, "(binary)", ERRCODE_INVALID_BINARY_REPRESENTATION);
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
