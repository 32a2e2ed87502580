-- Input of the types loyalty.tier_ladder and loyalty.rfm: text and binary
-- input keep one set of rules (a binary value the text form refuses made
-- every order insert fail and a dump that did not restore); a missing "|"
-- is an error, not two levels merged into one; level names are printable
-- text.  Every good value reads back the same through text and binary.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

-- Binary input is tested through COPY (FORMAT binary): a bytea field's
-- binary form is its bytes, so a file written from a bytea reads back into
-- a column of our type through the type's receive function.
SELECT current_setting('data_directory') || '/loyalty_types_input.bin' AS bin_file \gset
CREATE TEMP TABLE ti_ladder_in (v loyalty.tier_ladder);
CREATE TEMP TABLE ti_rfm_in (v loyalty.rfm);
-- The text a value receives as (or the SQLSTATE, message and detail of the refusal).
CREATE FUNCTION ti_recv(bytes bytea, into_table regclass) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    f text := current_setting('data_directory') || '/loyalty_types_input.bin';
    got text;
    msg text;
    det text;
BEGIN
    EXECUTE format('COPY (SELECT %L::bytea) TO %L (FORMAT binary)', bytes, f);
    EXECUTE format('TRUNCATE %s', into_table);
    EXECUTE format('COPY %s FROM %L (FORMAT binary)', into_table, f);
    EXECUTE format('SELECT v::text FROM %s', into_table) INTO got;
    RETURN got;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || msg || coalesce(' / ' || nullif(det, ''), '');
END
$$;
-- The text a value reads back as from text input (or the refusal).
CREATE FUNCTION ti_in(input text, typ regtype) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    got text;
    msg text;
    det text;
BEGIN
    EXECUTE format('SELECT %L::%s::text', input, typ) INTO got;
    RETURN got;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || msg || coalesce(' / ' || nullif(det, ''), '');
END
$$;
-- A ladder in the binary form of tier_ladder_send: basis and downgrade
-- bytes, window and grace int4, level count int2, then per level the
-- threshold (int8, x 10000), multiplier (int4, x 1000), name length and bytes.
CREATE FUNCTION ti_ladder_bytes(basis int, downgrade int, window_days int, grace_days int,
                                thresholds bigint[], multipliers int[], names bytea[],
                                nlevels int DEFAULT NULL) RETURNS bytea
LANGUAGE sql AS $$
SELECT set_byte('\x00'::bytea, 0, basis) || set_byte('\x00'::bytea, 0, downgrade)
       || int4send(window_days) || int4send(grace_days)
       || int2send(coalesce(nlevels, cardinality(names))::smallint)
       || coalesce((SELECT string_agg(int8send(t) || int4send(m) || int4send(octet_length(n)) || n, ''::bytea ORDER BY i)
                      FROM unnest(thresholds, multipliers, names) WITH ORDINALITY AS u(t, m, n, i)), ''::bytea)
$$;
-- The helper writes exactly what the type sends.
SELECT ti_ladder_bytes(0, 0, 365, 0, '{0,5000000}', '{1000,1250}', ARRAY['Member', 'Silver']::bytea[])
     = loyalty.tier_ladder_send('basis=spend window=365d | Member 0 x1 | Silver 500 x1.25') AS same_bytes;
SELECT ti_recv(ti_ladder_bytes(0, 0, 365, 0, '{0,5000000}', '{1000,1250}', ARRAY['Member', 'Silver']::bytea[]),
               'ti_ladder_in') AS good_binary;

-- The bug: binary input took a window of 2147483647 days; then every order
-- of the program failed ("timestamp out of range") and the ladder's text
-- form was refused on restore.  Now it is refused where it comes in (22P03).
SELECT ti_ladder_bytes(0, 0, 2147483647, 0, '{0,5000000}', '{1000,1250}', ARRAY['Member', 'Silver']::bytea[]) AS b \gset
COPY (SELECT :'b'::bytea) TO :'bin_file' (FORMAT binary);
TRUNCATE ti_ladder_in;
COPY ti_ladder_in FROM :'bin_file' (FORMAT binary);
SELECT count(*) AS received FROM ti_ladder_in;
-- ... and so is a blank name.
SELECT ti_recv(ti_ladder_bytes(0, 0, 365, 0, '{0,5000000}', '{1000,1250}', ARRAY[' ', 'Silver']::bytea[]),
               'ti_ladder_in') AS blank_name;

-- Every rule of the text form, in binary: each value is refused with the
-- part at fault (the first row is a good ladder, for comparison).
SELECT what, ti_recv(bytes, 'ti_ladder_in') AS received
  FROM (VALUES
    ('good',                 ti_ladder_bytes(0, 0, 365, 30, '{0,5000000}', '{1000,1250}', ARRAY['Member', 'Silver']::bytea[])),
    ('window 2147483647',    ti_ladder_bytes(0, 0, 2147483647, 0, '{0}', '{1000}', ARRAY['Member']::bytea[])),
    ('window 36501',         ti_ladder_bytes(0, 0, 36501, 0, '{0}', '{1000}', ARRAY['Member']::bytea[])),
    ('window 0',             ti_ladder_bytes(0, 0, 0, 0, '{0}', '{1000}', ARRAY['Member']::bytea[])),
    ('window -1',            ti_ladder_bytes(0, 0, -1, 0, '{0}', '{1000}', ARRAY['Member']::bytea[])),
    ('grace -1',             ti_ladder_bytes(0, 0, 365, -1, '{0}', '{1000}', ARRAY['Member']::bytea[])),
    ('grace 36501',          ti_ladder_bytes(0, 0, 365, 36501, '{0}', '{1000}', ARRAY['Member']::bytea[])),
    ('basis 3',              ti_ladder_bytes(3, 0, 365, 0, '{0}', '{1000}', ARRAY['Member']::bytea[])),
    ('downgrade 2',          ti_ladder_bytes(0, 2, 365, 0, '{0}', '{1000}', ARRAY['Member']::bytea[])),
    ('no level',             ti_ladder_bytes(0, 0, 365, 0, '{}', '{}', '{}'::bytea[])),
    ('17 levels',            ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['Member']::bytea[], 17)),
    ('level count -1',       ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['Member']::bytea[], -1)),
    ('first threshold -5',   ti_ladder_bytes(0, 0, 365, 0, '{-5}', '{1000}', ARRAY['Member']::bytea[])),
    ('first threshold 1',    ti_ladder_bytes(0, 0, 365, 0, '{10000}', '{1000}', ARRAY['Member']::bytea[])),
    ('thresholds fall',      ti_ladder_bytes(0, 0, 365, 0, '{0,0}', '{1000,1250}', ARRAY['Member', 'Silver']::bytea[])),
    ('multiplier 0',         ti_ladder_bytes(0, 0, 365, 0, '{0}', '{0}', ARRAY['Member']::bytea[])),
    ('multiplier -1000',     ti_ladder_bytes(0, 0, 365, 0, '{0}', '{-1000}', ARRAY['Member']::bytea[])),
    ('multiplier 100.001',   ti_ladder_bytes(0, 0, 365, 0, '{0}', '{100001}', ARRAY['Member']::bytea[])),
    ('same name',            ti_ladder_bytes(0, 0, 365, 0, '{0,5000000}', '{1000,1250}', ARRAY['Gold', 'GOLD']::bytea[])),
    ('empty name',           ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['']::bytea[])),
    ('blank name',           ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['   ']::bytea[])),
    ('leading space',        ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY[' Gold']::bytea[])),
    ('trailing space',       ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['Gold ']::bytea[])),
    ('two spaces',           ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['Gold  Plus']::bytea[])),
    ('tab',                  ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['\x476f6c6409506c7573']::bytea[])),
    ('escape',               ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['\x476f6c641b']::bytea[])),
    ('zero byte',            ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['\x476f006c64']::bytea[])),
    ('bar',                  ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['Gold|Plus']::bytea[])),
    ('zero-width space',     ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY[convert_to(U&'Go\200Bld', 'UTF8')])),
    ('byte order mark',      ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY[convert_to(U&'\FEFFGold', 'UTF8')])),
    ('no-break space only',  ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY[convert_to(U&'\00A0', 'UTF8')])),
    ('multiplier word',      ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['Gold x2']::bytea[])),
    ('64 characters',        ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY[convert_to(repeat('é', 64), 'UTF8')])),
    ('not UTF-8',            ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['\x476fff']::bytea[])),
    ('name longer than sent', ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1000}', ARRAY['Gold']::bytea[]) || '\x00'::bytea)
  ) AS t(what, bytes);

-- The same rules in text (22P02, the input quoted, the part at fault named).
-- A missing "|": two levels are not merged into "Member 0 x1 Silver".
SELECT 'Member 0 x1 Silver 500 x1.25'::loyalty.tier_ladder;
SELECT 'Basic 0 x1 | Member 100 x1 Silver 500 x1.25 | Gold 2000 x2'::loyalty.tier_ladder;
-- An empty part is a typo, not a level to skip.
SELECT 'Member 0 x1 || Silver 500 x1.25'::loyalty.tier_ladder;
SELECT 'Member 0 x1 | Silver 500 x1.25 |'::loyalty.tier_ladder;
SELECT '| Member 0 x1'::loyalty.tier_ladder;
SELECT E' \t '::loyalty.tier_ladder;
-- Names are printable text.
SELECT E'Mem\x01ber 0 x1'::loyalty.tier_ladder;
SELECT E'Member\x7f 0 x1'::loyalty.tier_ladder;
SELECT U&'Mem\0085ber 0 x1'::loyalty.tier_ladder;
SELECT U&'Mem\200Bber 0 x1'::loyalty.tier_ladder;
SELECT U&'Mem\200Cber 0 x1'::loyalty.tier_ladder;
SELECT U&'Mem\200Dber 0 x1'::loyalty.tier_ladder;
SELECT U&'Mem\2060ber 0 x1'::loyalty.tier_ladder;
SELECT U&'\FEFFMember 0 x1'::loyalty.tier_ladder;
SELECT U&'Mem\00ADber 0 x1'::loyalty.tier_ladder;
SELECT U&'Mem\202Eber 0 x1'::loyalty.tier_ladder;
SELECT U&'\00A0Member 0 x1'::loyalty.tier_ladder;
SELECT U&'Gold\3000Plus 0 x1'::loyalty.tier_ladder;
SELECT 'x2 0 x1'::loyalty.tier_ladder;
SELECT (repeat('é', 64) || ' 0 x1')::loyalty.tier_ladder;
-- Window and grace: at most 36500 days.
SELECT 'window=36501d | Member 0 x1'::loyalty.tier_ladder;
SELECT 'grace=36501d | Member 0 x1'::loyalty.tier_ladder;

-- Good text: blanks of any kind between words (read as one space), names
-- of several words, with digits, accents, other scripts and emoji, 63
-- characters of two bytes each, the longest window and grace.
CREATE TEMP TABLE ti_good (input text);
INSERT INTO ti_good VALUES
    ('Member 0 x1 | Gold Plus 500 x2'),
    (E'Member\t0\tx1\r\n|\r\nGold   500    x2'),
    ('Level 1 0 x1 | Level 2 100 x1.5 | Club x 200 x2 | X1 300 x3'),
    ('basis=orders window=36500d grace=36500d downgrade=drop | Membre 0 x1 | Habitué 3 x1.1 | 金卡 500 x2 | ⭐ Star 900 x3'),
    (repeat('é', 63) || ' 0 x1'),
    ('Member 0 x1 | Silver 500.5 x1.25 | Gold 100000000000000.0001 x100');
-- Each reads back the same through its text output (what pg_dump writes and
-- psql reads) and through binary send and receive.
SELECT input::loyalty.tier_ladder AS ladder,
       loyalty.tier_ladder_send(input::loyalty.tier_ladder::text::loyalty.tier_ladder)
         = loyalty.tier_ladder_send(input::loyalty.tier_ladder) AS text_round_trip,
       ti_recv(loyalty.tier_ladder_send(input::loyalty.tier_ladder), 'ti_ladder_in')
         = input::loyalty.tier_ladder::text AS binary_round_trip
  FROM ti_good;

-- Whatever binary input accepts, its text output reads back as the same
-- ladder: every byte of a good ladder is set in turn to each of a few
-- values (0, a blank, "|", "x", a digit, a control, 0x7f, 0xff) and every
-- variant received is read back through text.
CREATE TEMP TABLE ti_variants AS
SELECT pos, val, ti_recv(set_byte(b, pos, val), 'ti_ladder_in') AS received
  FROM (SELECT loyalty.tier_ladder_send('basis=points window=90d grace=7d | Blue 0 x1 | Red Plus 1.5 x2') AS b) g,
       generate_series(0, length(loyalty.tier_ladder_send('basis=points window=90d grace=7d | Blue 0 x1 | Red Plus 1.5 x2')) - 1) pos,
       unnest('{0,32,124,120,49,9,127,255}'::int[]) val;
SELECT count(*) AS variants, count(*) FILTER (WHERE received LIKE 'basis=%') AS accepted
  FROM ti_variants;
SELECT bool_and(received::loyalty.tier_ladder::text = received) AS accepted_read_back
  FROM ti_variants WHERE received LIKE 'basis=%';
-- The refusals, by SQLSTATE and message.
SELECT split_part(received, ' / ', 1) AS refusal, count(*) FROM ti_variants WHERE received NOT LIKE 'basis=%'
 GROUP BY 1 ORDER BY 1;

-- The order insert: a program's ladder comes only from values the rules
-- accept, so its orders earn (at x1.5 from the start: one level).
SELECT loyalty.create_program('ti_shop', 'USD', 1);
SELECT ti_recv(ti_ladder_bytes(0, 0, 2147483647, 0, '{0}', '{1500}', ARRAY['Only']::bytea[]), 'ti_ladder_in') AS refused;
SELECT ti_recv(ti_ladder_bytes(0, 0, 365, 0, '{0}', '{1500}', ARRAY['Only']::bytea[]), 'ti_ladder_in') AS accepted;
SELECT loyalty.set_tier_ladder('ti_shop', v) FROM ti_ladder_in;
CREATE TABLE ti_orders (id int, member text, amount numeric, at timestamptz);
SELECT loyalty.attach_orders('ti_shop', 'ti_orders', 'id', 'member', 'amount', created_at => 'at');
INSERT INTO ti_orders VALUES (1, 'tia', 100, '2024-01-01'), (2, 'tia', 10, '2024-01-02');
SELECT order_id, points, multiplier FROM loyalty.order_earning WHERE program = 'ti_shop' ORDER BY 1;
SELECT count(*) AS dead_letters FROM loyalty.dead_letter WHERE program = 'ti_shop';
-- The restore: the programs' rows in text, as pg_dump writes them, read back.
CREATE TEMP TABLE ti_program_copy (LIKE loyalty.program);
SELECT current_setting('data_directory') || '/loyalty_types_input_programs.txt' AS program_file \gset
COPY loyalty.program TO :'program_file';
COPY ti_program_copy FROM :'program_file';
SELECT (SELECT count(*) FROM ti_program_copy) = (SELECT count(*) FROM loyalty.program) AS every_program_restores,
       (SELECT tier_ladder::text FROM ti_program_copy WHERE code = 'ti_shop') AS ti_shop_ladder;

-- rfm: text and binary input keep the same rule (three scores 1-5).
SELECT v AS text_in, ti_in(v, 'loyalty.rfm') AS text_result
  FROM unnest(ARRAY['111', '555', '543', '603', '160', '106', '000', '54', '5433', ' 543', '543 ', '5a3', '', '+43']) v;
SELECT v AS binary_in, ti_recv(int2send(v), 'ti_rfm_in') AS binary_result
  FROM unnest(ARRAY[111, 555, 543, 603, 160, 106, 0, -111, 1000, 32767, -32768]::smallint[]) v;
-- rfm errors as a client sees them.
SELECT '5a3'::loyalty.rfm;
COPY (SELECT int2send(106::smallint)) TO :'bin_file' (FORMAT binary);
COPY ti_rfm_in FROM :'bin_file' (FORMAT binary);
