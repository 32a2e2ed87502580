/*
 * signal_hash.h
 *		Fraud signals kept as keyed hashes: the normal form of a value of
 *		each kind, and its HMAC under the installation's key.
 */
#ifndef LOYALTY_SIGNAL_HASH_H
#define LOYALTY_SIGNAL_HASH_H

#include "postgres.h"

#include "fmgr.h"

/* Bytes kept of an HMAC-SHA-256 (128 bits: collisions stay negligible). */
#define SIGNAL_HASH_BYTES	16
#define SIGNAL_KEY_BYTES	32

/* The kinds of signal, in the order of order_signal's columns, then the contacts. */
#define SIGNAL_ORDER_KINDS	6
extern const char *const SignalKinds[];

/* A secret key of loyalty.signal_key. */
typedef struct SignalKey
{
	int32		id;
	uint8		key[SIGNAL_KEY_BYTES];
} SignalKey;

extern bool SignalKindKnown(const char *kind);
extern void SignalCheckKind(const char *kind);
extern char *SignalNormalize(const char *kind, const char *value);
extern void SignalKeyCacheInit(void);
extern bool SignalKeyCurrent(SignalKey *key);
extern bytea *SignalDigest(const uint8 *key, const char *kind, const char *normal);

#endif							/* LOYALTY_SIGNAL_HASH_H */
