"""Progress bars of long loops: one tqdm bar on stderr with its count, rate and ETA.

    bar = progress.bar(n, "sample features", enabled=not args.no_progress)
    for batch in progress.counted(iter_images(path, 256), bar):   # advances by len(batch)
        ...

A bar is drawn only on a terminal: on a log file or a pipe (tqdm's `disable=None`) and when
the user passed `--no-progress` (`enabled=False`) it is a silent no-op, so callers never branch.
Library functions take `progress: bool` and build their bar here; commands decide. Imports only
tqdm, so every layer but models and guidance may use it (tests/test_layering.py).
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def bar(total: int, desc: str, unit: str = "img", enabled: bool = True, stream=None, initial: int = 0,
        **options) -> tqdm:
    """A bar counting `total` units from `initial` (work already done, e.g. resumed shards: it
    does not count towards the rate). `stream` defaults to the current sys.stderr; `options` go
    to tqdm (e.g. `iterable=items` to count items one each)."""
    return tqdm(total=int(total), initial=int(initial), desc=desc, unit=unit, dynamic_ncols=True,
                disable=None if enabled else True, file=stream if stream is not None else sys.stderr,
                smoothing=0.05, **options)


def counted(items: Iterable[T], progress_bar: tqdm, size: Callable[[T], int] = len) -> Iterator[T]:
    """Yield `items`, advancing the bar by size(item) once the consumer has processed each; the
    bar closes when the loop ends, however it ends."""
    try:
        for item in items:
            yield item
            progress_bar.update(size(item))
    finally:
        progress_bar.close()
