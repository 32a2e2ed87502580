/*
 * rfm.h
 *		The loyalty.rfm type: recency, frequency and monetary scores 1-5.
 *
 * Stored as an int2, r * 100 + f * 10 + m, so its text form ("543") and its
 * order are those of the number: the int2 comparison and hash functions
 * serve its operator classes.
 */
#ifndef LOYALTY_RFM_H
#define LOYALTY_RFM_H

#include "postgres.h"

typedef int16 Rfm;

#define DatumGetRfm(X)		DatumGetInt16(X)
#define RfmGetDatum(X)		Int16GetDatum(X)
#define PG_GETARG_RFM(n)	DatumGetRfm(PG_GETARG_DATUM(n))
#define PG_RETURN_RFM(x)	return RfmGetDatum(x)

#define RFM_R(x)	((x) / 100)
#define RFM_F(x)	(((x) / 10) % 10)
#define RFM_M(x)	((x) % 10)

static inline bool
RfmScoreValid(int score)
{
	return score >= 1 && score <= 5;
}

static inline Rfm
RfmMake(int r, int f, int m)
{
	return (Rfm) (r * 100 + f * 10 + m);
}

static inline bool
RfmValid(int value)
{
	return RfmScoreValid(RFM_R(value)) && RfmScoreValid(RFM_F(value)) &&
		RfmScoreValid(RFM_M(value)) && value < 1000;
}

#endif							/* LOYALTY_RFM_H */
