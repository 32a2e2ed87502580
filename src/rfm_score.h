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
 * loyalty.rfm_score, writing only what changed and deleting the members no
 * longer scored, and records the pass in loyalty.rfm_pass.  Returns the
 * rows written.  Needs SPI.
 */
extern int64 RfmStore(const char *program, TimestampTz as_of, Interval *window,
					  const RfmMember *members, int n, Datum *segments);

#endif							/* LOYALTY_RFM_SCORE_H */
