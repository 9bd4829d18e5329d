"""Progress of a run in images (the unit of work), with an ETA for the whole run.

One tqdm bar counts sampled images over every planned trial; pruning shrinks the plan. Each
finished trial also prints one line with its result and the run's ETA, so logs that are not a
terminal still show where the run is. The bar is sgbench.progress's (drawn on a terminal only).
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

from sgbench.progress import bar as progress_bar


def fmt_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    def __init__(self, total_images: int, total_trials: int, enabled: bool = True, stream=None):
        self.start = time.perf_counter()
        self.done_images = 0
        self.total_images = int(total_images)
        self.done_trials = 0
        self.total_trials = int(total_trials)
        self.stream = stream or sys.stderr
        self.bar = progress_bar(self.total_images, "sgbench run", "img", enabled, self.stream)

    def update(self, n: int) -> None:
        self.done_images += n
        self.bar.update(n)

    def shrink(self, n: int) -> None:
        """Work that will not happen (a pruned trial's remaining samples)."""
        self.total_images = max(self.done_images, self.total_images - int(n))
        self.bar.total = self.total_images
        self.bar.refresh()

    def grow(self, images: int, trials: int = 0) -> None:
        self.total_images += int(images)
        self.total_trials += int(trials)
        self.bar.total = self.total_images
        self.bar.refresh()

    def eta(self) -> float:
        elapsed = time.perf_counter() - self.start
        if not self.done_images:
            return float("nan")
        return (self.total_images - self.done_images) * elapsed / self.done_images

    def trial_done(self, text: str) -> None:
        self.done_trials += 1
        elapsed = time.perf_counter() - self.start
        line = (f"[{self.done_trials}/{self.total_trials}] {text} | elapsed {fmt_duration(elapsed)}, "
                f"ETA {fmt_duration(self.eta())}")
        self.write(line)

    def write(self, text: str) -> None:
        tqdm.write(text, file=self.stream)

    def close(self) -> None:
        self.bar.close()
