-- docs/adopting.md, "Upgrading", before the update, as written (run.sh
-- runs it on 0.1.0 and expects only the version: no row of verify()).
SELECT * FROM loyalty.verify() WHERE NOT ok;   -- no rows
SELECT extversion FROM pg_extension WHERE extname = 'loyalty';
