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
#include "mb/pg_wchar.h"
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
			/* at most 100 bytes, never half a character */
			return psprintf("\"%.*s\"", pg_mbcliplen(v->val.string.val, v->val.string.len, 100),
							v->val.string.val);
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

/*
 * A value of a container as jsonb stores it (the reading of
 * fillJsonbValue() in jsonb_util.c): the entry, the data's start and length.
 */
static void
FillValue(JEntry entry, char *base, uint32 offset, uint32 len, JsonbValue *v)
{
	if (JBE_ISSTRING(entry))
	{
		v->type = jbvString;
		v->val.string.val = base + offset;
		v->val.string.len = len;
	}
	else if (JBE_ISNUMERIC(entry))
	{
		v->type = jbvNumeric;
		v->val.numeric = (Numeric) (base + INTALIGN(offset));
	}
	else if (JBE_ISBOOL_TRUE(entry) || JBE_ISBOOL_FALSE(entry))
	{
		v->type = jbvBool;
		v->val.boolean = JBE_ISBOOL_TRUE(entry);
	}
	else if (JBE_ISCONTAINER(entry))
	{
		v->type = jbvBinary;
		v->val.binary.data = (JsonbContainer *) (base + INTALIGN(offset));
		v->val.binary.len = len - (INTALIGN(offset) - offset);
	}
	else
		v->type = jbvNull;
}

#define CART_MAX_KEYS 5			/* keys read from one object */

/*
 * The values of the given keys of an object, in one pass over its entries
 * (keys first, then the values in the same order): values[k] is the value
 * of keys[k], type jbvNull when missing or JSON null.  One pass instead of
 * a binary search per key: a cart is read per call.
 */
/* Short keys compared in line: a memcmp() call per key costs more. */
static inline bool
SameBytes(const char *a, const char *b, uint32 len)
{
	for (uint32 i = 0; i < len; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

typedef struct CartKey
{
	const char *name;
	uint32		len;
} CartKey;

#define CART_KEY(s) {s, sizeof(s) - 1}

static void
ObjectFields(JsonbContainer *object, const CartKey *keys, int nkeys, JsonbValue *values)
{
	int			count = JsonContainerSize(object);
	char	   *base = (char *) &object->children[count * 2];
	uint32		offset = 0;
	int			found_at[CART_MAX_KEYS];
	int			found_key[CART_MAX_KEYS];
	int			nfound = 0;

	Assert(nkeys <= CART_MAX_KEYS);
	for (int k = 0; k < nkeys; k++)
		values[k].type = jbvNull;
	for (int j = 0; j < count; j++)
	{
		uint32		start = offset;

		JBE_ADVANCE_OFFSET(offset, object->children[j]);
		for (int k = 0; k < nkeys && nfound < CART_MAX_KEYS; k++)
			if (keys[k].len == offset - start && SameBytes(base + start, keys[k].name, keys[k].len))
			{
				found_at[nfound] = j;
				found_key[nfound++] = k;
				break;
			}
	}
	for (int j = count, f = 0; j < 2 * count && f < nfound; j++)
	{
		uint32		start = offset;

		JBE_ADVANCE_OFFSET(offset, object->children[j]);
		if (j - count == found_at[f])
			FillValue(object->children[j], base, start, offset - start, &values[found_key[f++]]);
	}
}

/* A present value: not missing, not JSON null. */
static inline JsonbValue *
Present(JsonbValue *v)
{
	return v->type == jbvNull ? NULL : v;
}

/* The path of a line's field, as errors name it: "items[2].qty". */
static char *
LinePath(int i, const char *key)
{
	return psprintf("items[%d].%s", i, key);
}

#define QTY_RULE "A qty must be a whole number from 1 to 1000000."

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

/* An optional text field: a JSON string, or absent; field names it in errors. */
static CartText
CartString(JsonbValue *value, const char *field)
{
	JsonbValue *v = Present(value);
	CartText	result = {NULL, 0};

	if (v == NULL)
		return result;
	if (v->type != jbvString)
		CartError(field, v, "It must be a string.");
	result.data = v->val.string.val;
	result.len = v->val.string.len;
	return result;
}

static void
ReadCurrency(JsonbValue *value, Cart *cart)
{
	JsonbValue *v = Present(value);

	if (v == NULL)
		CartMissing("currency", "A cart names its currency, an ISO 4217 code such as \"USD\".");
	if (v->type != jbvString ||
		(cart->minor = CurrencyLookup(v->val.string.val, v->val.string.len, cart->currency)) < 0)
		CartError("currency", v, "The currency must be an active ISO 4217 code such as \"USD\", \"EUR\" or \"VND\".");
}

static void
ReadCountry(JsonbValue *value, Cart *cart)
{
	JsonbValue *v = Present(value);

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

static const CartKey line_keys[] = {CART_KEY("qty"), CART_KEY("price"), CART_KEY("category")};

static void
ReadLine(JsonbContainer *item, int i, CartLine *line)
{
	JsonbValue	f[3];
	JsonbValue *v;
	int128		qty;
	int128		price;

	ObjectFields(item, line_keys, 3, f);
	if ((v = Present(&f[0])) == NULL)
		CartMissing(LinePath(i, "qty"), "Every item has a qty.");
	if (!CartAmount(v, true, &qty) || qty < CART_SCALE_FACTOR ||
		qty > (int128) CART_MAX_QTY * CART_SCALE_FACTOR)
		CartError(LinePath(i, "qty"), v, QTY_RULE);
	line->qty = (int64) (qty / CART_SCALE_FACTOR);
	if ((v = Present(&f[1])) == NULL)
		CartMissing(LinePath(i, "price"), "Every item has a price.");
	if (!CartAmount(v, false, &price))
		CartError(LinePath(i, "price"), v, AMOUNT_RULE("A price", "(the unit price)"));
	line->total = price * line->qty;
	if (Present(&f[2]) != NULL && f[2].type != jbvString)
		CartError(LinePath(i, "category"), &f[2], "It must be a string.");
	line->category = CartString(&f[2], NULL);
}

static void
ReadItems(JsonbValue *value, Cart *cart)
{
	JsonbValue *v = Present(value);
	JsonbContainer *items;
	char	   *base;
	uint32		offset = 0;

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
	base = (char *) &items->children[cart->nlines];
	for (int i = 0; i < cart->nlines; i++)
	{
		JsonbValue	item;
		uint32		start = offset;

		JBE_ADVANCE_OFFSET(offset, items->children[i]);
		FillValue(items->children[i], base, start, offset - start, &item);
		if (item.type != jbvBinary || !JsonContainerIsObject(item.val.binary.data))
			CartError(psprintf("items[%d]", i), &item, "Every item is an object with qty and price.");
		ReadLine(item.val.binary.data, i, &cart->lines[i]);
	}
}

static const CartKey member_keys[] = {CART_KEY("tier"), CART_KEY("segment"), CART_KEY("lifecycle"),
CART_KEY("first_order")};

static void
ReadMember(JsonbValue *value, Cart *cart)
{
	JsonbValue *v = Present(value);
	JsonbValue	f[4];

	cart->first_order = -1;
	if (v == NULL)
		return;
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		CartError("member", v, "member must be an object of tier, segment, lifecycle and first_order.");
	ObjectFields(v->val.binary.data, member_keys, 4, f);
	cart->tier = CartString(&f[0], "member.tier");
	cart->segment = CartString(&f[1], "member.segment");
	cart->lifecycle = CartString(&f[2], "member.lifecycle");
	if ((v = Present(&f[3])) != NULL)
	{
		if (v->type != jbvBool)
			CartError("member.first_order", v, "first_order must be true or false.");
		cart->first_order = v->val.boolean ? 1 : 0;
	}
}

static const CartKey cart_keys[] = {CART_KEY("currency"), CART_KEY("items"), CART_KEY("country"),
CART_KEY("shipping"), CART_KEY("member")};

void
CartRead(Jsonb *jb, Cart *cart)
{
	JsonbValue	f[5];
	JsonbValue *v;

	memset(cart, 0, offsetof(Cart, inline_lines));
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_LOYALTY_INVALID_CART),
				 errmsg("invalid cart: the cart is not a JSON object"),
				 errdetail("A cart is an object such as {\"currency\": \"USD\", \"items\": []}.")));
	ObjectFields(&jb->root, cart_keys, 5, f);
	ReadCurrency(&f[0], cart);
	ReadItems(&f[1], cart);
	ReadCountry(&f[2], cart);
	if ((v = Present(&f[3])) != NULL && !CartAmount(v, false, &cart->shipping))
		CartError("shipping", v, AMOUNT_RULE("shipping", "(the cart's shipping cost)"));
	ReadMember(&f[4], cart);
}
