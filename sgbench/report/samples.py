"""Sample grids of the reported rows: found under results/<run>/samples/ by trial_id,
copied (downscaled) into the report so it is self-contained."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from sgbench.report.figures import slug
from sgbench.report.tables import RunSummaries, selected_rows

_GRID_MAX_PX = 1024  # sample grids are downscaled to keep report.html small


@dataclass
class SampleGrid:
    caption: str
    path: Path  # copy inside the report directory


def _find_grid(samples: Path, trial_id: str) -> Path | None:
    if not samples.is_dir() or not trial_id:
        return None
    for stem in (trial_id, f"trial_{trial_id}", f"trial-{trial_id}"):
        p = samples / f"{stem}.png"
        if p.is_file():
            return p
    stem = glob.escape(trial_id)
    hits = sorted(samples.glob(f"{stem}_*.png")) or sorted(samples.glob(f"{stem}-*.png"))
    return hits[0] if hits else None


def _copy_grid(src: Path, dst: Path) -> bool:
    """Downscaled copy of a sample grid; False (skipped) when the file is not a readable image."""
    from PIL import Image

    try:
        with Image.open(src) as im:
            im = im.convert("RGB")
            im.thumbnail((_GRID_MAX_PX, _GRID_MAX_PX))
            im.save(dst, format="PNG", optimize=True)
        return True
    except (OSError, ValueError):
        return False


def collect_grids(all_rs: list[RunSummaries], fig_dir: Path, limit: int = 16) -> list[SampleGrid]:
    """Sample grids of the rows of the guidance table (first seed of each), copied in."""
    grids: list[SampleGrid] = []
    multi = len(all_rs) > 1
    for rs in all_rs:
        for label, s in selected_rows(rs):
            if len(grids) >= limit:
                return grids
            src = next((g for t in s.trial_ids if (g := _find_grid(rs.run.samples_dir, t))), None)
            if src is None:
                continue
            dst = fig_dir / f"samples_{slug(rs.run.name) + '_' if multi else ''}{slug(s.trial_ids[0])}.png"
            if dst.exists() or not _copy_grid(src, dst):
                continue
            name = label.text + (f"_{label.sub}" if label.sub else "")
            omega = "" if s.setting.omega is None else f", ω = {s.setting.omega:g}"
            caption = (f"{rs.run.name + ': ' if multi else ''}{name} (γ_s / γ_w = "
                       f"{s.setting.sparsity()}{omega}), trial {s.trial_ids[0]}")
            grids.append(SampleGrid(caption, dst))
    return grids
