"""`sgbench suites`: the suites and training configs that ship with sgbench, one per line.

    sgbench:suites/quickstart.yaml        run    Shapes DiT on CPU - ...
    sgbench:suites/train_quickstart.yaml  train  The quickstart's shapes DiT ...

The first column is what `sgbench run` (or `sgbench train`, the second column) takes, in a
checkout or an installed copy alike.
"""

from __future__ import annotations


def register(subparsers):
    return subparsers.add_parser(
        "suites", help="list the shipped suites (sgbench:suites/NAME.yaml) and training configs",
        description="List the suites and training configs shipped with sgbench: the name `sgbench run` "
                    "(or `sgbench train`) takes, the command, and the file's description. "
                    "Example: sgbench run sgbench:suites/quickstart.yaml --out ~/results")


def main(args) -> int:
    from sgbench.config.shipped import shipped_configs

    configs = shipped_configs()
    width = max((len(c.name) for c in configs), default=0)
    for c in configs:
        print(f"{c.name:<{width}}  {c.command:<5}  {c.description}".rstrip())
    return 0
