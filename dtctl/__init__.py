"""dtctl: the Durable Task Framework for Python, one command-line tool with an embedded engine."""

__version__ = "0.1.0.dev0"
