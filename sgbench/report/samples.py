"""Sample grids of the reported rows: found under results/<run>/samples/ by trial_id and copied
into the report twice — the full-resolution grid (`samples_<trial>_full.png`, what a click on
the thumbnail opens) and a thumbnail legible at the page width:
- class-conditional grids are scaled to THUMB_WIDTH px (small samples by a whole factor,
  nearest-neighbour, so their pixels stay sharp; large ones smoothly down);
- text-to-image grids are re-laid out, at most CAPTIONED_MAX samples in rows of 4, each sample
  with its prompt under it.
`sgbench run` writes samples/<trial>.json beside each grid (`sgbench.run.sample_grid`: tile
size, rows and columns, each sample's caption — its prompt in T2I suites), which is what lets
the report cut the grid into samples and caption them.
"""

from __future__ import annotations

import glob
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from sgbench.report.figures import _DPI, slug
from sgbench.run.sample_grid import GridLayout, read_layout
from sgbench.report.tables import RunSummaries, selected_rows

THUMB_WIDTH = 768  # px: eight samples a row show at 96 px each
THUMB_HEIGHT = 768  # px: a small grid grows no taller
CAPTIONED_COLUMNS = 4
CAPTIONED_MAX = 16
_TILE_IN = 2.3  # a captioned sample's side (in): 220 CSS px in report.html


@dataclass
class SampleGrid:
    caption: str
    path: Path  # thumbnail inside the report directory
    full: Path  # full-resolution copy of the run's grid
    prompts: list[str] = field(default_factory=list)  # the thumbnail's samples' captions (T2I), in order


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


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """Small grids grow by a whole factor up to THUMB_WIDTH x THUMB_HEIGHT, wide ones shrink to
    THUMB_WIDTH."""
    if width > THUMB_WIDTH:
        return THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width))
    k = max(1, min(THUMB_WIDTH // width, THUMB_HEIGHT // max(1, height)))
    return width * k, height * k


def _tiles(im, layout: GridLayout, count: int) -> list:
    h, w = layout.tile
    cols = layout.shape[1]
    out = []
    for i in range(count):
        r, c = divmod(i, cols)
        out.append(im.crop((c * w, r * h, (c + 1) * w, (r + 1) * h)))
    return out


def _captioned(im, layout: GridLayout, dst: Path) -> list[str]:
    """The first CAPTIONED_MAX samples, CAPTIONED_COLUMNS a row, each with its prompt; returns
    the prompts drawn."""
    from sgbench.report.figures import _plt

    plt, _ = _plt()
    count = min(layout.n, CAPTIONED_MAX)
    cols = min(CAPTIONED_COLUMNS, count)
    rows = math.ceil(count / cols)
    text_h = 0.62
    fig = plt.figure(figsize=(cols * (_TILE_IN + 0.12), rows * (_TILE_IN + text_h)))
    W, H = fig.get_size_inches()
    for i, tile in enumerate(_tiles(im, layout, count)):
        r, c = divmod(i, cols)
        ax = fig.add_axes([(c * (_TILE_IN + 0.12) + 0.06) / W, (H - (r + 1) * (_TILE_IN + text_h) + text_h) / H,
                           _TILE_IN / W, _TILE_IN / H])
        big = tile.resize((tile.width * max(1, 256 // tile.width),) * 2, resample=0) if tile.width < 256 else tile
        ax.imshow(big, interpolation="nearest" if tile.width < 256 else "antialiased")
        ax.set_axis_off()
        lines = textwrap.wrap(layout.captions[i], 34, max_lines=3, placeholder=" …") or [""]
        ax.text(0.0, -0.03, f"{i + 1}. " + "\n".join(lines), transform=ax.transAxes, ha="left", va="top",
                fontsize=7.5, linespacing=1.15, color="0.1")
    fig.savefig(dst, dpi=_DPI, facecolor="white")
    plt.close(fig)
    return list(layout.captions[:count])


def copy_grid(src: Path, thumb: Path, full: Path) -> list[str] | None:
    """Write the full-resolution copy and the thumbnail of one grid; the thumbnail's prompts
    ([] for class-conditional grids); None (skipped) when `src` is not a readable image."""
    from PIL import Image

    try:
        with Image.open(src) as im:
            im = im.convert("RGB")
            im.save(full, format="PNG", optimize=True)
            layout = read_layout(src)
            fits = layout is not None and layout.shape[0] * layout.tile[0] <= im.height \
                and layout.shape[1] * layout.tile[1] <= im.width
            if fits and layout.captions:
                return _captioned(im, layout, thumb)
            w, h = thumbnail_size(im.width, im.height)
            resample = Image.Resampling.NEAREST if w >= im.width else Image.Resampling.LANCZOS
            im.resize((w, h), resample=resample).save(thumb, format="PNG", optimize=True)
            return []
    except (OSError, ValueError):
        return None


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
            stem = f"samples_{slug(rs.run.name) + '_' if multi else ''}{slug(s.trial_ids[0])}"
            thumb, full = fig_dir / f"{stem}.png", fig_dir / f"{stem}_full.png"
            if thumb.exists():
                continue
            prompts = copy_grid(src, thumb, full)
            if prompts is None:
                continue
            name = label.text + (f"_{label.sub}" if label.sub else "")
            omega = "" if s.setting.omega is None else f", ω = {s.setting.omega:g}"
            caption = (f"{rs.run.name + ': ' if multi else ''}{name} (γ_s / γ_w = "
                       f"{s.setting.sparsity()}{omega}), trial {s.trial_ids[0]}"
                       + (", with each sample's prompt" if prompts else "") + "; click for full resolution")
            grids.append(SampleGrid(caption, thumb, full, prompts))
    return grids
