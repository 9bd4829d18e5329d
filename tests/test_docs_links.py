"""README is the user's guide (at most 600 lines, the two fresh-clone commands) and every relative
link in README.md and docs/*.md reaches an existing file and, with a #fragment, a heading there
(GitHub's anchor rule), so moving a section cannot leave a dead link behind."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 600


def _prose(text: str) -> str:
    """The text outside fenced code blocks (headings and links inside code are not markdown)."""
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.S | re.M)


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation dropped, spaces -> '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6} (.+)$", _prose(path.read_text()), re.M):
        a = github_anchor(m.group(1))
        n = seen.get(a, 0)
        seen[a] = n + 1
        out.add(a if n == 0 else f"{a}-{n}")
    return out


def links(path: Path):
    for m in re.finditer(r"\]\(([^)\s]+)\)", _prose(path.read_text())):
        target = m.group(1)
        if not re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not checked here
            yield target


def test_anchor_rule_matches_github():
    assert github_anchor("`sgbench convert`: record what a checkpoint is, once") == (
        "sgbench-convert-record-what-a-checkpoint-is-once")
    assert github_anchor("HPSv3 (`sgbench/t2i/hpsv3_client.py`, `hpsv3_worker.py`)") == (
        "hpsv3-sgbencht2ihpsv3_clientpy-hpsv3_workerpy")


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_relative_links_resolve(doc):
    dead = []
    for target in links(doc):
        file_part, _, fragment = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            dead.append(target)
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            dead.append(target)
    assert dead == [], f"{doc.name}: dead links {dead}"


def test_readme_is_a_guide_with_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    block = re.search(r"## Fresh clone: two commands\s+```bash\n(.*?)```", text, re.S)
    assert block, "README lost its 'Fresh clone: two commands' block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make quickstart", "make test"]
    targets = re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M)
    assert {"quickstart", "test"} <= set(targets)
    for page in (REPO / "docs").glob("*.md"):  # every docs page is reachable from README
        assert f"docs/{page.name}" in text, f"README does not link docs/{page.name}"
