-- Keys that include the member id (as 0.2.0's install script creates them),
-- for the 0.1.0 tables: every member-owned table can then be distributed by
-- member_id (loyalty.distribute()).  The tables new in 0.2.0 are created
-- with these keys by their own pieces.  A ledger reference becomes an
-- idempotency key of the member's account: unique per (program, member).

ALTER TABLE @extschema@.ledger DROP CONSTRAINT ledger_pkey;
ALTER TABLE @extschema@.ledger ADD PRIMARY KEY (id, member_id);
DROP INDEX @extschema@.ledger_ref_key;
CREATE UNIQUE INDEX ledger_ref_key ON @extschema@.ledger (program, ref, member_id) WHERE ref IS NOT NULL;
DROP INDEX @extschema@.ledger_unredeem_key;
CREATE UNIQUE INDEX ledger_unredeem_key ON @extschema@.ledger (related_id, member_id) WHERE kind = 'unredeem';

ALTER TABLE @extschema@.lot DROP CONSTRAINT lot_pkey;
ALTER TABLE @extschema@.lot ADD PRIMARY KEY (id, member_id);

ALTER TABLE @extschema@.tier_history DROP CONSTRAINT tier_history_pkey;
ALTER TABLE @extschema@.tier_history ADD PRIMARY KEY (id, member_id);
