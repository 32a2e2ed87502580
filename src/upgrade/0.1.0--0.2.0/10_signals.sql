-- 0.1.0 -> 0.2.0, src/sql/21_signals.sql is new in 0.2.0: its objects as a fresh install makes them.

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

-- pg_dump keeps the keys (a restore without them would match nothing)
-- and the order signals (their values are gone).  Member contacts are not
-- dumped: they are derived from the profiles, and a restore builds them
-- again (the member trigger, then signal_key_installed when the dumped
-- current key arrives).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.signal_key', '');

SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_signal', '');

-- What each signal column of an attached orders table is (attach_orders'
-- signal arguments; NULL: not mapped).
ALTER TABLE @extschema@.order_source
    ADD COLUMN ip_column                   name,
    ADD COLUMN device_id_column            name,
    ADD COLUMN payment_fingerprint_column  name,
    ADD COLUMN shipping_address_column     name,
    ADD COLUMN billing_country_column      name,
    ADD COLUMN ip_country_column           name;

COMMENT ON COLUMN @extschema@.order_source.ip_column IS 'Column hashed into order_signal.ip (NULL: not mapped)';

COMMENT ON COLUMN @extschema@.order_source.device_id_column IS 'Column hashed into order_signal.device_id (NULL: not mapped)';

COMMENT ON COLUMN @extschema@.order_source.payment_fingerprint_column IS 'Column hashed into order_signal.payment_fingerprint (NULL: not mapped)';

COMMENT ON COLUMN @extschema@.order_source.shipping_address_column IS 'Column hashed into order_signal.shipping_address (NULL: not mapped)';

COMMENT ON COLUMN @extschema@.order_source.billing_country_column IS 'Column hashed into order_signal.billing_country (NULL: not mapped)';

COMMENT ON COLUMN @extschema@.order_source.ip_country_column IS 'Column hashed into order_signal.ip_country (NULL: not mapped)';

-- The normal form of a signal (signal_normalize.c): what is hashed.
CREATE OR REPLACE FUNCTION @extschema@.normalize_signal(kind text, value text) RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'loyalty_normalize_signal';

COMMENT ON FUNCTION @extschema@.normalize_signal(text, text) IS
    'The normal form of a fraud signal of a kind (ip, device_id, payment_fingerprint, shipping_address, billing_country, ip_country, email, phone) that loyalty hashes; NULL when nothing is left';

-- The keyed hash under the current key.  Volatile: it reads the key table.
CREATE OR REPLACE FUNCTION @extschema@.signal_hash(kind text, value text) RETURNS bytea
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'loyalty_signal_hash';

COMMENT ON FUNCTION @extschema@.signal_hash(text, text) IS
    'HMAC-SHA-256 (first 16 bytes) of domain:normalize_signal(kind, value) (domain: the kind; country for both countries) under the current signal key; NULL for a value that normalises to nothing; internal';

-- The keyed hash under a given key: the set-based statements that read the
-- key once (signal trigger, member contacts, key rotation).
CREATE OR REPLACE FUNCTION @extschema@.signal_digest(key bytea, kind text, value text) RETURNS bytea
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'loyalty_signal_digest';

COMMENT ON FUNCTION @extschema@.signal_digest(bytea, text, text) IS
    'HMAC-SHA-256 (first 16 bytes) of domain:normalize_signal(kind, value) (domain: the kind; country for both countries) under a given 32-byte key; internal';

-- Member contacts: the hashes of profile->>'email' and 'phone', under the
-- current key, in one statement (key and key id from one snapshot).
CREATE OR REPLACE FUNCTION @extschema@.member_contact_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    WITH c AS (
        SELECT x.kind, k.id AS key_id,
               loyalty.signal_digest(k.key, x.kind, NEW.profile ->> x.kind) AS hash
          FROM loyalty.signal_key k, (VALUES ('email'), ('phone')) AS x(kind)
         WHERE k.retired_at IS NULL
    ), gone AS (
        DELETE FROM loyalty.member_contact mc
         WHERE mc.program = NEW.program AND mc.member_id = NEW.member_id
           AND mc.kind IN (SELECT c.kind FROM c WHERE c.hash IS NULL)
    )
    INSERT INTO loyalty.member_contact AS mc (program, member_id, kind, key_id, hash)
    SELECT NEW.program, NEW.member_id, c.kind, c.key_id, c.hash FROM c WHERE c.hash IS NOT NULL
    ON CONFLICT (program, member_id, kind) DO UPDATE SET key_id = excluded.key_id, hash = excluded.hash;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.member_contact_trigger() IS
    'Trigger on loyalty.member: keeps the member''s email and phone hashes in loyalty.member_contact in step with its profile';

-- Row triggers, and only for rows that have a contact or change the
-- profile: the member upsert of every order never fires them.
CREATE TRIGGER member_contact_insert AFTER INSERT ON @extschema@.member
    FOR EACH ROW WHEN (NEW.profile OPERATOR(pg_catalog.?|) ARRAY['email', 'phone'])
    EXECUTE FUNCTION @extschema@.member_contact_trigger();

CREATE TRIGGER member_contact_update AFTER UPDATE OF profile ON @extschema@.member
    FOR EACH ROW WHEN (OLD.profile IS DISTINCT FROM NEW.profile)
    EXECUTE FUNCTION @extschema@.member_contact_trigger();

-- A key row inserted: by rotate_signal_key(), or by a restore, whose
-- CREATE EXTENSION made a fresh key before the dumped keys arrive.  The
-- dumped keys replace it: a row of the same id, or the current key when a
-- current key arrives, goes first (the hashes in order_signal were made
-- under the dumped keys).  Only the owner writes this table.
CREATE OR REPLACE FUNCTION @extschema@.signal_key_replace() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    DELETE FROM loyalty.signal_key k
     WHERE k.id = NEW.id OR (NEW.retired_at IS NULL AND k.retired_at IS NULL);
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.signal_key_replace() IS
    'Trigger on loyalty.signal_key: a key inserted with the id of an existing one, or a new current key, replaces the row it would clash with (a restore replacing the fresh install key)';

CREATE TRIGGER signal_key_replace BEFORE INSERT ON @extschema@.signal_key
    FOR EACH ROW EXECUTE FUNCTION @extschema@.signal_key_replace();

-- Backends keep the current key (signal_hash.c): any change to the keys
-- tells every backend to drop its copy.
CREATE TRIGGER signal_key_cache_invalidation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.signal_key FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_program_cache();

-- A new current key: every member's contacts are hashed again under it
-- from the profiles (order signals cannot be: their values are not kept).
CREATE OR REPLACE FUNCTION @extschema@.signal_key_installed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    INSERT INTO loyalty.member_contact AS mc (program, member_id, kind, key_id, hash)
    SELECT m.program, m.member_id, x.kind, NEW.id, loyalty.signal_digest(NEW.key, x.kind, m.profile ->> x.kind)
      FROM loyalty.member m, (VALUES ('email'), ('phone')) AS x(kind)
     WHERE m.profile ? x.kind AND loyalty.signal_digest(NEW.key, x.kind, m.profile ->> x.kind) IS NOT NULL
    ON CONFLICT (program, member_id, kind) DO UPDATE SET key_id = excluded.key_id, hash = excluded.hash;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.signal_key_installed() IS
    'Trigger on loyalty.signal_key: a new current key hashes every member''s contacts again under it';

CREATE TRIGGER signal_key_installed AFTER INSERT ON @extschema@.signal_key
    FOR EACH ROW WHEN (NEW.retired_at IS NULL) EXECUTE FUNCTION @extschema@.signal_key_installed();

-- A new current key; the old one is kept, retired, so key_id of older
-- hashes still resolves.  Member contacts are hashed again at once (the
-- trigger above); order signals cannot be (their values are not kept).
CREATE OR REPLACE FUNCTION @extschema@.rotate_signal_key()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    new_id integer;
BEGIN
    -- One rotation at a time (readers are not blocked).
    LOCK TABLE loyalty.signal_key IN EXCLUSIVE MODE;
    UPDATE loyalty.signal_key k SET retired_at = now() WHERE k.retired_at IS NULL;
    INSERT INTO loyalty.signal_key (id, key)
    SELECT coalesce(max(k.id), 0) + 1,
           sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8'))
      FROM loyalty.signal_key k
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;

COMMENT ON FUNCTION @extschema@.rotate_signal_key() IS
    'Makes a new current signal key (the old one retired, kept), hashes members'' contacts again under it; returns its id';

-- Order signals older than a time go: the fraud checks look back a window.
CREATE OR REPLACE FUNCTION @extschema@.purge_order_signals(program text, before timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    purged bigint;
BEGIN
    PERFORM loyalty.require_program(program);
    IF before IS NULL THEN
        RAISE EXCEPTION 'before must not be null' USING ERRCODE = '22004';
    END IF;
    DELETE FROM loyalty.order_signal s WHERE s.program = purge_order_signals.program AND s.ordered_at < before;
    GET DIAGNOSTICS purged = ROW_COUNT;
    RETURN purged;
END
$$;

COMMENT ON FUNCTION @extschema@.purge_order_signals(text, timestamptz) IS
    'Deletes a program''s order signals of orders placed before a time; returns how many';

-- The signal trigger (signal_trigger.c), installed by attach_orders() when
-- a signal column is mapped.  SECURITY DEFINER so the application's role
-- needs no right on the loyalty tables (nor sees the key).
CREATE OR REPLACE FUNCTION @extschema@.signal_trigger() RETURNS trigger
LANGUAGE c SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_signal_trigger';

COMMENT ON FUNCTION @extschema@.signal_trigger() IS
    'Signal trigger installed by loyalty.attach_orders() with signal columns: hashes the new orders'' signals into loyalty.order_signal';

-- Whether a source maps a signal column (then it has a signal trigger).
CREATE OR REPLACE FUNCTION @extschema@.source_has_signals(src @extschema@.order_source)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(src.ip_column, src.device_id_column, src.payment_fingerprint_column,
                src.shipping_address_column, src.billing_country_column, src.ip_country_column) IS NOT NULL;

COMMENT ON FUNCTION @extschema@.source_has_signals(@extschema@.order_source) IS
    'Whether an order source maps a signal column, so its tables have the signal trigger';

-- The name of a program's signal trigger (not stored in order_source).
CREATE OR REPLACE FUNCTION @extschema@.signal_trigger_name(program text)
RETURNS name
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.left('loyalty_signal_' OPERATOR(pg_catalog.||) program, 63)::pg_catalog.name;

COMMENT ON FUNCTION @extschema@.signal_trigger_name(text) IS
    'The name of the signal trigger attach_orders() and sync_partition_triggers() give a program''s orders tables';

-- The arguments of a source's signal trigger: program, order id, member id
-- and created at columns, then the six signal columns ('' where not mapped).
CREATE OR REPLACE FUNCTION @extschema@.signal_trigger_args(src @extschema@.order_source)
RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT pg_catalog.format('%L, %L, %L, %L, %L, %L, %L, %L, %L, %L',
        src.program, src.order_id_column, src.member_id_column, coalesce(src.created_at_column, ''),
        coalesce(src.ip_column, ''), coalesce(src.device_id_column, ''),
        coalesce(src.payment_fingerprint_column, ''), coalesce(src.shipping_address_column, ''),
        coalesce(src.billing_country_column, ''), coalesce(src.ip_country_column, ''))
$$;

COMMENT ON FUNCTION @extschema@.signal_trigger_args(@extschema@.order_source) IS
    'The argument list of a source''s signal trigger: program, order id, member id and created at columns, then the signal columns ('''' where not mapped)';

-- Members enrolled under 0.1.0 get the contact hashes their profile would
-- have given them on insert (member_contact_trigger, under the key made
-- above).
INSERT INTO @extschema@.member_contact AS mc (program, member_id, kind, key_id, hash)
SELECT m.program, m.member_id, x.kind, k.id, @extschema@.signal_digest(k.key, x.kind, m.profile OPERATOR(pg_catalog.->>) x.kind)
  FROM @extschema@.member m, @extschema@.signal_key k, (VALUES ('email'), ('phone')) AS x(kind)
 WHERE k.retired_at IS NULL
   AND m.profile OPERATOR(pg_catalog.?|) ARRAY['email', 'phone']
   AND @extschema@.signal_digest(k.key, x.kind, m.profile OPERATOR(pg_catalog.->>) x.kind) IS NOT NULL;
