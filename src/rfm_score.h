/*
 * rfm_score.h
 *		One member's figures and scores in a loyalty.score_rfm() pass, and
 *		the step that stores them.
 */
#ifndef LOYALTY_RFM_SCORE_H
#define LOYALTY_RFM_SCORE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"

typedef struct RfmMember
{
	Datum		member_id;		/* text */
	const char *id;				/* its bytes and length, for sorting by id */
	int			id_len;
	TimestampTz last_order_at;
	int32		recency_days;
	int32		frequency;
	Datum		monetary;		/* numeric, 4 decimals */
	int64		monetary_e4;	/* the same x 10^4, for fast comparison */
	int			r;
	int			f;
	int			m;
} RfmMember;

/*
 * Stores the pass's n scored members (segments: the 125-entry table) into
 * loyalty.rfm_score, writing only what changed, and records the pass in
 * loyalty.rfm_pass.  Returns the rows written.  Needs SPI.
 */
/* Points id and id_len at a member id's bytes (detoasted once). */
extern void RfmIdBytes(Datum member_id, const char **id, int *id_len);

extern int64 RfmStore(const char *program, TimestampTz as_of, Interval *window,
					  RfmMember *members, int n, Datum *segments);

#endif							/* LOYALTY_RFM_SCORE_H */
