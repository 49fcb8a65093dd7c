"""The README stays a front page, its map of docs/ is complete, and every link and every
reference to a page of docs/ leads somewhere that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS]
# Where code, scripts and configuration may cite a page of docs/.
SOURCE_ROOTS = ["infra", "jobs", "tests", "bootstrap", "benchmarks", "docs", ".ci"]
SOURCE_SUFFIXES = {".py", ".sh", ".md", ".yaml", ".yml", ".toml", ".go", ""}

MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DOCS_REFERENCE = re.compile(r"docs/([A-Za-z0-9_-]+\.md)(?:, \"([^\"]+)\")?")


def _without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)


def _prose(text: str) -> str:
    """The text of a Markdown page without its fenced blocks and inline code, where brackets
    are code, not links."""
    return re.sub(r"`[^`\n]*`", "", _without_fences(text))


def _section(text: str, title: str) -> list[str]:
    """The lines of a `## ` section, up to the next one."""
    lines = text.splitlines()
    start = lines.index(f"## {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation but hyphens and
    spaces dropped, spaces as hyphens."""
    text = _without_fences(page.read_text())
    headings = re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_readme_is_a_front_page_of_at_most_150_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, (
        f"README.md has {len(lines)} lines; move reference sections to a page in docs/"
    )


def test_the_readme_keeps_the_two_commands():
    section = _section(README.read_text(), "The two commands")
    commands = [line.split("#")[0].strip() for line in section if line.startswith("bash ")]
    assert commands == ["bash jobs/local.sh", "bash tests/run.sh"]


def test_the_anchors_are_the_ones_github_gives():
    anchors = _anchors(REPO / "docs" / "deploying.md")
    assert "previewing-every-pull-request-gitops" in anchors
    assert "deploying-for-real-the-first-pulumi-up" in anchors


def test_every_docs_page_is_in_the_readme_map_once_with_what_it_holds():
    rows = [
        line for line in _section(README.read_text(), "Documentation") if line.startswith("| [")
    ]
    mapped = []
    for row in rows:
        match = re.fullmatch(r"\| \[(docs/[^\]]+)\]\((docs/[^)]+)\) \| (.+) \|", row)
        assert match, f"a map row is '| [docs/page.md](docs/page.md) | what it holds |': {row}"
        text, target, holds = match.groups()
        assert text == target, row
        assert holds.strip(), f"{target} needs a line on what it holds"
        mapped.append(target)
    pages = [f"docs/{page.name}" for page in DOCS]
    assert len(mapped) == len(set(mapped)), "a page is listed twice in the README's map"
    assert sorted(mapped) == pages, "the README's map and docs/*.md differ"


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_every_relative_link_points_at_a_file_that_exists(page: Path):
    links = MARKDOWN_LINK.findall(_prose(page.read_text()))
    relative = [link for link in links if not re.match(r"[a-z][a-z0-9+.-]*:", link)]
    for link in relative:
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: the link {link!r} leads to no file"
        if anchor and target.suffix == ".md":
            assert anchor in _anchors(target), f"{page.name}: {link!r} names no heading"


def _sources() -> list[Path]:
    files = [p for p in REPO.iterdir() if p.is_file() and p.suffix in SOURCE_SUFFIXES]
    for root in SOURCE_ROOTS:
        for path in (REPO / root).rglob("*"):
            parts = path.relative_to(REPO).parts
            hidden = any(part.startswith(".") for part in parts[1:])
            this = path == Path(__file__).resolve()  # its examples of the pattern
            if path.is_file() and path.suffix in SOURCE_SUFFIXES and not hidden and not this:
                files.append(path)
    return files


def test_references_to_docs_pages_and_their_sections_exist():
    """A comment that sends the reader to `docs/job.md, "Where the readers' ceilings lie"`
    must find that page, and that text on it."""
    found = 0
    for source in _sources():
        try:
            text = source.read_text()
        except UnicodeDecodeError:
            continue
        for name, quoted in DOCS_REFERENCE.findall(text):
            found += 1
            page = REPO / "docs" / name
            where = source.relative_to(REPO)
            assert page.exists(), f"{where} cites docs/{name}, which does not exist"
            if quoted:
                assert quoted in page.read_text(), f"{where}: docs/{name} has no {quoted!r}"
    assert found > 10, "the scan found almost no reference: the pattern is broken"
