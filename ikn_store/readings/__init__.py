"""Readings in PostgreSQL: the ingest's writes, COPY, partitions, rollups."""
