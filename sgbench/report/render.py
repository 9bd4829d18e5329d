"""Render `Table`s as Markdown, LaTeX (booktabs) and HTML, escaping every cell's text.

Cell texts can come from users (run names, method and schedule strings), so each renderer
escapes for its format; nothing here trusts a string.
"""

from __future__ import annotations

import html

from sgbench.report.tables import Cell, Table

# how each format writes the within-noise mark (tables.WITHIN_NOISE) as a superscript
_MARKS = {"md": "{}", "tex": r"$^{{\dagger}}$", "html": "<sup>{}</sup>"}


def _cell(c: Cell, esc, sub: str, bold: str, pm: str, arrow: str, mark: str = "{}") -> str:
    """A cell in one format: escaped text, subscript, bold, mark, ± part and arrow templates."""
    core = sub.format(esc(c.text), esc(c.sub)) if c.sub else esc(c.text)
    if c.bold:
        core = bold.format(core)
    core += mark.format(esc(c.mark)) if c.mark else ""
    return core + (pm.format(esc(c.pm)) if c.pm else "") + (arrow.format(esc(c.arrow)) if c.arrow else "")


# ---------------------------------------------------------------- Markdown
_MD_SPECIAL = {"\\": "\\\\", "|": "\\|", "*": "\\*", "`": "\\`", "<": "&lt;", ">": "&gt;",
               "[": "\\[", "]": "\\]", "\n": " ", "\r": " "}


def md_escape(text: str) -> str:
    return "".join(_MD_SPECIAL.get(ch, ch) for ch in str(text))


def md_cell(c: Cell) -> str:
    return _cell(c, md_escape, "{}_{}", "**{}**", " ± {}", " {}")


def table_markdown(t: Table) -> str:
    align = [("---:" if a == "r" else ":---") for a in t.align]
    lines = ["| " + " | ".join(md_cell(c) for c in t.header) + " |",
             "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in t.rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- LaTeX
_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "\n": " ", "\r": " ",
    "γ": r"$\gamma$", "ω": r"$\omega$", "Δ": r"$\Delta$", "±": r"$\pm$", "−": r"$-$",
    "–": "--", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "→": r"$\rightarrow$",
    "†": r"$^{\dagger}$", "≤": r"$\le$", "≥": r"$\ge$", "×": r"$\times$", "·": r"$\cdot$",
}


def tex_escape(text: str) -> str:
    out = "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))
    # γ_s in a header: keep the subscript in math mode rather than an escaped underscore
    return out.replace(r"$\gamma$\_s", r"$\gamma_s$").replace(r"$\gamma$\_w", r"$\gamma_w$")


def tex_cell(c: Cell) -> str:
    return _cell(c, tex_escape, r"{}$_{{\mathrm{{{}}}}}$", r"\textbf{{{}}}", r"{{\scriptsize\,$\pm$\,{}}}", " {}",
                 _MARKS["tex"])


def table_latex(t: Table, label_prefix: str = "tab:sgbench") -> str:
    """booktabs table; the long all-settings table becomes a `longtable` that breaks pages."""
    spec = "".join(t.align)
    caption = rf"\caption{{{tex_escape(t.title)}. {tex_escape(t.caption)}}}"
    label = rf"\label{{{label_prefix}-{t.key}}}"
    header = " & ".join(tex_cell(c) for c in t.header) + r" \\"
    body = [" & ".join(tex_cell(c) for c in row) + r" \\" for row in t.rows]
    if t.key == "settings":
        lines = [r"{\small", rf"\begin{{longtable}}{{{spec}}}", caption + label + r" \\",
                 r"\toprule", header, r"\midrule", r"\endfirsthead", r"\toprule", header,
                 r"\midrule", r"\endhead", r"\bottomrule", r"\endlastfoot", *body,
                 r"\end{longtable}}"]
        return "\n".join(lines) + "\n"
    wide = len(t.header) > 9
    lines = [r"\begin{table}[t]", r"\centering", r"\small", caption, label,
             r"\resizebox{\linewidth}{!}{%" if wide else "",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule", header, r"\midrule", *body,
             r"\bottomrule", r"\end{tabular}" + ("}" if wide else ""), r"\end{table}"]
    return "\n".join(line for line in lines if line) + "\n"


def tables_latex(tables: list[Table], source: str) -> str:
    """Every table but the failed-trials list (for reading, not for papers)."""
    tables = [t for t in tables if t.key != "failed"]
    head = [f"% sgbench report tables for {tex_escape(source)}",
            r"% needs \usepackage{booktabs}, \usepackage{graphicx} (\resizebox), \usepackage{longtable}", ""]
    return "\n".join(head) + "\n\n".join(table_latex(t) for t in tables) + "\n"


# ---------------------------------------------------------------- HTML
def html_cell(c: Cell, tag: str = "td") -> str:
    cls = ' class="num"' if c.numeric else ""
    text = _cell(c, html.escape, '{}<sub>{}</sub>', '<b>{}</b>', ' <small>± {}</small>', ' {}', _MARKS["html"])
    return f"<{tag}{cls}>{text}</{tag}>"


def table_html(t: Table) -> str:
    head = "".join(html_cell(Cell(c.text, c.sub, c.pm, c.arrow, c.bold, numeric=a == "r"), "th")
                   for c, a in zip(t.header, t.align))
    body = "\n".join("<tr>" + "".join(html_cell(c) for c in row) + "</tr>" for row in t.rows)
    return (f"<table>\n<caption><b>{html.escape(t.title)}.</b> {html.escape(t.caption)}</caption>\n"
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>")
