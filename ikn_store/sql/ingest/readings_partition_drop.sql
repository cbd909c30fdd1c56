-- Drops one UTC day's partition of readings (readings_YYYYMMDD) for the ingest's
-- retention, as its owner; see readings_partition_create.
CREATE OR REPLACE FUNCTION readings_partition_drop(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS public.%I', 'readings_' || to_char(day, 'YYYYMMDD'));
END
$$;

REVOKE EXECUTE ON FUNCTION readings_partition_drop(date) FROM PUBLIC;
