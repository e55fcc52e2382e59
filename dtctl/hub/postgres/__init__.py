"""The scale-out task hub: one schema of a PostgreSQL database. Needs psycopg."""

from dtctl.hub.postgres.hub import PostgresTaskHub

__all__ = ["PostgresTaskHub"]
