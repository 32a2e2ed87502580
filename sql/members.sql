-- Members: enrollment is idempotent; status changes; bad input.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- The program of programs.sql (the same call again is a no-op), so this file runs alone.
SELECT loyalty.create_program('basic');

SELECT loyalty.enroll('basic', 'm1', '{"country": "VN", "birthday": "1990-05-01"}');
SELECT loyalty.enroll('basic', 'm1', '{"country": "changed"}');   -- false: already a member
SELECT loyalty.enroll('basic', 'm2');
SELECT member_id, profile, status, balance FROM loyalty.member WHERE program = 'basic' ORDER BY 1;

SELECT loyalty.set_member_status('basic', 'm2', 'held');
SELECT member_id, status FROM loyalty.member WHERE program = 'basic' ORDER BY 1;
SELECT loyalty.set_member_status('basic', 'm2', 'active');

-- An unknown member has a zero balance, not an error.
SELECT * FROM loyalty.balance('basic', 'nobody', '2025-01-01');

-- Bad input.
SELECT loyalty.enroll('nope', 'm1');
SELECT loyalty.enroll(NULL, 'm1');
SELECT loyalty.enroll('basic', NULL);
SELECT loyalty.enroll('basic', '');
SELECT loyalty.enroll('basic', 'm3', '[1, 2]');
SELECT loyalty.enroll('basic', 'm3', NULL);
SELECT loyalty.set_member_status('basic', 'm2', 'banned');
SELECT loyalty.set_member_status('basic', 'ghost', 'held');
SELECT * FROM loyalty.balance('nope', 'm1');
SELECT * FROM loyalty.balance('basic', NULL);
SELECT count(*) FROM loyalty.member WHERE program = 'basic';
