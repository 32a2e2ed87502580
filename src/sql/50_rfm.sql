-- RFM: the loyalty.rfm type, segments, and scoring.

CREATE TYPE @extschema@.rfm;

CREATE FUNCTION @extschema@.rfm_in(cstring) RETURNS @extschema@.rfm
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_in';
CREATE FUNCTION @extschema@.rfm_out(@extschema@.rfm) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_out';
CREATE FUNCTION @extschema@.rfm_recv(internal) RETURNS @extschema@.rfm
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_recv';
CREATE FUNCTION @extschema@.rfm_send(@extschema@.rfm) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_send';

CREATE TYPE @extschema@.rfm (
    INPUT = @extschema@.rfm_in,
    OUTPUT = @extschema@.rfm_out,
    RECEIVE = @extschema@.rfm_recv,
    SEND = @extschema@.rfm_send,
    INTERNALLENGTH = 2,
    PASSEDBYVALUE,
    ALIGNMENT = int2,
    STORAGE = plain
);
COMMENT ON TYPE @extschema@.rfm IS
    'Recency, frequency and monetary scores from 1 to 5, written as three digits, recency first (''543''); ordered as that number';
COMMENT ON FUNCTION @extschema@.rfm_in(cstring) IS 'rfm input: three digits from 1 to 5';
COMMENT ON FUNCTION @extschema@.rfm_out(@extschema@.rfm) IS 'rfm output: three digits';
COMMENT ON FUNCTION @extschema@.rfm_recv(internal) IS 'rfm binary input: an int2, checked';
COMMENT ON FUNCTION @extschema@.rfm_send(@extschema@.rfm) IS 'rfm binary output: an int2';

CREATE FUNCTION @extschema@.rfm(r integer, f integer, m integer) RETURNS @extschema@.rfm
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_make';
COMMENT ON FUNCTION @extschema@.rfm(integer, integer, integer) IS 'Builds an rfm value from its three scores (each 1 to 5)';
CREATE FUNCTION @extschema@.r(@extschema@.rfm) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_r';
COMMENT ON FUNCTION @extschema@.r(@extschema@.rfm) IS 'The recency score (5: bought most recently)';
CREATE FUNCTION @extschema@.f(@extschema@.rfm) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_f';
COMMENT ON FUNCTION @extschema@.f(@extschema@.rfm) IS 'The frequency score (5: the most orders)';
CREATE FUNCTION @extschema@.m(@extschema@.rfm) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_m';
COMMENT ON FUNCTION @extschema@.m(@extschema@.rfm) IS 'The monetary score (5: the most spend)';

-- Comparison and hashing: an rfm is stored as the int2 r*100+f*10+m, so
-- PostgreSQL's own int2 functions compare and hash it.
CREATE FUNCTION @extschema@.rfm_eq(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2eq';
CREATE FUNCTION @extschema@.rfm_ne(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2ne';
CREATE FUNCTION @extschema@.rfm_lt(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2lt';
CREATE FUNCTION @extschema@.rfm_le(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2le';
CREATE FUNCTION @extschema@.rfm_gt(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2gt';
CREATE FUNCTION @extschema@.rfm_ge(@extschema@.rfm, @extschema@.rfm) RETURNS boolean
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'int2ge';
CREATE FUNCTION @extschema@.rfm_cmp(@extschema@.rfm, @extschema@.rfm) RETURNS integer
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'btint2cmp';
CREATE FUNCTION @extschema@.rfm_hash(@extschema@.rfm) RETURNS integer
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'hashint2';
CREATE FUNCTION @extschema@.rfm_hash_extended(@extschema@.rfm, bigint) RETURNS bigint
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'hashint2extended';
COMMENT ON FUNCTION @extschema@.rfm_eq(@extschema@.rfm, @extschema@.rfm) IS 'rfm =';
COMMENT ON FUNCTION @extschema@.rfm_ne(@extschema@.rfm, @extschema@.rfm) IS 'rfm <>';
COMMENT ON FUNCTION @extschema@.rfm_lt(@extschema@.rfm, @extschema@.rfm) IS 'rfm <';
COMMENT ON FUNCTION @extschema@.rfm_le(@extschema@.rfm, @extschema@.rfm) IS 'rfm <=';
COMMENT ON FUNCTION @extschema@.rfm_gt(@extschema@.rfm, @extschema@.rfm) IS 'rfm >';
COMMENT ON FUNCTION @extschema@.rfm_ge(@extschema@.rfm, @extschema@.rfm) IS 'rfm >=';
COMMENT ON FUNCTION @extschema@.rfm_cmp(@extschema@.rfm, @extschema@.rfm) IS 'rfm btree comparison';
COMMENT ON FUNCTION @extschema@.rfm_hash(@extschema@.rfm) IS 'rfm hash';
COMMENT ON FUNCTION @extschema@.rfm_hash_extended(@extschema@.rfm, bigint) IS 'rfm hash with a seed';

CREATE OPERATOR @extschema@.= (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_eq,
    COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR @extschema@.<> (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_ne,
    COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR @extschema@.< (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_lt,
    COMMUTATOR = OPERATOR(@extschema@.>), NEGATOR = OPERATOR(@extschema@.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR @extschema@.<= (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_le,
    COMMUTATOR = OPERATOR(@extschema@.>=), NEGATOR = OPERATOR(@extschema@.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR @extschema@.> (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_gt,
    COMMUTATOR = OPERATOR(@extschema@.<), NEGATOR = OPERATOR(@extschema@.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR @extschema@.>= (
    LEFTARG = @extschema@.rfm, RIGHTARG = @extschema@.rfm, PROCEDURE = @extschema@.rfm_ge,
    COMMUTATOR = OPERATOR(@extschema@.<=), NEGATOR = OPERATOR(@extschema@.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS @extschema@.rfm_ops DEFAULT FOR TYPE @extschema@.rfm USING btree AS
    OPERATOR 1 @extschema@.<,
    OPERATOR 2 @extschema@.<=,
    OPERATOR 3 @extschema@.=,
    OPERATOR 4 @extschema@.>=,
    OPERATOR 5 @extschema@.>,
    FUNCTION 1 @extschema@.rfm_cmp(@extschema@.rfm, @extschema@.rfm);
CREATE OPERATOR CLASS @extschema@.rfm_hash_ops DEFAULT FOR TYPE @extschema@.rfm USING hash AS
    OPERATOR 1 @extschema@.=,
    FUNCTION 1 @extschema@.rfm_hash(@extschema@.rfm),
    FUNCTION 2 @extschema@.rfm_hash_extended(@extschema@.rfm, bigint);

-- Segments: first matching rule by priority; a program's own rules replace
-- the default map (program NULL) as a whole.
CREATE TABLE @extschema@.rfm_segment_rule (
    program     text REFERENCES @extschema@.program (code),
    priority    integer NOT NULL,
    segment     text NOT NULL,
    r_min       smallint NOT NULL DEFAULT 1,
    r_max       smallint NOT NULL DEFAULT 5,
    f_min       smallint NOT NULL DEFAULT 1,
    f_max       smallint NOT NULL DEFAULT 5,
    m_min       smallint NOT NULL DEFAULT 1,
    m_max       smallint NOT NULL DEFAULT 5,
    CONSTRAINT rfm_segment_rule_ranges CHECK (
        1 <= r_min AND r_min <= r_max AND r_max <= 5 AND
        1 <= f_min AND f_min <= f_max AND f_max <= 5 AND
        1 <= m_min AND m_min <= m_max AND m_max <= 5)
);
CREATE UNIQUE INDEX rfm_segment_rule_key ON @extschema@.rfm_segment_rule (coalesce(program, ''), priority);
COMMENT ON TABLE @extschema@.rfm_segment_rule IS
    'RFM segment map: the first rule (lowest priority number) whose score ranges hold names the segment; program NULL is the default map, a program''s own rules replace it';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rfm_segment_rule', 'WHERE program IS NOT NULL');

-- The default map: the usual recency x frequency grid, with Lost carved out
-- of Hibernating by spend.  It covers every one of the 125 values.
INSERT INTO @extschema@.rfm_segment_rule (program, priority, segment, r_min, r_max, f_min, f_max, m_min, m_max) VALUES
    (NULL,  10, 'Champions',          5, 5, 4, 5, 1, 5),
    (NULL,  20, 'Loyal',              3, 4, 4, 5, 1, 5),
    (NULL,  30, 'Cannot Lose Them',   1, 2, 5, 5, 1, 5),
    (NULL,  40, 'At Risk',            1, 2, 3, 4, 1, 5),
    (NULL,  50, 'Potential Loyalist', 4, 5, 2, 3, 1, 5),
    (NULL,  60, 'New',                5, 5, 1, 1, 1, 5),
    (NULL,  70, 'Promising',          4, 4, 1, 1, 1, 5),
    (NULL,  80, 'Need Attention',     3, 3, 3, 3, 1, 5),
    (NULL,  90, 'About to Sleep',     3, 3, 1, 2, 1, 5),
    (NULL, 100, 'Lost',               1, 1, 1, 2, 1, 2),
    (NULL, 110, 'Hibernating',        1, 2, 1, 2, 1, 5);

CREATE FUNCTION @extschema@.rfm_segment(score @extschema@.rfm, program text DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT s.segment
      FROM loyalty.rfm_segment_rule s
     WHERE (s.program = rfm_segment.program
            OR (s.program IS NULL AND NOT EXISTS (SELECT 1 FROM loyalty.rfm_segment_rule o
                                                   WHERE o.program = rfm_segment.program)))
       AND loyalty.r(score) BETWEEN s.r_min AND s.r_max
       AND loyalty.f(score) BETWEEN s.f_min AND s.f_max
       AND loyalty.m(score) BETWEEN s.m_min AND s.m_max
     ORDER BY s.priority
     LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.rfm_segment(@extschema@.rfm, text) IS
    'The segment of an RFM value: the program''s own map when it has one, else the default map (Champions, Loyal, Potential Loyalist, New, Promising, Need Attention, About to Sleep, At Risk, Cannot Lose Them, Hibernating, Lost)';

-- Scores per member, written by loyalty.score_rfm().  A pass rewrites only
-- the members whose figures changed: the scores keep the last order's time,
-- and recency in days is worked out against the pass's time in the view
-- loyalty.member_rfm, so a nightly pass does not touch every row.
CREATE TABLE @extschema@.rfm_score (
    program         text NOT NULL,
    member_id       text NOT NULL,
    last_order_at   timestamptz NOT NULL,
    frequency       integer NOT NULL,
    monetary        numeric NOT NULL,
    rfm             @extschema@.rfm NOT NULL,
    segment         text,
    PRIMARY KEY (program, member_id)
);
CREATE INDEX rfm_score_rfm_idx ON @extschema@.rfm_score (program, rfm);
COMMENT ON TABLE @extschema@.rfm_score IS
    'RFM per member as of the program''s last loyalty.score_rfm() (read it through loyalty.member_rfm)';
COMMENT ON COLUMN @extschema@.rfm_score.last_order_at IS 'Time of the member''s last counted order in the window';

-- The last scoring pass of each program.
CREATE TABLE @extschema@.rfm_pass (
    program         text PRIMARY KEY,
    scored_at       timestamptz NOT NULL,
    lookback        interval NOT NULL,
    members         bigint NOT NULL,
    written         bigint NOT NULL
);
COMMENT ON TABLE @extschema@.rfm_pass IS
    'The last loyalty.score_rfm() pass per program: its as_of, lookback window, members scored and rows written';
COMMENT ON COLUMN @extschema@.rfm_pass.lookback IS 'The pass''s window: orders in (scored_at - lookback, scored_at] were scored';
COMMENT ON COLUMN @extschema@.rfm_pass.written IS 'Score rows inserted, updated or deleted by the pass';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rfm_score', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rfm_pass', '');

CREATE VIEW @extschema@.member_rfm AS
    SELECT s.program, s.member_id,
           floor(extract(epoch FROM p.scored_at - s.last_order_at) / 86400)::integer AS recency_days,
           s.frequency, s.monetary, s.rfm, s.segment, p.scored_at,
           -- The scores as plain text and integers: a BI tool filters and
           -- groups by them without loyalty on its search_path (the rfm
           -- type's operators live in the loyalty schema).
           s.rfm::pg_catalog.text AS rfm_code,
           @extschema@.r(s.rfm) AS r, @extschema@.f(s.rfm) AS f, @extschema@.m(s.rfm) AS m
      FROM @extschema@.rfm_score s
      JOIN @extschema@.rfm_pass p ON p.program = s.program
      JOIN @extschema@.member m ON m.program = s.program AND m.member_id = s.member_id
      LEFT JOIN @extschema@.consent_policy c ON c.program = s.program
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = s.program AND x.member_id = s.member_id)
       -- Profiling consent, as loyalty.has_consent reads it (written out:
       -- a view's readers may not call that function).
       -- (An answer that is not a JSON boolean counts as none.)
       AND coalesce(CASE WHEN jsonb_typeof(m.profile -> 'consent' -> 'profiling' -> 'granted') = 'boolean'
                         THEN (m.profile -> 'consent' -> 'profiling' ->> 'granted')::boolean END,
                    NOT coalesce(c.required, false))
       -- A forgotten member is profiled no more (GDPR/PIPL: erasure).
       AND m.status OPERATOR(pg_catalog.<>) 'forgotten';
COMMENT ON VIEW @extschema@.member_rfm IS
    'RFM per member as of the last loyalty.score_rfm(): recency in whole days, distinct orders, net spend in base currency, scores and segment; excluded members and members without profiling consent left out';
COMMENT ON COLUMN @extschema@.member_rfm.program IS 'Program code';
COMMENT ON COLUMN @extschema@.member_rfm.member_id IS 'Member id';
COMMENT ON COLUMN @extschema@.member_rfm.recency_days IS 'Whole days from the member''s last order in the window to scored_at';
COMMENT ON COLUMN @extschema@.member_rfm.frequency IS 'Distinct orders in the window with something left after refunds';
COMMENT ON COLUMN @extschema@.member_rfm.monetary IS 'Net spend in the window in the program''s base currency: each order''s amount less refunds at its FX rate, rounded to 4 decimals, summed';
COMMENT ON COLUMN @extschema@.member_rfm.rfm IS 'Recency, frequency and monetary scores, 1-5 each (quintiles, ties sharing a score)';
COMMENT ON COLUMN @extschema@.member_rfm.segment IS 'Segment of the score in the program''s map (empty when no rule matches)';
COMMENT ON COLUMN @extschema@.member_rfm.scored_at IS 'The as_of of the scoring pass';
COMMENT ON COLUMN @extschema@.member_rfm.rfm_code IS 'The scores as text (''543''): WHERE rfm_code = ''555'' works without loyalty on the search_path';
COMMENT ON COLUMN @extschema@.member_rfm.r IS 'Recency score, 1-5 (5: bought most recently)';
COMMENT ON COLUMN @extschema@.member_rfm.f IS 'Frequency score, 1-5 (5: the most orders)';
COMMENT ON COLUMN @extschema@.member_rfm.m IS 'Monetary score, 1-5 (5: the most spend)';

-- Not STRICT: NULL arguments are errors.
CREATE FUNCTION @extschema@.score_rfm(program text, as_of timestamptz DEFAULT now(),
                                     lookback interval DEFAULT '365 days')
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
-- JIT compiling the pass's million-row queries costs more than it saves.
SET jit = off
AS 'MODULE_PATHNAME', 'loyalty_score_rfm';
COMMENT ON FUNCTION @extschema@.score_rfm(text, timestamptz, interval) IS
    'Scores every member with orders in the window before as_of into loyalty.member_rfm (quintiles, ties sharing a score); returns the members scored';
