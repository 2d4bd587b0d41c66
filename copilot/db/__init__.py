"""The state database: one schema for every table, on SQLite or PostgreSQL."""
