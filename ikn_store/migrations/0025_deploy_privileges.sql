-- The broker's accounts follow the registry by themselves (`ikn broker-sync`, see
-- deploy/mosquitto/README.md): any change to who may log in to Mosquitto, with which
-- password hash (a service account created, rotated or removed; a device registered,
-- disabled, enabled, removed or given a new password), notifies 'ikn_broker_accounts'
-- at commit. The payload is empty: the listener writes the whole passwd and acl again
-- (PostgreSQL folds the notifications of one transaction into one).
CREATE FUNCTION broker_accounts_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ikn_broker_accounts', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER broker_accounts_notify
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON broker_accounts
FOR EACH STATEMENT EXECUTE FUNCTION broker_accounts_notify();

CREATE TRIGGER device_credentials_notify
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON device_credentials
FOR EACH STATEMENT EXECUTE FUNCTION broker_accounts_notify();

CREATE TRIGGER devices_enabled_notify
AFTER INSERT OR DELETE OR UPDATE OF enabled OR TRUNCATE ON devices
FOR EACH STATEMENT EXECUTE FUNCTION broker_accounts_notify();

-- Daily partitions of readings are made and dropped by the ingest, which connects as
-- the application role: that role owns no table (docs/configuration.md, "Database
-- roles"), so it may not CREATE ... PARTITION OF readings nor DROP one. These two
-- functions run as their owner (the migration role) and do exactly that, for one UTC
-- day, under the name readings_YYYYMMDD; EXECUTE is granted by `ikn migrate`.
CREATE FUNCTION readings_partition_create(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    start timestamptz := day::timestamp AT TIME ZONE 'UTC';
BEGIN
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS public.%I PARTITION OF public.readings '
        'FOR VALUES FROM (%L) TO (%L)',
        'readings_' || to_char(day, 'YYYYMMDD'), start, start + interval '1 day');
END
$$;

CREATE FUNCTION readings_partition_drop(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS public.%I', 'readings_' || to_char(day, 'YYYYMMDD'));
END
$$;

REVOKE EXECUTE ON FUNCTION readings_partition_create(date), readings_partition_drop(date)
FROM PUBLIC;
