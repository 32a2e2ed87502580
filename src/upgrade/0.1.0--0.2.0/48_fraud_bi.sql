-- 0.1.0 -> 0.2.0, src/sql/97_fraud_bi.sql is new in 0.2.0: its objects as a fresh install makes them.

-- The fraud flags for BI: by program, day raised, rule and state.
CREATE VIEW @extschema@.fraud_overview AS
SELECT f.program,
       (f.raised_at AT TIME ZONE p.timezone)::date AS day,
       f.rule,
       f.state,
       count(*) AS flags,
       count(DISTINCT f.member_id) AS members,
       sum(f.points_at_risk)::bigint AS points_at_risk,
       sum(f.points_reversed)::bigint AS points_reversed
  FROM @extschema@.fraud_flag f
  JOIN @extschema@.program p ON p.code = f.program
 WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                    WHERE x.program = f.program AND x.member_id = f.member_id)
 GROUP BY f.program, 2, f.rule, f.state;

COMMENT ON VIEW @extschema@.fraud_overview IS
    'Fraud flags by program, day raised (program time zone), rule and state: flags, members, points at risk when raised, points reversed by confirmations; excluded members left out';
