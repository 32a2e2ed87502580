-- Holds and exclusions: members whose points stay pending and who cannot
-- redeem while their activity is reviewed, and test or staff accounts the
-- fraud checks and the BI views leave out.

-- Every hold of a member, open (released_at NULL) or past.
CREATE SEQUENCE @extschema@.member_hold_id_seq;
CREATE TABLE @extschema@.member_hold (
    id              bigint NOT NULL DEFAULT nextval('@extschema@.member_hold_id_seq'),
    program         text NOT NULL,
    member_id       text NOT NULL,
    source          text NOT NULL CHECK (source IN ('manual', 'fraud')),
    held_at         timestamptz NOT NULL DEFAULT now(),
    held_by         text NOT NULL DEFAULT current_user,
    released_at     timestamptz,
    released_by     text,
    note            text,
    release_note    text,
    PRIMARY KEY (id, member_id)
);
ALTER SEQUENCE @extschema@.member_hold_id_seq OWNED BY @extschema@.member_hold.id;
CREATE UNIQUE INDEX member_hold_open_key ON @extschema@.member_hold (program, member_id) WHERE released_at IS NULL;
COMMENT ON TABLE @extschema@.member_hold IS
    'Holds of members (status held): by hand or by the fraud risk score; released_at NULL while the hold lasts';

-- The lots a hold keeps pending: their available_at is infinity meanwhile;
-- the time they would have become available is kept here.
CREATE TABLE @extschema@.held_lot (
    lot_id          bigint NOT NULL,
    program         text NOT NULL,
    member_id       text NOT NULL,
    available_at    timestamptz NOT NULL,
    PRIMARY KEY (lot_id, member_id)
);
CREATE INDEX held_lot_member_idx ON @extschema@.held_lot (program, member_id);
COMMENT ON TABLE @extschema@.held_lot IS
    'Lots kept pending by a member''s hold (lot.available_at is infinity), with the time they become available once released';

-- Test, staff and other accounts no fraud rule flags and no BI view counts.
CREATE TABLE @extschema@.member_exclusion (
    program         text NOT NULL REFERENCES @extschema@.program (code),
    member_id       text NOT NULL,
    reason          text NOT NULL,
    excluded_at     timestamptz NOT NULL DEFAULT now(),
    excluded_by     text NOT NULL DEFAULT current_user,
    PRIMARY KEY (program, member_id)
);
COMMENT ON TABLE @extschema@.member_exclusion IS
    'Members excluded as test or staff accounts: never flagged by fraud_check, left out of the BI views';

COMMENT ON COLUMN @extschema@.member_hold.note IS 'Why the member was held (a fraud hold: the flags that raised the risk)';
COMMENT ON COLUMN @extschema@.member_hold.release_note IS 'Why the hold was released';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.member_hold', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.member_hold_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.held_lot', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.member_exclusion', '');

-- Raises unless the member is enrolled; returns its row, locked.  Holds
-- and releases lock the member first: a credit posted after that reads
-- the new status from the row it locks (CREDIT_WRITE in credit.h).
CREATE FUNCTION @extschema@.lock_member(program text, member_id text)
RETURNS @extschema@.member
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member;
BEGIN
    PERFORM loyalty.require_program(program);
    IF member_id IS NULL OR member_id = '' THEN
        RAISE EXCEPTION 'member_id must not be null or empty' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM loyalty.member x
     WHERE x.program = lock_member.program AND x.member_id = lock_member.member_id FOR UPDATE;
    IF NOT FOUND AND loyalty.forgotten_pseudonym(program, member_id) IS NOT NULL THEN   -- 39_gdpr.sql
        RAISE EXCEPTION 'member "%" of program "%" is forgotten', member_id, program
            USING ERRCODE = 'LY002', DETAIL = 'Its id was replaced by a pseudonym (loyalty.forget_member).';
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'member "%" is not enrolled in program "%"', member_id, program
            USING ERRCODE = '42704';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION @extschema@.lock_member(text, text) IS
    'Locks an enrolled member''s row and returns it; 42704 when not enrolled; internal';

CREATE FUNCTION @extschema@.hold_member(program text, member_id text, source text, note text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'source must not be null' USING ERRCODE = '22004', HINT = 'Use manual or fraud.';
    END IF;
    IF source NOT IN ('manual', 'fraud') THEN
        RAISE EXCEPTION 'unknown hold source: "%"', source
            USING ERRCODE = '22023', HINT = 'Use manual or fraud.';
    END IF;
    m := loyalty.lock_member(program, member_id);
    IF m.status = 'forgotten' THEN
        RAISE EXCEPTION 'member "%" of program "%" is forgotten and cannot be held', member_id, program
            USING ERRCODE = '55000';
    END IF;
    IF m.status = 'held' AND EXISTS (SELECT 1 FROM loyalty.member_hold h
                                      WHERE h.program = hold_member.program AND h.member_id = hold_member.member_id
                                        AND h.released_at IS NULL) THEN
        -- A manual hold over a fraud hold replaces it: a review that clears
        -- the fraud flags must not lift what a person decided.
        IF source = 'manual' THEN
            UPDATE loyalty.member_hold h
               SET released_at = now(), released_by = loyalty.calling_role()::text,
                   release_note = 'replaced by a manual hold'
             WHERE h.program = hold_member.program AND h.member_id = hold_member.member_id
               AND h.released_at IS NULL AND h.source = 'fraud';
            IF FOUND THEN
                INSERT INTO loyalty.member_hold (program, member_id, source, held_by, note)
                VALUES (program, member_id, source, loyalty.calling_role()::text, note);
            END IF;
        END IF;
        RETURN false;
    END IF;
    UPDATE loyalty.member x SET status = 'held'
     WHERE x.program = hold_member.program AND x.member_id = hold_member.member_id;
    INSERT INTO loyalty.member_hold (program, member_id, source, held_by, note)
    VALUES (program, member_id, source, loyalty.calling_role()::text, note);
    -- Freeze what is still pending now (a later statement: it sees every
    -- lot committed before the lock above was granted).
    INSERT INTO loyalty.held_lot (lot_id, program, member_id, available_at)
    SELECT l.id, l.program, l.member_id, l.available_at FROM loyalty.lot l
     WHERE l.program = hold_member.program AND l.member_id = hold_member.member_id
       AND l.remaining > 0 AND loyalty.lot_pending(l.available_at, l.expires_at, now())
       AND l.available_at < 'infinity'
    ON CONFLICT ON CONSTRAINT held_lot_pkey DO NOTHING;
    UPDATE loyalty.lot l SET available_at = 'infinity'
      FROM loyalty.held_lot h
     WHERE h.lot_id = l.id AND h.member_id = l.member_id AND h.program = hold_member.program AND h.member_id = hold_member.member_id
       AND l.available_at < 'infinity';
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.hold_member(text, text, text, text) IS
    'Holds a member (source manual or fraud): status held, an open member_hold, its pending lots frozen (held_lot); true when newly held; internal';

CREATE FUNCTION @extschema@.release_member(program text, member_id text, note text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    m loyalty.member := loyalty.lock_member(program, member_id);
BEGIN
    IF m.status <> 'held' THEN
        RETURN false;
    END IF;
    UPDATE loyalty.member x SET status = 'active'
     WHERE x.program = release_member.program AND x.member_id = release_member.member_id;
    UPDATE loyalty.member_hold h
       SET released_at = now(), released_by = loyalty.calling_role()::text, release_note = release_member.note
     WHERE h.program = release_member.program AND h.member_id = release_member.member_id
       AND h.released_at IS NULL;
    -- Every frozen lot gets its time back (past already: available now).
    UPDATE loyalty.lot l SET available_at = h.available_at
      FROM loyalty.held_lot h
     WHERE h.lot_id = l.id AND h.member_id = l.member_id AND h.program = release_member.program AND h.member_id = release_member.member_id;
    DELETE FROM loyalty.held_lot h
     WHERE h.program = release_member.program AND h.member_id = release_member.member_id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.release_member(text, text, text) IS
    'Releases a held member: status active, its hold closed, its frozen lots available at their original time; false when it was not held; internal';

-- Exclusions (test and staff accounts).
CREATE FUNCTION @extschema@.exclude_member(program text, member_id text, reason text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'reason must not be null or blank' USING ERRCODE = '22004',
              HINT = 'Say why, e.g. ''test account'' or ''staff''.';
    END IF;
    PERFORM loyalty.lock_member(program, member_id);
    INSERT INTO loyalty.member_exclusion (program, member_id, reason, excluded_by)
    VALUES (program, member_id, reason, loyalty.calling_role()::text)
    ON CONFLICT ON CONSTRAINT member_exclusion_pkey DO NOTHING;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION @extschema@.exclude_member(text, text, text) IS
    'Excludes a member as a test or staff account: never flagged by the fraud checks, left out of the BI views; true when newly excluded (a repeat keeps the first reason)';

CREATE FUNCTION @extschema@.include_member(program text, member_id text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.lock_member(program, member_id);
    DELETE FROM loyalty.member_exclusion e
     WHERE e.program = include_member.program AND e.member_id = include_member.member_id;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION @extschema@.include_member(text, text) IS
    'Ends a member''s exclusion: counted and checked again; false when it was not excluded';

-- Plain SQL without SET: inlined into the queries that call it.
CREATE FUNCTION @extschema@.is_excluded(program text, member_id text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (SELECT 1 FROM @extschema@.member_exclusion e
                    WHERE e.program OPERATOR(pg_catalog.=) is_excluded.program
                      AND e.member_id OPERATOR(pg_catalog.=) is_excluded.member_id)
$$;
COMMENT ON FUNCTION @extschema@.is_excluded(text, text) IS
    'Whether a member is excluded (test or staff account); false for NULLs and unknown members; internal';

-- For the row security policy of loyalty.tier_history (99_privileges.sql),
-- the one BI table: a policy runs as the reader, who may not read
-- member_exclusion itself.
CREATE FUNCTION @extschema@.member_visible(program text, member_id text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT NOT loyalty.is_excluded(program, member_id)
$$;
COMMENT ON FUNCTION @extschema@.member_visible(text, text) IS
    'Whether a member shows in the BI views and tables (not excluded); the row security policy of loyalty.tier_history calls it';
