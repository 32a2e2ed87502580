-- docs/adopting.md, "Upgrading", the update as written (run.sh runs it
-- and expects no output: no row of verify()).
ALTER EXTENSION loyalty UPDATE;   -- to the newest version installed
SELECT * FROM loyalty.verify() WHERE NOT ok;   -- still no rows
