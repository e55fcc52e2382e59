"""``python -m dtctl`` runs the command-line tool."""

from dtctl.cli.main import run

run()
