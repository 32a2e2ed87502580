-- Order and member signals for the fraud checks, kept as keyed hashes.
--
-- What an order's ip, device, payment fingerprint, shipping address and
-- countries held is never stored: only HMAC-SHA-256 of the normalised value
-- under the installation's current key (truncated to 16 bytes), so two
-- orders can be matched without either value being readable.  Members'
-- email and phone from their profile are kept the same way.

-- The installation's secret keys; one is current (retired_at NULL).
-- Readable by the extension's owner only.
CREATE TABLE @extschema@.signal_key (
    id          integer PRIMARY KEY,
    key         bytea NOT NULL CHECK (octet_length(key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
CREATE UNIQUE INDEX signal_key_current ON @extschema@.signal_key ((true)) WHERE retired_at IS NULL;
COMMENT ON TABLE @extschema@.signal_key IS
    'Secret keys of the signal hashes (HMAC-SHA-256); the one with retired_at NULL hashes new values; readable by the extension owner only';
-- 244 bits from two version-4 UUIDs (pg_strong_random), spread by SHA-256.
INSERT INTO @extschema@.signal_key (id, key)
SELECT 1, pg_catalog.sha256(pg_catalog.convert_to(
           pg_catalog.gen_random_uuid()::pg_catalog.text || pg_catalog.gen_random_uuid()::pg_catalog.text, 'UTF8'));

-- One row per order inserted into an orders table attached with signal
-- columns: the keyed hashes of what they held (NULL: not mapped or NULL).
CREATE TABLE @extschema@.order_signal (
    program             text NOT NULL,
    order_id            text NOT NULL,
    member_id           text,
    ordered_at          timestamptz NOT NULL,
    key_id              integer NOT NULL,
    ip                  bytea,
    device_id           bytea,
    payment_fingerprint bytea,
    shipping_address    bytea,
    billing_country     bytea,
    ip_country          bytea,
    PRIMARY KEY (program, order_id)
);
CREATE INDEX order_signal_time_idx ON @extschema@.order_signal (program, ordered_at);
COMMENT ON TABLE @extschema@.order_signal IS
    'Keyed hashes (16 bytes, under signal_key key_id) of the fraud signals of each order, taken when the order is inserted';

-- Keyed hashes of a member's normalised email and phone (from the profile).
CREATE TABLE @extschema@.member_contact (
    program     text NOT NULL,
    member_id   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('email', 'phone')),
    key_id      integer NOT NULL,
    hash        bytea NOT NULL,
    PRIMARY KEY (program, member_id, kind)
);
CREATE INDEX member_contact_hash_idx ON @extschema@.member_contact (program, kind, hash);
COMMENT ON TABLE @extschema@.member_contact IS
    'Keyed hashes of members'' normalised email and phone, kept in step with member.profile, for matching accounts';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.signal_key', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_signal', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.member_contact', '');
