/*
 * rfm.c
 *		The loyalty.rfm type: input, output, binary I/O, accessors.
 */
#include "postgres.h"

#include "fmgr.h"
#include "libpq/pqformat.h"

#include "rfm.h"
#include "type_input.h"

/*
 * The one rule of an rfm value, whether it comes from text or binary input:
 * three scores from 1 to 5 (RfmValid).  Reports a value that breaks it, as
 * 22P02 quoting the text (input given) or 22P03 (binary input, input NULL),
 * and returns false.
 */
static bool
RfmCheck(int value, const char *input, Node *escontext)
{
	if (RfmValid(value))
		return true;
	if (input == NULL)
		TypeInputError(escontext,
					   errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					   errmsg("invalid external rfm value %d", value),
					   errdetail("An RFM value is r * 100 + f * 10 + m with each score from 1 to 5."));
	else
		TypeInputError(escontext,
					   errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					   errmsg("invalid input syntax for type %s: \"%s\"", "rfm", input),
					   errdetail("An RFM value is three scores from 1 to 5, recency first."),
					   errhint("Write for example '543'."));
	return false;
}

PG_FUNCTION_INFO_V1(rfm_in);
/* rfm_in: three digits 1-5, recency first ("543"); soft errors on 16+. */
Datum
rfm_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int			value = -1;		/* not three digits: invalid */

	if (strlen(str) == 3 && isdigit((unsigned char) str[0]) &&
		isdigit((unsigned char) str[1]) && isdigit((unsigned char) str[2]))
		value = RfmMake(str[0] - '0', str[1] - '0', str[2] - '0');
	if (!RfmCheck(value, str, fcinfo->context))
		PG_RETURN_NULL();
	PG_RETURN_RFM((Rfm) value);
}

PG_FUNCTION_INFO_V1(rfm_out);
/* rfm_out: the three digits. */
Datum
rfm_out(PG_FUNCTION_ARGS)
{
	Rfm			value = PG_GETARG_RFM(0);

	PG_RETURN_CSTRING(psprintf("%d%d%d", RFM_R(value), RFM_F(value), RFM_M(value)));
}

PG_FUNCTION_INFO_V1(rfm_recv);
/* rfm_recv: an int2, checked by the rule of the text input. */
Datum
rfm_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int16		value = (int16) pq_getmsgint(buf, sizeof(int16));

	RfmCheck(value, NULL, NULL);
	PG_RETURN_RFM(value);
}

PG_FUNCTION_INFO_V1(rfm_send);
/* rfm_send: an int2. */
Datum
rfm_send(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, PG_GETARG_RFM(0));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

static int
ScoreArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	int32		score = PG_GETARG_INT32(argno);

	if (!RfmScoreValid(score))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s score must be from 1 to 5, not %d", name, score)));
	return score;
}

PG_FUNCTION_INFO_V1(rfm_make);
/* loyalty.rfm(r, f, m): builds a value from its three scores. */
Datum
rfm_make(PG_FUNCTION_ARGS)
{
	PG_RETURN_RFM(RfmMake(ScoreArg(fcinfo, 0, "recency"), ScoreArg(fcinfo, 1, "frequency"),
						  ScoreArg(fcinfo, 2, "monetary")));
}

PG_FUNCTION_INFO_V1(rfm_r);
/* loyalty.r(rfm): the recency score. */
Datum
rfm_r(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(RFM_R(PG_GETARG_RFM(0)));
}

PG_FUNCTION_INFO_V1(rfm_f);
/* loyalty.f(rfm): the frequency score. */
Datum
rfm_f(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(RFM_F(PG_GETARG_RFM(0)));
}

PG_FUNCTION_INFO_V1(rfm_m);
/* loyalty.m(rfm): the monetary score. */
Datum
rfm_m(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(RFM_M(PG_GETARG_RFM(0)));
}
