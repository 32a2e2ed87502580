/*
 * cart.h
 *		A shopping cart (jsonb, docs/coupons.md) read into a C struct.
 *
 * Amounts are exact: int128 fixed point with CART_SCALE decimals.  Texts
 * point into the jsonb they were read from (not NUL-terminated).
 */
#ifndef LOYALTY_CART_H
#define LOYALTY_CART_H

#include "postgres.h"

#include "utils/jsonb.h"

#ifndef HAVE_INT128
#error "loyalty's cart arithmetic needs a 128-bit integer type"
#endif

#define CART_SCALE			9	/* decimals kept of prices and shipping */
#define CART_SCALE_FACTOR	INT64CONST(1000000000)
#define CART_MAX_DIGITS		15	/* digits before the point of an amount */
#define CART_MAX_QTY		1000000
#define CART_MAX_LINES		1000
#define CART_INLINE_LINES	8

typedef struct CartText
{
	const char *data;			/* NULL: absent (missing or JSON null) */
	int			len;
} CartText;

typedef struct CartLine
{
	CartText	category;
	int64		qty;
	int128		total;			/* qty x price, x 10^CART_SCALE */
} CartLine;

typedef struct Cart
{
	char		currency[4];	/* upper case, an active ISO 4217 code */
	int			minor;			/* its minor unit */
	char		country[3];		/* upper case; "" when absent */
	int128		shipping;		/* x 10^CART_SCALE; 0 when absent */
	int			nlines;
	CartLine   *lines;			/* inline_lines or palloc'd */
	CartText	tier;
	CartText	segment;
	CartText	lifecycle;
	int			first_order;	/* 1 true, 0 false, -1 absent */
	CartLine	inline_lines[CART_INLINE_LINES];
} Cart;

/* Reads a cart; a malformed one raises LY030 naming the field. */
extern void CartRead(Jsonb *jb, Cart *cart);

#endif							/* LOYALTY_CART_H */
