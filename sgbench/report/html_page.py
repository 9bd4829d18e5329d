"""One self-contained HTML page: tables, figures and sample grids as base64 PNG.

Every string that can come from a user (run names, paths, suite values, prompts, env facts,
captions built from them) goes through `html.escape`; the page loads nothing external. Its only
links are the sample thumbnails' (and their captions'), to the full-resolution grids in the
report's figures/ folder beside it.

Each figure is shown at its size in inches at 96 CSS px per inch (its PNG's dpi says which),
never wider than the page's PAGE_WIDTH_PX content width, so the text sizes the figures were
laid out for (`figures.MIN_TEXT_PX`) hold at a 1400 px window.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from sgbench.rehearse.marker import NOTICE as REHEARSAL_NOTICE
from sgbench.rehearse.marker import is_rehearsal
from sgbench.report.figures import CSS_PX_PER_IN, PAGE_WIDTH_PX
from sgbench.report.render import table_html
from sgbench.report.runs import find_prompts, run_facts, status_line
from sgbench.report.samples import SampleGrid
from sgbench.report.tables import RunSummaries, Table

_CSS = """
body{font:14px/1.45 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:PAGE_WIDTHpx;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:13px}
caption{caption-side:bottom;text-align:left;color:#555;font-size:12px;padding-top:.4em;max-width:60em}
thead th{border-top:2px solid #222;border-bottom:1px solid #222;padding:.35em .7em;text-align:left;white-space:nowrap}
tbody td{padding:.25em .7em;white-space:nowrap}tbody tr:last-child td{border-bottom:2px solid #222}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0 2em}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:12px;margin-top:.3em;max-width:72em}
.wide{overflow-x:auto;max-width:100%}
table.failed td:nth-last-child(2){white-space:normal;min-width:24em;font-family:monospace;font-size:12px}
.problem{background:#fff4e5;border-left:4px solid #f0a020;padding:.6em 1em;margin:1em 0}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:12px}
.meta li{margin:.15em 0}code{background:#f3f3f3;padding:0 .25em}
""".replace("PAGE_WIDTH", str(PAGE_WIDTH_PX))


def css_width(path: Path) -> int:
    """The width a PNG is shown at: its inches at CSS_PX_PER_IN (from its dpi), else its pixels."""
    from PIL import Image

    with Image.open(path) as im:
        dpi = im.info.get("dpi")
        width = im.width
    scale = CSS_PX_PER_IN / float(dpi[0]) if dpi and float(dpi[0]) > 0 else 1.0
    return min(PAGE_WIDTH_PX, max(1, round(width * scale)))


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" width="{css_width(path)}" alt="{html.escape(alt)}">'


def _table(t: Table) -> str:
    body = table_html(t)
    if t.key == "failed":
        body = body.replace("<table>", '<table class="failed">', 1)
    return f'<div class="wide">{body}</div>'


def html_page(all_rs: list[RunSummaries], tables: list[Table], figures: list[tuple[str, Path]],
              grids: list[SampleGrid]) -> str:
    esc = html.escape
    runs = [rs.run for rs in all_rs]
    title = " vs ".join(r.name for r in runs)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>sgbench report: {esc(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>sgbench report: {esc(title)}</h1>", '<ul class="meta">']
    for r in runs:
        facts = "; ".join(f"{esc(k)}: {esc(v)}" for k, v in run_facts(r).items())
        parts.append(f"<li><b>{esc(r.name)}</b> (<code>{esc(str(r.path))}</code>): {esc(status_line(r))}"
                     + (f"; {facts}" if facts else "") + "</li>")
    parts.append("</ul>")
    for r in runs:
        if is_rehearsal(r.path):
            parts.append(f'<div class="problem"><b>{esc(r.name)}: {esc(REHEARSAL_NOTICE)}</b></div>')
    for r in runs:
        if r.problem:
            parts.append(f'<div class="problem"><b>{esc(r.name)}: nothing to report:</b> {esc(r.problem)}.</div>')
    for t in tables:
        if t.key != "settings":
            parts += [f"<h2>{esc(t.title)}</h2>", _table(t)]
    if figures:
        parts.append("<h2>Figures</h2>")
        for caption, p in figures:
            parts.append(f"<figure>{_img(p, caption)}<figcaption>{esc(caption)}</figcaption></figure>")
    if grids:
        parts.append("<h2>Samples</h2>")
        for g in grids:
            alt = g.caption + "".join(f"; {i + 1}. {p}" for i, p in enumerate(g.prompts))
            link = esc(f"figures/{g.full.name}")
            parts.append(f'<figure><a href="{link}" title="full resolution">{_img(g.path, alt)}</a>'
                         f'<figcaption>{esc(g.caption)} (<a href="{link}">{esc(g.full.name)}</a>)'
                         "</figcaption></figure>")
    for t in tables:
        if t.key == "settings":
            parts += [f"<h2>{esc(t.title)}</h2>", f"<details open><summary>{len(t.rows)} settings</summary>",
                      _table(t), "</details>"]
    for r in runs:
        prompts = find_prompts(r.suite)
        if prompts:
            items = "".join(f"<li>{esc(p)}</li>" for p in prompts[:200])
            more = f"<p>… and {len(prompts) - 200} more.</p>" if len(prompts) > 200 else ""
            parts.append(f"<h2>Prompts: {esc(r.name)}</h2><details><summary>{len(prompts)} prompts</summary>"
                         f"<ol>{items}</ol>{more}</details>")
    for r in runs:
        if r.suite_text or r.env:
            parts.append(f"<h2>Run configuration: {esc(r.name)}</h2>")
        if r.suite_text:
            parts.append(f"<details><summary>suite.yaml</summary><pre>{esc(r.suite_text)}</pre></details>")
        if r.env:
            env = json.dumps(r.env, indent=2, sort_keys=True, default=str)
            parts.append(f"<details><summary>env.json</summary><pre>{esc(env)}</pre></details>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
