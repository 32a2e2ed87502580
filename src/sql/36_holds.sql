-- Holds and exclusions: members whose points stay pending and who cannot
-- redeem while their activity is reviewed, and test or staff accounts the
-- fraud checks and the BI views leave out.

-- Every hold of a member, open (released_at NULL) or past.
CREATE SEQUENCE @extschema@.member_hold_id_seq;
CREATE TABLE @extschema@.member_hold (
    id              bigint PRIMARY KEY DEFAULT nextval('@extschema@.member_hold_id_seq'),
    program         text NOT NULL,
    member_id       text NOT NULL,
    source          text NOT NULL CHECK (source IN ('manual', 'fraud')),
    held_at         timestamptz NOT NULL DEFAULT now(),
    held_by         text NOT NULL DEFAULT current_user,
    released_at     timestamptz,
    released_by     text,
    note            text
);
ALTER SEQUENCE @extschema@.member_hold_id_seq OWNED BY @extschema@.member_hold.id;
CREATE UNIQUE INDEX member_hold_open_key ON @extschema@.member_hold (program, member_id) WHERE released_at IS NULL;
COMMENT ON TABLE @extschema@.member_hold IS
    'Holds of members (status held): by hand or by the fraud risk score; released_at NULL while the hold lasts';

-- The lots a hold keeps pending: their available_at is infinity meanwhile;
-- the time they would have become available is kept here.
CREATE TABLE @extschema@.held_lot (
    lot_id          bigint PRIMARY KEY,
    program         text NOT NULL,
    member_id       text NOT NULL,
    available_at    timestamptz NOT NULL
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

SELECT pg_catalog.pg_extension_config_dump('@extschema@.member_hold', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.member_hold_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.held_lot', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.member_exclusion', '');
