"""PostgreSQL adapter: migrations, the embedded server, queries."""
