"""The report-format registry: each format one module, and what the CLI offers comes from it."""

from __future__ import annotations

import click
import pytest

from inspector.core.event import Event
from inspector.core.policy import Catalogue
from inspector.report import FORMATS, formats, render
from inspector.report.formats import ReportFormat

BUILTIN = ("text", "json", "markdown", "html", "sarif")


def test_the_built_in_formats_are_registered_one_module_each_in_listing_order():
    assert formats.names() == BUILTIN
    assert FORMATS == BUILTIN  # inspector.report.FORMATS: the registry's names
    assert len({f.render.__module__ for f in formats.formats()}) == len(BUILTIN)
    for fmt in formats.formats():
        assert fmt.extensions and all(e.startswith(".") and e == e.lower() for e in fmt.extensions), fmt.name
        assert fmt.description, fmt.name


@pytest.mark.parametrize(("name", "expected"), [
    ("report.md", "markdown"), ("report.markdown", "markdown"), ("REPORT.HTML", "html"), ("r.htm", "html"),
    ("audit.sarif", "sarif"), ("audit.sarif.json", "sarif"), ("events.json", "json"), ("out.txt", "text"),
    ("dir.md/report", None), ("report", None), (".json", None), ("report.pdf", None),
])
def test_a_file_name_names_its_format_by_extension(name, expected):
    found = formats.for_path(name)
    assert (found.name if found else None) == expected


def _choices(command: click.Command, option: str) -> tuple[str, ...]:
    for param in command.params:
        if param.name == option:
            assert isinstance(param.type, click.Choice)
            return tuple(param.type.choices)
    raise AssertionError(f"{command.name} has no {option}")


def test_the_cli_offers_exactly_the_registered_formats():
    from inspector.cli.main import cli

    for name in ("audit", "report"):
        assert _choices(cli.commands[name], "fmt") == formats.names(), name


def test_adding_a_format_is_registering_it():
    def render_count(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
        return f"{len(events)} events from {len(inputs)} inputs\n"

    formats.register(ReportFormat("count", (".count",), render_count, order=99, description="how many"))
    try:
        assert formats.names()[-1] == "count"
        assert render([], Catalogue(), "count", ["a"]) == "0 events from 1 inputs\n"
        assert formats.for_path("x.count").name == "count"
        with pytest.raises(ValueError, match=r"both claim \.json"):
            formats.register(ReportFormat("json2", (".json",), render_count))
    finally:
        formats.unregister("count")
    with pytest.raises(KeyError):
        render([], Catalogue(), "count")
