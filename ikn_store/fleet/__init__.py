"""The device fleet in PostgreSQL: registry, commands, dead letters, broker accounts."""
