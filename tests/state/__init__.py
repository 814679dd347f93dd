"""State store tests; every store test runs on SQLite and on PostgreSQL."""
