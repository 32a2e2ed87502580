/*
 * Statements scripts/check_qualified_sql.pl must pass: every shape it
 * leaves alone on purpose (test/run.sh, suite "qualified SQL").
 */
#define NEXT_ID "pg_catalog.nextval('loyalty.ledger_id_seq'::pg_catalog.regclass)"
#define BY_PROGRAM(col) " WHERE " col " OPERATOR(pg_catalog.=) $1"

static const char *good[] = {
	"SELECT * FROM loyalty.member" BY_PROGRAM("program"),
	"SELECT u.*, pg_catalog.count(*), " NEXT_ID " FROM unnest($1::bigint[], $2::numeric[]) AS u(a, b)",
	"UPDATE loyalty.member SET balance = balance OPERATOR(pg_catalog.+) $2, \"window\" = $3,"
	"       debt = coalesce(greatest(debt, least(1, 2)), -1) WHERE id OPERATOR(pg_catalog.=) $1",
	"INSERT INTO loyalty.x AS t (a) VALUES ($1) ON CONFLICT (a) DO UPDATE"
	" SET a = t.a OPERATOR(pg_catalog.-) excluded.a, b = OPERATOR(pg_catalog.-) 1",
	"SELECT 'a = b, c < d || -e' AS text, x::pg_catalog.text, y::loyalty.rfm, -1, loyalty.f(a => 1)"
	"  FROM loyalty.t WHERE a OPERATOR(pg_catalog.=) ANY ($1) AND b IS NULL",
	"SELECT o.* FROM %s AS o WHERE o.%s OPERATOR(%s) $1 LIMIT 1",
	"SELECT CASE WHEN a OPERATOR(pg_catalog.<) 1 THEN 0 END, extract(epoch FROM $1), ARRAY(SELECT 1)",
	"DELETE FROM t USING (SELECT 1 AS a) s WHERE t.a OPERATOR(pg_catalog.=) s.a",
	"UPDATE", "not SQL: a = b",
};
