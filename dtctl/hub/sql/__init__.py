"""What the SQLite and PostgreSQL hubs share: row records, the checkpoint plan, the typed dialect, the
client write steps, schema migrations, the inspection reads, and the loader of named ``.sql`` blocks.

Nothing here imports a database driver; each backend's subpackage (:mod:`dtctl.hub.sqlite`,
:mod:`dtctl.hub.postgres`) brings its own.
"""
