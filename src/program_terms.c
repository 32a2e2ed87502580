/*
 * program_terms.c
 *		A program's terms over time (loyalty.program_terms): which terms an
 *		order's time falls under, and the lot times they give.
 *
 * change_program() adds terms effective from a date; orders placed before
 * it keep the terms they were placed under.  So every decision about an
 * order (its points, when they become available, when they expire, how a
 * refund of it is taken back) asks LoyaltyTermsAt for the terms in force at
 * the order's ordered_at, never for the program's newest.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/timestamp.h"

#include "loyalty.h"
#include "program.h"
#include "spi_util.h"

static LoyaltyQuery terms_query = {
	"SELECT t.effective_from, t.earn_rate, t.pending_days, t.expire_after,"
	"       t.refund_policy OPERATOR(pg_catalog.=) 'within_balance', t.timezone"
	"  FROM loyalty.program_terms t"
	" WHERE t.program OPERATOR(pg_catalog.=) $1"
	" ORDER BY t.effective_from",
	1, {TEXTOID}
};

/* Reads the program's terms into prog (in the current memory context). */
void
LoyaltyTermsLoad(LoyaltyProgram *prog)
{
	Datum		args[1];

	args[0] = CStringGetTextDatum(prog->code);
	LoyaltyRun(&terms_query, args, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("program \"%s\" has no terms", prog->code),
				 errhint("Every program has at least one row in loyalty.program_terms; restore it from a backup.")));
	prog->nterms = (int) SPI_processed;
	prog->terms = palloc0(sizeof(LoyaltyTerms) * prog->nterms);
	for (int i = 0; i < prog->nterms; i++)
	{
		LoyaltyTerms *t = &prog->terms[i];

		t->effective_from = DatumGetTimestampTz(LoyaltyGetDatum(i, 1));
		t->earn_rate = LoyaltyGetDatum(i, 2);
		t->pending_days = LoyaltyGetInt32(i, 3);
		t->expires = !LoyaltyIsNull(i, 4);
		t->expire_after = t->expires ? LoyaltyGetDatum(i, 4) : (Datum) 0;
		t->within_balance = LoyaltyGetBool(i, 5);
		t->timezone = LoyaltyGetText(i, 6);
	}
}

/* A deep copy of src's terms into dst, in the current memory context. */
void
LoyaltyTermsCopy(LoyaltyProgram *dst, const LoyaltyProgram *src)
{
	dst->nterms = src->nterms;
	dst->terms = palloc(sizeof(LoyaltyTerms) * Max(src->nterms, 1));
	for (int i = 0; i < src->nterms; i++)
	{
		const LoyaltyTerms *s = &src->terms[i];
		LoyaltyTerms *d = &dst->terms[i];

		*d = *s;
		d->earn_rate = datumCopy(s->earn_rate, false, -1);
		d->expire_after = s->expires ?
			datumCopy(s->expire_after, false, sizeof(Interval)) : (Datum) 0;
		d->timezone = pstrdup(s->timezone);
	}
}

/*
 * The terms in force at time at: the newest whose effective_from is not
 * after it.  The first terms are effective from -infinity, so there is
 * always one.  A binary search: a program changes its terms rarely, but a
 * batch asks once per order.
 */
const LoyaltyTerms *
LoyaltyTermsAt(const LoyaltyProgram *prog, TimestampTz at)
{
	int			lo = 0;
	int			hi = prog->nterms - 1;

	Assert(prog->nterms > 0);
	while (lo < hi)
	{
		int			mid = (lo + hi + 1) / 2;

		if (prog->terms[mid].effective_from <= at)
			lo = mid;
		else
			hi = mid - 1;
	}
	return &prog->terms[lo];
}

/* Raises LY055 when the program is archived: it earns no more. */
void
LoyaltyRequireNotArchived(const LoyaltyProgram *prog)
{
	if (prog->archived)
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_PROGRAM_ARCHIVED),
				 errmsg("program \"%s\" is archived", prog->code),
				 errdetail("An archived program earns no more points; its members can still see and redeem their balances."),
				 errhint("Create a new program for new earning.")));
}

/* Points earned at earned_at may be spent pending_days (of its terms) later. */
TimestampTz
LoyaltyAvailableAt(const LoyaltyProgram *prog, TimestampTz earned_at)
{
	const LoyaltyTerms *terms = LoyaltyTermsAt(prog, earned_at);
	Interval	pending = {0};

	if (terms->pending_days == 0)
		return earned_at;
	pending.day = terms->pending_days;
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												   TimestampTzGetDatum(earned_at),
												   PointerGetDatum(&pending)));
}

/*
 * Sets *expires_at and returns true when points earned at earned_at expire
 * under the terms of that time.
 */
bool
LoyaltyExpiresAt(const LoyaltyProgram *prog, TimestampTz earned_at, TimestampTz *expires_at)
{
	const LoyaltyTerms *terms = LoyaltyTermsAt(prog, earned_at);

	if (!terms->expires)
		return false;
	*expires_at = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														  TimestampTzGetDatum(earned_at),
														  terms->expire_after));
	return true;
}
