"""The scale-out task hub: one schema of a PostgreSQL database (DESIGN §9). Needs psycopg."""

from dtctl.hub.postgres.hub import PostgresTaskHub

__all__ = ["PostgresTaskHub"]
