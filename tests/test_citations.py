"""Citations and file references resolve inside the repository.

1. Every "method.md §N" / "method.md IN" / "DN" citation in damdp_lite/, benchmarks/, tests/,
   notebooks/src/ and docs/ names a heading or a labelled item of docs/method.md
   ("benchmarks.md §N": of docs/benchmarks.md). In the package, the benchmarks, the tests and
   docs/ a bare "§N" means method.md (benchmarks.md within itself); in a notebook it means the
   notebook's own section and is not checked.
2. Every relative markdown link in the notebook sources, README.md and docs/, and every
   repository path written in backticks in the notebook sources and README.md, names a file or
   folder that git tracks (docs/ also names files of other repositories in backticks).
3. No notebook source names a file outside the repository (a learner has only the repository).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CITING_DIRS = ("damdp_lite", "benchmarks", "tests", "notebooks/src")
NOTEBOOK_SOURCES = "notebooks/src"
SOURCE_SUFFIXES = (".py", ".sh")

OUTPUT_PATHS = {
    "damdp_lite/shipped/gpu/": "written by benchmarks/gpu_check.sh on a GPU machine",
    "tests/browser/screenshots/": "written by `make browser`",
    "notebooks/figures/generated/": "written when the notebooks run",
}
"""Folders the text names as where a script writes; they are not in a fresh checkout."""

# ---------------------------------------------------------------------------------------------
# What the repository holds
# ---------------------------------------------------------------------------------------------


@functools.cache
def tracked() -> frozenset[str]:
    """Every file git tracks, as POSIX paths relative to the root (the working tree's files
    when git or the .git folder is unavailable, e.g. in a source archive)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode()
        files = {f for f in out.split("\0") if f}
    except (OSError, subprocess.CalledProcessError):
        files = set()
    if not files:
        skip = {".git", ".venv", "build", "__pycache__", "runs", ".pytest_cache"}
        for dirpath, dirnames, filenames in os.walk(ROOT):
            dirnames[:] = [d for d in dirnames if d not in skip and not d.endswith(".egg-info")]
            rel = Path(dirpath).relative_to(ROOT)
            files |= {(rel / f).as_posix() for f in filenames}
    return frozenset(f for f in files if (ROOT / f).exists())


@functools.cache
def tracked_dirs() -> frozenset[str]:
    return frozenset(p.as_posix() for f in tracked() for p in Path(f).parents
                     if p.as_posix() != ".")


def in_repo(rel: str) -> bool:
    """`rel` (relative to the root, possibly with '..' or a trailing '/') is a tracked file
    or a folder holding tracked files, inside the repository."""
    path = os.path.normpath(rel.rstrip("/")) if rel.strip("/") else "."
    if path.startswith("..") or os.path.isabs(path):
        return False
    path = Path(path).as_posix()
    return path in tracked() or path in tracked_dirs()


def top_entries(folder: str) -> set[str]:
    """First path components of the tracked files under `folder` ("" = the root)."""
    prefix = f"{folder}/" if folder else ""
    return {f[len(prefix):].split("/")[0] for f in tracked() if f.startswith(prefix)}


def citing_files() -> list[Path]:
    """Sources that cite docs/ (this file's examples aside), and docs/ itself."""
    return sorted(ROOT / f for f in tracked()
                  if (f.startswith(tuple(d + "/" for d in CITING_DIRS))
                      and f.endswith(SOURCE_SUFFIXES) and f != "tests/test_citations.py")
                  or (f.startswith("docs/") and f.endswith(".md")))


def reference_texts() -> list[Path]:
    """Files whose links and backticked paths must resolve: notebook sources, README, docs."""
    return sorted(ROOT / f for f in tracked()
                  if (f.startswith(NOTEBOOK_SOURCES + "/") and f.endswith(".py"))
                  or f == "README.md" or (f.startswith("docs/") and f.endswith(".md")))


def render_dir(path: Path) -> str:
    """Folder a file's relative links are read from: a notebook source renders as the
    notebook in notebooks/, a markdown file from its own folder."""
    rel = path.relative_to(ROOT).as_posix()
    if rel.startswith(NOTEBOOK_SOURCES + "/"):
        return "notebooks"
    parent = Path(rel).parent.as_posix()
    return "" if parent == "." else parent


# ---------------------------------------------------------------------------------------------
# 1. Citations of docs/method.md and docs/benchmarks.md
# ---------------------------------------------------------------------------------------------

HEADING = re.compile(r"^#{1,6}\s+(?:(?P<sec>\d+(?:\.\d+)*)\.?|(?P<inv>I\d+)\.)\s")
TABLE_ITEM = re.compile(r"^\|\s*(?P<dis>D\d+)\s*\|")


@functools.cache
def doc_labels(name: str) -> frozenset[str]:
    """"§5.3", "I6", "D13", ... defined by headings and the first column of tables."""
    labels = set()
    for line in (ROOT / "docs" / name).read_text(encoding="utf-8").splitlines():
        if m := HEADING.match(line):
            labels.add(f"§{m['sec']}" if m["sec"] else m["inv"])
        elif m := TABLE_ITEM.match(line):
            labels.add(m["dis"])
    return frozenset(labels)


SEC = r"\d+(?:\.\d+)?"
TOKEN = re.compile(
    r"(?P<doc>method\.md|benchmarks\.md|[\w-]+\.md|notebooks?\s*\d*|\bpaper\b|arXiv)"
    rf"|(?P<sec>§\s*{SEC}(?:\s*[-–]\s*§?\s*{SEC})?)"
    r"|(?P<inv>\bI\d{1,2}(?:\s*[-–]\s*I\d{1,2})?\b)"
    r"|(?P<dis>\bD\d{1,2}\b)")


def expand(token: str, prefix: str) -> list[str]:
    """"§7.3-§7.5" -> §7.3, §7.4, §7.5; "I4-I6" -> I4, I5, I6; else the token itself."""
    parts = [p.strip().lstrip("§").lstrip("I").strip() for p in re.split(r"[-–]", token)]
    if len(parts) == 1:
        return [prefix + parts[0]]
    a, b = parts
    if prefix == "I":
        return [f"I{n}" for n in range(int(a), int(b) + 1)]
    (a_maj, _, a_min), (b_maj, _, b_min) = a.partition("."), b.partition(".")
    if a_min and b_min and a_maj == b_maj:
        return [f"§{a_maj}.{n}" for n in range(int(a_min), int(b_min) + 1)]
    return [f"§{a}", f"§{b}"]


def citations_in_text(text: str, default: str | None = "method.md"
                      ) -> list[tuple[int, str, str]]:
    """(line number, document, label) of every citation in a text.

    Within a line, a document name ("method.md", "benchmarks.md", "notebook 02", "style.md",
    "the paper", ...) sets what the following "§N" refer to; before any, a bare "§N" refers to
    `default` (None: not a citation, e.g. a notebook's own sections). "IN" and "DN" always
    refer to method.md.
    """
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        context = default
        for m in TOKEN.finditer(line):
            if m["doc"]:
                context = m["doc"] if m["doc"] in ("method.md", "benchmarks.md") else None
            elif m["sec"] and context:
                out += [(i, context, label) for label in expand(m["sec"], "§")]
            elif m["inv"]:
                out += [(i, "method.md", label) for label in expand(m["inv"], "I")]
            elif m["dis"]:
                out.append((i, "method.md", m["dis"]))
    return out


def citations(path: Path) -> list[tuple[int, str, str]]:
    """`citations_in_text` of a file: a bare "§N" is a notebook's own section in a notebook
    source, a section of benchmarks.md in docs/benchmarks.md, and of method.md elsewhere."""
    rel = path.relative_to(ROOT).as_posix()
    if rel.startswith(NOTEBOOK_SOURCES + "/"):
        default = None
    elif rel == "docs/benchmarks.md":
        default = "benchmarks.md"
    else:
        default = "method.md"
    return citations_in_text(path.read_text(encoding="utf-8"), default)


def test_docs_define_the_labels_the_package_cites():
    labels = doc_labels("method.md")
    for expected in ("§2.2", "§3.1", "§4.3", "§5.0", "§5.6", "§7.6", "§11.1", "I1", "I16", "D1",
                     "D13"):
        assert expected in labels, f"docs/method.md has no heading or item {expected}"
    assert {"§1", "§2", "§3"} <= doc_labels("benchmarks.md")


def test_every_citation_resolves():
    files = citing_files()
    assert any(f.name == "diffusion.py" for f in files), "no citing files found"
    found, broken = 0, []
    for path in files:
        for line, doc, label in citations(path):
            found += 1
            if label not in doc_labels(doc):
                broken.append(f"{path.relative_to(ROOT)}:{line}: {doc} {label}")
    assert found > 50, f"only {found} citations found: is the pattern still right?"
    assert not broken, ("citations that name no heading or item of docs/ (add the section, or "
                        "fix the citation):\n" + "\n".join(broken))


# ---------------------------------------------------------------------------------------------
# 2. Links and repository paths in the notebook sources, README.md and docs/
# ---------------------------------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
PATH_WORD = re.compile(r"(?:\.{1,2}/)*[\w.+-]+(?:/[\w.+-]+)*/?")
REPO_FILE = re.compile(r"[\w.+-]+\.(?:md|ipynb)")
"""Bare file names checked anywhere in the repository: the documents a learner opens (a bare
`name.py` may be a module of another project, e.g. the official code)."""
GYM_ID = re.compile(r"[\w]+/[\w-]+-v\d+")


def is_external(target: str) -> bool:
    return bool(re.match(r"[a-z][a-z0-9+.-]*:", target)) or target.startswith(("#", "//"))


def text_lines(path: Path) -> list[tuple[int, str]]:
    """The prose of a file: every line of a markdown file, the comment lines (markdown cells and
    comments) of a notebook source."""
    lines = enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
    if path.suffix == ".md":
        return list(lines)
    return [(i, line) for i, line in lines if line.lstrip().startswith("#")]


def referenced_paths(path: Path) -> list[tuple[int, str, str]]:
    """(line, written path, path relative to the root or None when it is not a repository
    path) for every markdown link and backticked path-like word of a file's prose."""
    base = render_dir(path)
    rel_file = path.relative_to(ROOT).as_posix()
    roots = top_entries("") | {"docs"}
    local = top_entries(base) if base else set()
    package = top_entries("damdp_lite")
    out = []
    for i, line in text_lines(path):
        for m in LINK.finditer(line):
            target = m[1].split("#")[0].split("?")[0]
            if target and not is_external(m[1]):
                out.append((i, m[1], os.path.normpath(os.path.join(base, target))))
        if rel_file.startswith("docs/"):
            continue  # docs name other repositories' files in backticks; links are checked
        for m in CODE.finditer(line):
            for word in m[1].split():
                word = word.strip("\"'(),;")
                if not PATH_WORD.fullmatch(word) or GYM_ID.fullmatch(word):
                    continue
                if "/" not in word.rstrip("/"):
                    if REPO_FILE.fullmatch(word):  # a bare file name: somewhere in the repo
                        hit = next((f for f in tracked() if Path(f).name == word), None)
                        out.append((i, word, hit))
                    continue
                first = word.split("/")[0]
                if first == "..":
                    out.append((i, word, os.path.normpath(os.path.join(base, word))))
                elif first in roots | local | package:
                    for folder in ("", base, "damdp_lite"):
                        candidate = os.path.normpath(os.path.join(folder, word))
                        if in_repo(candidate) or word in OUTPUT_PATHS:
                            break
                    out.append((i, word, candidate + ("/" if word.endswith("/") else "")))
    return out


def test_links_and_paths_name_files_in_the_repository():
    broken, checked = [], 0
    for path in reference_texts():
        for line, written, rel in referenced_paths(path):
            checked += 1
            if written in OUTPUT_PATHS:
                continue
            if rel is None or not in_repo(rel):
                broken.append(f"{path.relative_to(ROOT)}:{line}: {written}")
    assert checked > 20, f"only {checked} paths found: is the pattern still right?"
    assert not broken, "paths that name no tracked file or folder:\n" + "\n".join(broken)


# ---------------------------------------------------------------------------------------------
# 3. Notebook sources name nothing outside the repository
# ---------------------------------------------------------------------------------------------

OUTSIDE = re.compile(r"(?<![\w:/.])(?:/work/|/home/|/Users/|~/|[A-Z]:\\)|\.\./shared|shared/docs")


@pytest.mark.parametrize("path", sorted((ROOT / NOTEBOOK_SOURCES).glob("*.py")),
                         ids=lambda p: p.name)
def test_notebook_sources_stay_inside_the_repository(path):
    bad = [f"{path.name}:{i}: {m.group(0)!r} in {line.strip()[:80]!r}"
           for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
           for m in OUTSIDE.finditer(line)]
    for line, written, rel in referenced_paths(path):
        if rel is not None and (rel.startswith("..") or os.path.isabs(rel)):
            bad.append(f"{path.name}:{line}: {written} leaves the repository")
    assert not bad, "files outside the repository:\n" + "\n".join(bad)


def test_the_checks_catch_what_they_should():
    """The patterns find broken citations and paths, so the tests above cannot pass vacuously."""
    text = ('"""method.md §5.3, §99; I4-I6, D77; notebook 01 §5; benchmarks.md §3"""\n'
            'x = "see §7.3-§7.5 and style.md §4"\n')
    cites = {(doc, label) for _, doc, label in citations_in_text(text)}
    assert {("method.md", "§5.3"), ("method.md", "§99"), ("method.md", "I5"),
            ("method.md", "D77"), ("benchmarks.md", "§3"), ("method.md", "§7.4")} <= cites
    assert ("method.md", "§5") not in cites and ("method.md", "§4") not in cites
    assert "§99" not in doc_labels("method.md") and "D77" not in doc_labels("method.md")
    assert citations_in_text("# see §4 and method.md §2.2", default=None) == [
        (1, "method.md", "§2.2")]
    assert in_repo("docs/method.md") and in_repo("damdp_lite/") and not in_repo("../shared/x")
    assert not in_repo("docs/no_such_file.md")
    assert OUTSIDE.search("read /work/shared/docs/method.md") and OUTSIDE.search("../shared/a")
    assert not OUTSIDE.search("https://example.org/work/x")
