-- Program archival and health: job runs, the health view, pg_cron scheduling.

-- archive_program() (12_program_admin.sql) sets it; added here, after every
-- other column of loyalty.program, so a fresh install has the columns in
-- the order an updated 0.1.0 database has them.
ALTER TABLE @extschema@.program ADD COLUMN archived_at timestamptz;
COMMENT ON COLUMN @extschema@.program.archived_at IS
    'When loyalty.archive_program() archived the program (NULL: active): it earns no more, balances stay readable and redeemable';
