"""sgbench's subcommands, one module each (sgbench/cli.py dispatches)."""

from __future__ import annotations

import contextlib
import sys


def printing_to_stderr():
    """While a command works, whatever prints (its own loops, a library loading weights) goes to
    stderr, so stdout carries only the command's outcome (a path, metric lines) for scripts."""
    return contextlib.redirect_stdout(sys.stderr)
