"""The project's documents and code cite only what the repository holds: every link of the
README, SECURITY.md and docs/ opens a file (and a heading) that is there, every test they name
(`file` :: `test`) exists where they say, and nothing points outside the checkout (a plain
clone has no sibling folders)."""

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    [REPO_ROOT / "README.md", REPO_ROOT / "SECURITY.md", *(REPO_ROOT / "docs").glob("*.md")]
)
# What is not the project's own text: tools' caches, the virtualenv, run-time folders.
NOT_OURS = {
    ".git",
    ".venv",
    "var",
    "test-artifacts",
    "build",
    "dist",
    "vendor",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "__pycache__",
}
TEXT_SUFFIXES = {".md", ".py", ".toml", ".yml", ".yaml", ".cfg", ".ini", ".txt", ".html", ".sh"}


def _project_text_files() -> list[Path]:
    found = []
    for path in REPO_ROOT.rglob("*"):
        parts = path.relative_to(REPO_ROOT).parts
        if any(part in NOT_OURS or part.endswith(".egg-info") for part in parts):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name == "Makefile"):
            found.append(path)
    return found


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(document: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.DOTALL)
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def _links(document: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.DOTALL)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_link_of_a_document_opens_a_file_and_heading_of_the_repository(document: Path):
    for link in _links(document):
        if re.match(r"[a-z]+:", link):  # https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (document.parent / target).resolve() if target else document
        assert path.is_relative_to(REPO_ROOT), f"{document.name}: {link} leaves the repository"
        assert path.exists(), f"{document.name}: {link} is not in the repository"
        if anchor and path.suffix == ".md":
            assert anchor in _anchors(path), f"{document.name}: {link} names no heading"


def _defined_tests(path: Path) -> set[str]:
    return set(re.findall(r"^\s*(?:async )?def (test_\w+)", path.read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_test_a_document_names_is_where_it_says(document: Path):
    text = document.read_text()
    for cited in set(re.findall(r"`(tests/[\w/]+\.py)`", text)):
        assert (REPO_ROOT / cited).is_file(), f"{document.name}: {cited} does not exist"
    for row in text.splitlines():
        for cell in re.split(r";\s*", row):
            named = re.search(r"`(tests/[\w/]+\.py)` :: (.*)", cell)
            if not named:
                continue
            defined = _defined_tests(REPO_ROOT / named.group(1))
            for test in re.findall(r"`(test_\w+)`", named.group(2)):
                assert test in defined, f"{document.name}: {named.group(1)} has no {test}"


def test_nothing_in_the_project_cites_a_file_outside_the_repository():
    # The house's notes outside the checkout, and the contract's old name beside it.
    outside = re.compile(r"\.\./shared|(?<![\w/.-])(?:API|DESIGN|STYLE)\.md")
    this_file = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in _project_text_files()
        if path.resolve() != this_file
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if outside.search(line)
    ]
    assert not offenders, "\n".join(offenders)
