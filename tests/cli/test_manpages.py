"""man/ is generated from the command tree; a stale page or a command without one fails here."""

from __future__ import annotations

from pathlib import Path

import typer.main

from dtctl.cli.main import app
from dtctl.cli.manpages import generate, walk

MAN = Path(__file__).resolve().parents[2] / "man"


def test_man_pages_are_up_to_date() -> None:
    pages = generate()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in MAN.glob("dtctl*.1")}
    stale = sorted(name for name, text in pages.items() if on_disk.get(name) != text)
    extra = sorted(set(on_disk) - set(pages))
    assert not stale and not extra, (
        f"man/ is out of date (stale: {stale}, no longer generated: {extra}); "
        "run: python -m dtctl.cli.manpages man/"
    )


def test_every_command_has_a_page_with_exit_codes_and_an_example() -> None:
    root = typer.main.get_command(app)
    for path, command in walk(root, ("dtctl",)):
        page = MAN / f"{'-'.join(path)}.1"
        assert page.exists(), f"no man page for {' '.join(path)}"
        text = page.read_text(encoding="utf-8")
        assert ".SH EXIT STATUS" in text and ".SH ENVIRONMENT" in text
        if not hasattr(command, "commands"):
            assert ".SH EXAMPLES" in text, f"{' '.join(path)} has no example in its help"


def test_every_command_is_listed_in_dtctl_1_and_json_shapes_are_documented() -> None:
    from dtctl.cli.manpages import JSON_OUTPUT

    root = typer.main.get_command(app)
    main_page = (MAN / "dtctl.1").read_text(encoding="utf-8")
    for name in root.commands:
        assert f".B {name.replace('-', chr(92) + '-')}" in main_page, f"dtctl.1 does not list {name}"
    for page_name in JSON_OUTPUT:
        text = (MAN / f"{page_name}.1").read_text(encoding="utf-8")
        assert ".SH JSON OUTPUT" in text, f"{page_name}.1 does not document its JSON"
