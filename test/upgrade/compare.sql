-- The differences between two catalogs of catalog.sql (tables updated and
-- fresh, one fact a line "kind | object | detail"), one line each, naming
-- the object:
--   differs: KIND OBJECT: updated DETAIL / fresh DETAIL
--   missing after the update: KIND OBJECT: DETAIL   (a fresh install has it)
--   only after the update: KIND OBJECT: DETAIL      (a fresh install has not)
--   note: ...                                        (reported, not a failure)
-- Column order is a note: ALTER TABLE ADD COLUMN can only append, so an
-- updated table may list a column later than a fresh one; every query of
-- the extension names its columns.
WITH u AS (
    SELECT split_part(line, ' | ', 1) AS kind, split_part(line, ' | ', 2) AS object,
           substr(line, length(split_part(line, ' | ', 1)) + length(split_part(line, ' | ', 2)) + 7) AS detail, line
    FROM updated
), f AS (
    SELECT split_part(line, ' | ', 1) AS kind, split_part(line, ' | ', 2) AS object,
           substr(line, length(split_part(line, ' | ', 1)) + length(split_part(line, ' | ', 2)) + 7) AS detail, line
    FROM fresh
), only_u AS (
    SELECT * FROM u WHERE line NOT IN (SELECT line FROM f)
), only_f AS (
    SELECT * FROM f WHERE line NOT IN (SELECT line FROM u)
), paired AS (
    -- One line on each side for the same fact: the fact differs.
    SELECT x.kind, x.object, x.detail AS du, y.detail AS df
    FROM only_u x JOIN only_f y USING (kind, object)
    WHERE (SELECT count(*) FROM only_u z WHERE z.kind = x.kind AND z.object = x.object) = 1
      AND (SELECT count(*) FROM only_f z WHERE z.kind = x.kind AND z.object = x.object) = 1
)
SELECT msg FROM (
    SELECT CASE WHEN kind = 'column order'
                THEN format('note: column order of %s: updated %s / fresh %s', object, du, df)
                ELSE format('differs: %s %s: updated %s / fresh %s', kind, object, du, df) END AS msg
    FROM paired
    UNION ALL
    SELECT format('missing after the update: %s %s: %s', kind, object, detail)
    FROM only_f y WHERE NOT EXISTS (SELECT 1 FROM paired p WHERE p.kind = y.kind AND p.object = y.object)
    UNION ALL
    SELECT format('only after the update: %s %s: %s', kind, object, detail)
    FROM only_u x WHERE NOT EXISTS (SELECT 1 FROM paired p WHERE p.kind = x.kind AND p.object = x.object)
) m
ORDER BY msg COLLATE "C";
