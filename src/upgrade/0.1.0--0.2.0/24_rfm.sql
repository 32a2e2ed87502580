-- 0.1.0 -> 0.2.0, what changed in src/sql/50_rfm.sql since 0.1.0: new objects created, changed functions and views replaced, tables altered.

CREATE OR REPLACE FUNCTION @extschema@.rfm_segment(score @extschema@.rfm, program text DEFAULT NULL)
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

CREATE OR REPLACE VIEW @extschema@.member_rfm AS
    SELECT s.program, s.member_id,
           floor(extract(epoch FROM p.scored_at - s.last_order_at) / 86400)::integer AS recency_days,
           s.frequency, s.monetary, s.rfm, s.segment, p.scored_at
      FROM @extschema@.rfm_score s
      JOIN @extschema@.rfm_pass p ON p.program = s.program
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = s.program AND x.member_id = s.member_id);

COMMENT ON VIEW @extschema@.member_rfm IS
    'RFM per member as of the last loyalty.score_rfm(): recency in whole days, distinct orders, net spend in base currency, scores and segment; excluded members left out';

-- Not STRICT: NULL arguments are errors.
CREATE OR REPLACE FUNCTION @extschema@.score_rfm(program text, as_of timestamptz DEFAULT now(),
                                     "window" interval DEFAULT '365 days')
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
-- JIT compiling the pass's million-row queries costs more than it saves.
SET jit = off
AS 'MODULE_PATHNAME', 'loyalty_score_rfm';
