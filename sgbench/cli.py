"""`sgbench` command line: a thin dispatcher over sgbench.commands.<name> modules.

Each command module defines `register(subparsers)` (cheap: no heavy imports at module level)
and `main(args) -> int`. A UserError anywhere becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sgbench.errors import UserError

# name -> module; order is the order in `sgbench --help`.
COMMANDS = {
    "run": "sgbench.commands.run",
    "suites": "sgbench.commands.suites",
    "report": "sgbench.commands.report",
    "check": "sgbench.commands.check",
    "sample": "sgbench.commands.sample",
    "evaluate": "sgbench.commands.evaluate",
    "flops": "sgbench.commands.flops",
    "convert": "sgbench.commands.convert",
    "train": "sgbench.commands.train",
    "t2i": "sgbench.commands.t2i",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage errors already exit 2; keep them one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    import sgbench

    parser = _Parser(
        prog="sgbench",
        description="Benchmark and evaluation harness for Sparse Guidance of token-sparse diffusion transformers.",
    )
    parser.add_argument("--version", action="version", version=f"sgbench {sgbench.version()}",
                        help="print `sgbench VERSION` and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                continue  # command not built yet in this checkout
            raise
        p = mod.register(sub)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, one line already printed)
        return e.code if isinstance(e.code, int) else 0
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    try:
        code = int(args._main(args) or 0)
        if argv is None:  # this process is the command: its work is recorded, a signal while the
            _ignore_signals()  # interpreter shuts down must not turn the exit code into a kill
        return code
    except UserError as e:
        print(f"sgbench {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # Ctrl-C (130), or sgbench run's SIGTERM handling (143)
        print(f"sgbench {args.command}: interrupted", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    except Exception:  # a bug: the traceback helps, but never with a credential in it
        import traceback

        from sgbench.secrets import redact

        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return 1


def _ignore_signals() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
