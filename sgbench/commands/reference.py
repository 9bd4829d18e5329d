"""The command-line reference (docs/cli.md), generated from the parsers themselves:

    python -m sgbench.commands.reference > docs/cli.md

Every command's (and `sgbench t2i`'s subcommands') usage, description and options, at a fixed
width so the text does not depend on the terminal. tests/test_cli_front_door.py checks that
docs/cli.md is current.
"""

from __future__ import annotations

import argparse
import sys

WIDTH = 100


def _parsers(parser: argparse.ArgumentParser, name: str):
    """(name, parser) of the parser and every subcommand below it, in registration order."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _help(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=WIDTH)
    return parser.format_help().rstrip()


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"  # argparse's layout varies by version


def reference() -> str:
    from sgbench.cli import build_parser

    parsers = list(_parsers(build_parser(), "sgbench"))
    lines = [
        "# sgbench command-line reference",
        "",
        "Generated from the parsers (Python " + python_version() + "'s argparse) by "
        "`python -m sgbench.commands.reference > docs/cli.md`; do not edit by hand. "
        "The user's guide is the [README](../README.md); installing: [install.md](install.md).",
        "",
        "Output streams: `sgbench run` prints `run: <run directory>` and, when it wrote the report, "
        "`report: <report.html>` on stdout; `sgbench sample` and `sgbench report` print the file they "
        "wrote. Progress, per-trial lines and warnings go to stderr. Exit code 2 is bad input "
        "(one line on stderr).",
        "",
    ]
    lines += [f"- [`{name}`](#{name.replace(' ', '-')})" for name, _ in parsers]
    for name, parser in parsers:
        lines += ["", f"## {name}", "", "```text", _help(parser), "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
