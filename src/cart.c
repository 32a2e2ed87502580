/*
 * cart.c
 *		A shopping cart (jsonb) read into a C struct, every field checked.
 *
 *   {"currency": "USD", "country": "VN", "shipping": 5.00,
 *    "items": [{"sku": "A1", "category": "shoes", "qty": 2, "price": 30.00}],
 *    "member": {"tier": "Gold", "segment": "Champions", "lifecycle": "active",
 *               "first_order": false}}
 *
 * currency and items are required; the rest is optional (missing or JSON
 * null: absent).  Unknown keys are ignored, so a shop may pass its own
 * cart document.  A malformed cart raises LY030; the message names the
 * field as a path (items[0].qty: items count from 0, as in jsonpath) and
 * quotes the bad value.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "cart.h"
#include "currency.h"
#include "utils/timestamp.h"

#include "loyalty.h"

/* A JSON value as the error quotes it. */
static char *
ValueText(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvBool:
			return v->val.boolean ? "true" : "false";
		case jbvString:
			return psprintf("\"%.*s\"", Min(v->val.string.len, 100), v->val.string.val);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "a value";
	}
}

static void
pg_attribute_noreturn()
CartError(const char *field, const JsonbValue *v, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_LOYALTY_INVALID_CART),
			 errmsg("invalid cart: %s is %s", field, ValueText(v)),
			 errdetail("%s", detail),
			 errhint("A cart is {\"currency\": \"USD\", \"items\": [{\"category\": \"shoes\", \"qty\": 2, \"price\": 30.00}], ...}; see docs/coupons.md.")));
}

static void
pg_attribute_noreturn()
CartMissing(const char *field, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_LOYALTY_INVALID_CART),
			 errmsg("invalid cart: %s is missing", field),
			 errdetail("%s", detail)));
}

/* The value of key in an object, or NULL when missing or JSON null. */
static JsonbValue *
Field(JsonbContainer *object, const char *key, JsonbValue *buf)
{
	JsonbValue *v = getKeyJsonValueFromContainer(object, key, strlen(key), buf);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	return v;
}

/* The path of a line's field, as errors name it: "items[2].qty". */
static char *
LinePath(int i, const char *key)
{
	return psprintf("items[%d].%s", i, key);
}

/* What an amount must be, for the errors. */
#define AMOUNT_RULE(what, note) \
	what " must be a number of zero or more " note ", with at most 15 digits before the point and 9 after it."

/*
 * The fast path of CartAmount: reads a numeric's base-10000 digits
 * straight from its on-disk form (the layout of src/backend/utils/adt/
 * numeric.c, unchanged since PostgreSQL 14), without numeric_out.  1: read
 * into *out (x 10^CART_SCALE); 0: a value CartAmount refuses (negative,
 * NaN, infinite, too large, too many decimals); -1: a form it leaves to the
 * slow path (a short varlena header).
 */
#define NUM_SIGN_MASK		0xC000
#define NUM_NEG				0x4000
#define NUM_SHORT			0x8000
#define NUM_SPECIAL			0xC000
#define NUM_SHORT_SIGN_MASK	0x2000
#define NUM_SHORT_WEIGHT_SIGN_MASK 0x0040
#define NUM_SHORT_WEIGHT_MASK	0x003F

static int
NumericScaled(Numeric num, int128 *out)
{
	const char *raw = (const char *) num;
	uint16		header;
	int			weight;
	const int16 *digits;
	int			ndigits;
	int128		value = 0;

	if (VARATT_IS_SHORT(raw) || VARATT_IS_EXTENDED(raw))
		return -1;
	memcpy(&header, raw + VARHDRSZ, sizeof(uint16));
	if ((header & NUM_SIGN_MASK) == NUM_SPECIAL || (header & NUM_SIGN_MASK) == NUM_NEG)
		return 0;
	if ((header & NUM_SIGN_MASK) == NUM_SHORT)
	{
		if (header & NUM_SHORT_SIGN_MASK)
			return 0;
		weight = (header & NUM_SHORT_WEIGHT_SIGN_MASK ? ~NUM_SHORT_WEIGHT_MASK : 0) |
			(header & NUM_SHORT_WEIGHT_MASK);
		digits = (const int16 *) (raw + VARHDRSZ + sizeof(uint16));
	}
	else
	{
		int16		w;

		memcpy(&w, raw + VARHDRSZ + sizeof(uint16), sizeof(int16));
		weight = w;
		digits = (const int16 *) (raw + VARHDRSZ + sizeof(uint16) + sizeof(int16));
	}
	ndigits = (VARSIZE(raw) - ((const char *) digits - raw)) / sizeof(int16);
	if (ndigits > 0 && weight > 3)
		return 0;				/* 10^16 or more */
	for (int i = 0; i < ndigits; i++)
	{
		int			e = weight - i;		/* the digit counts 10000^e */
		int128		d = digits[i];

		if (e >= 0)
		{
			int128		scale = CART_SCALE_FACTOR;

			for (int k = 0; k < e; k++)
				scale *= 10000;
			value += d * scale;
		}
		else if (e == -1)
			value += d * 100000;
		else if (e == -2)
			value += d * 10;
		else if (e == -3 && d % 1000 == 0)
			value += d / 1000;
		else if (d != 0)
			return 0;			/* more than CART_SCALE decimals */
	}
	if (value >= (int128) 1000000000000000LL * CART_SCALE_FACTOR)
		return 0;				/* more than CART_MAX_DIGITS digits */
	*out = value;
	return 1;
}

/*
 * A number of zero or more as fixed point x 10^CART_SCALE, exact: at most
 * CART_MAX_DIGITS digits before the point and CART_SCALE after it (more
 * decimals are accepted when they are zeros).  whole: a whole number.
 * False when it is not one (the caller names the field).
 */
static bool
CartAmount(const JsonbValue *v, bool whole, int128 *out)
{
	char	   *s;
	char	   *start;
	int128		value = 0;
	int			digits = 0;
	int			decimals = -1;

	if (v->type != jbvNumeric)
		return false;
	switch (NumericScaled(v->val.numeric, &value))
	{
		case 1:
			*out = value;
			return !whole || value % CART_SCALE_FACTOR == 0;
		case 0:
			return false;
		default:
			break;
	}
	start = s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	if (*s == '-' || !isdigit((unsigned char) *s))
		return false;			/* negative, NaN, Infinity */
	for (; *s; s++)
	{
		if (*s == '.')
			decimals = 0;
		else if (decimals < 0)
		{
			if (digits > 0 || *s != '0')
				digits++;
			if (digits > CART_MAX_DIGITS)
				return false;
			value = value * 10 + (*s - '0');
		}
		else if (++decimals <= CART_SCALE)
			value = value * 10 + (*s - '0');
		else if (*s != '0')
			return false;
		if (whole && decimals > 0 && *s != '0')
			return false;
	}
	pfree(start);
	for (int i = Max(decimals, 0); i < CART_SCALE; i++)
		value *= 10;
	*out = value;
	return true;
}

/*
 * An optional text field: a JSON string, or absent.  Its path for errors:
 * field, or items[line].key when field is NULL.
 */
static CartText
CartString(JsonbContainer *object, const char *key, const char *field, int line)
{
	JsonbValue	buf;
	JsonbValue *v = Field(object, key, &buf);
	CartText	result = {NULL, 0};

	if (v == NULL)
		return result;
	if (v->type != jbvString)
		CartError(field ? field : LinePath(line, key), v, "It must be a string.");
	result.data = v->val.string.val;
	result.len = v->val.string.len;
	return result;
}

static void
ReadCurrency(JsonbContainer *root, Cart *cart)
{
	JsonbValue	buf;
	JsonbValue *v = Field(root, "currency", &buf);

	if (v == NULL)
		CartMissing("currency", "A cart names its currency, an ISO 4217 code such as \"USD\".");
	if (v->type != jbvString || !CurrencyNormalize(v->val.string.val, v->val.string.len, cart->currency))
		CartError("currency", v, "The currency must be an active ISO 4217 code such as \"USD\", \"EUR\" or \"VND\".");
	cart->minor = CurrencyMinorUnit(cart->currency, 3);
}

static void
ReadCountry(JsonbContainer *root, Cart *cart)
{
	JsonbValue	buf;
	JsonbValue *v = Field(root, "country", &buf);

	cart->country[0] = '\0';
	if (v == NULL)
		return;
	if (v->type != jbvString || v->val.string.len != 2 ||
		!isalpha((unsigned char) v->val.string.val[0]) || !isalpha((unsigned char) v->val.string.val[1]))
		CartError("country", v, "The country must be a two-letter code (ISO 3166-1), such as \"VN\".");
	cart->country[0] = pg_toupper((unsigned char) v->val.string.val[0]);
	cart->country[1] = pg_toupper((unsigned char) v->val.string.val[1]);
	cart->country[2] = '\0';
}

#define QTY_RULE "A qty must be a whole number from 1 to 1000000."

static void
ReadLine(JsonbContainer *item, int i, CartLine *line)
{
	JsonbValue	buf;
	JsonbValue *v;
	int128		qty;
	int128		price;

	if ((v = Field(item, "qty", &buf)) == NULL)
		CartMissing(LinePath(i, "qty"), "Every item has a qty.");
	if (!CartAmount(v, true, &qty) || qty < CART_SCALE_FACTOR ||
		qty > (int128) CART_MAX_QTY * CART_SCALE_FACTOR)
		CartError(LinePath(i, "qty"), v, QTY_RULE);
	line->qty = (int64) (qty / CART_SCALE_FACTOR);
	if ((v = Field(item, "price", &buf)) == NULL)
		CartMissing(LinePath(i, "price"), "Every item has a price.");
	if (!CartAmount(v, false, &price))
		CartError(LinePath(i, "price"), v, AMOUNT_RULE("A price", "(the unit price)"));
	line->total = price * line->qty;
	line->category = CartString(item, "category", NULL, i);
}

static void
ReadItems(JsonbContainer *root, Cart *cart)
{
	JsonbValue	buf;
	JsonbValue *v = Field(root, "items", &buf);
	JsonbContainer *items;

	if (v == NULL)
		CartMissing("items", "A cart has an items array (it may be empty).");
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		CartError("items", v, "items must be an array of {\"qty\": ..., \"price\": ...} objects.");
	items = v->val.binary.data;
	cart->nlines = JsonContainerSize(items);
	if (cart->nlines > CART_MAX_LINES)
		CartError("items", v, psprintf("A cart has at most %d items.", CART_MAX_LINES));
	cart->lines = cart->nlines <= CART_INLINE_LINES ? cart->inline_lines :
		palloc(sizeof(CartLine) * cart->nlines);
	for (int i = 0; i < cart->nlines; i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(items, i);

		if (item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data))
			CartError(psprintf("items[%d]", i), item, "Every item is an object with qty and price.");
		ReadLine(item->val.binary.data, i, &cart->lines[i]);
		pfree(item);
	}
}

static void
ReadMember(JsonbContainer *root, Cart *cart)
{
	JsonbValue	buf;
	JsonbValue *v = Field(root, "member", &buf);
	JsonbContainer *member;

	cart->first_order = -1;
	if (v == NULL)
		return;
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		CartError("member", v, "member must be an object of tier, segment, lifecycle and first_order.");
	member = v->val.binary.data;
	cart->tier = CartString(member, "tier", "member.tier", 0);
	cart->segment = CartString(member, "segment", "member.segment", 0);
	cart->lifecycle = CartString(member, "lifecycle", "member.lifecycle", 0);
	if ((v = Field(member, "first_order", &buf)) != NULL)
	{
		if (v->type != jbvBool)
			CartError("member.first_order", v, "first_order must be true or false.");
		cart->first_order = v->val.boolean ? 1 : 0;
	}
}

void
CartRead(Jsonb *jb, Cart *cart)
{
	JsonbValue	buf;
	JsonbValue *v;

	memset(cart, 0, offsetof(Cart, inline_lines));
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_INVALID_CART),
				 errmsg("invalid cart: the cart is not a JSON object"),
				 errdetail("A cart is an object such as {\"currency\": \"USD\", \"items\": []}.")));
	ReadCurrency(&jb->root, cart);
	ReadItems(&jb->root, cart);
	ReadCountry(&jb->root, cart);
	if ((v = Field(&jb->root, "shipping", &buf)) != NULL && !CartAmount(v, false, &cart->shipping))
		CartError("shipping", v, AMOUNT_RULE("shipping", "(the cart's shipping cost)"));
	ReadMember(&jb->root, cart);
}
