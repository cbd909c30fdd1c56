-- Daily partitions of readings are made by the ingest, which connects as the
-- application role: that role owns no table (docs/configuration.md, "Database roles"),
-- so it may not CREATE ... PARTITION OF readings. This runs as its owner (the migration
-- role) and does exactly that, for one UTC day, under the name readings_YYYYMMDD;
-- EXECUTE is granted by `ikn migrate` (ikn_store/roles.py), to nobody else.
CREATE OR REPLACE FUNCTION readings_partition_create(day date) RETURNS void
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

REVOKE EXECUTE ON FUNCTION readings_partition_create(date) FROM PUBLIC;
