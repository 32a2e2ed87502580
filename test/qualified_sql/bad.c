/*
 * Statements scripts/check_qualified_sql.pl must refuse, one finding
 * each, each statement on a line of its own (test/run.sh, suite
 * "qualified SQL").
 */
static const char *bad[] = {
	"SELECT 1 FROM loyalty.member WHERE program = $1",
	"SELECT 1 FROM loyalty.member WHERE program OPERATOR(pg_catalog.=) $1 AND balance <> 0",
	"SELECT OPERATOR(pg_catalog.-) a, a <= b FROM t WHERE x OPERATOR(pg_catalog.=) 1",
	"SELECT a OPERATOR(pg_catalog.+) b * c FROM t",
	"SELECT a OPERATOR(pg_catalog.+) b / c FROM t",
	"SELECT -a FROM t",
	"SELECT a OPERATOR(pg_catalog.=) ANY ($1), b || 'x' FROM t",
	"SELECT a ~ 'x' FROM t",
	"SELECT a < b FROM t",
	"SELECT a != 1 FROM t",
	"UPDATE t SET a = a + 1 WHERE b OPERATOR(pg_catalog.=) 1",
	"UPDATE t SET a = 1 WHERE b = 1",
	"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 1, b = 2 WHERE t.c = 3",
	"SELECT 1 FROM t WHERE a IN (1, 2)",
	"SELECT 1 FROM t WHERE a BETWEEN 1 AND 2",
	"SELECT 1 FROM t WHERE a LIKE 'x%'",
	"SELECT 1 FROM t JOIN u USING (a, b)",
	"SELECT CASE a WHEN 1 THEN 2 END FROM t",
	"SELECT nullif(a, 1) FROM t",
	"SELECT 1 FROM t WHERE a IS DISTINCT FROM b",
	"SELECT now() FROM t",
	"SELECT sum(a) FROM t",
	"SELECT a::text FROM t",
	"SELECT o.* FROM %s AS o WHERE o.%s OPERATOR(public.=) $1",
	"WITH x AS (SELECT 1 AS a) SELECT a FROM x WHERE a > 0",
	"DELETE FROM t WHERE a = ANY ($1)",
};
