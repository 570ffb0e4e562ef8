"""The README against the code: its reading order is the package docstring's, it stays short,
and every file that it or a document under docs/ links to or names in scripts/ exists."""
from __future__ import annotations

import re
from pathlib import Path

import tinysiamese

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "scripts" / "experiments" / "README.md"]
READING_ORDER = "## Read the code in this order"


def _module(name: str) -> str:
    """`ops.py`, ``ops``, `tinysiamese/cli/` -> ops, ops, cli."""
    return name.removeprefix("tinysiamese/").removesuffix(".py").rstrip("/")


def docstring_modules(doc: str) -> list[str]:
    """The module names of a docstring's numbered list, in order: each item starts with
    ``name``, ``name``, ... (which may run on to the next line) before its description."""
    items, current = [], None
    for line in doc.splitlines():
        start = re.match(r"\s*\d+\.\s+(.*)", line)
        if start:
            current = [start.group(1)]
            items.append(current)
        elif current is not None and line.strip():
            current.append(line.strip())
        else:
            current = None  # a blank line ends the list's item
    names = []
    for item in items:
        lead = re.match(r"(?:``[\w./]+``[,\s]*)+", " ".join(item))
        assert lead, f"numbered item {' '.join(item)[:60]!r} does not start with ``module``"
        names += [_module(n) for n in re.findall(r"``([\w./]+)``", lead.group(0))]
    return names


def readme_modules(text: str) -> list[str]:
    """The module names of the README's reading-order table (| # | modules | what |), in order."""
    assert READING_ORDER in text, f"the README has no section {READING_ORDER!r}"
    section = text.split(READING_ORDER, 1)[1].split("\n## ", 1)[0]
    names = []
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if row.startswith("|") and len(cells) >= 3 and cells[0].isdigit():
            names += [_module(n) for n in re.findall(r"`([\w./]+)`", cells[1])]
    return names


def test_the_reading_order_leaves_no_module_out():
    package = REPO / "tinysiamese"
    modules = {p.stem for p in package.glob("*.py")} | {
        p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    # the package itself, `python -m tinysiamese`, and the shipped model's files
    unread = modules - {"__init__", "__main__", "pretrained"} - set(
        docstring_modules(tinysiamese.__doc__))
    assert not unread, f"the reading order in tinysiamese/__init__.py leaves out {sorted(unread)}"


def test_the_readme_reads_the_modules_in_the_package_docstrings_order():
    in_docstring = docstring_modules(tinysiamese.__doc__)
    in_readme = readme_modules(README.read_text())
    assert len(in_docstring) >= 10, f"the package docstring lists only {in_docstring}"
    assert in_readme == in_docstring, (
        f"README reading order {in_readme}\n differs from tinysiamese/__init__.py's {in_docstring}")


def test_the_two_parsers_see_order_and_names():
    doc = """Intro.

1. ``backend``    the array module
2. ``ops``        pure pairs, then
                  the convolution
3. ``omniglot``, ``mnist``,
   ``pairs``  the data
10. ``cli/``      the command line

Afterwards ``not_a_module``.
"""
    assert docstring_modules(doc) == ["backend", "ops", "omniglot", "mnist", "pairs", "cli"]
    table = (f"{READING_ORDER}\n\n| # | module | what |\n| --- | --- | --- |\n"
             "| 1 | `backend.py` | the `xp` module |\n| 2 | `omniglot.py`, `mnist.py` | data |\n"
             "| 3 | `tinysiamese/cli/` | commands |\n\n## Next\n| 4 | `late.py` | x |\n")
    assert readme_modules(table) == ["backend", "omniglot", "mnist", "cli"]
    swapped = table.replace("| 1 | `backend.py`", "| 1 | `mnist.py`").replace(
        "`omniglot.py`, `mnist.py`", "`omniglot.py`, `backend.py`")
    assert readme_modules(swapped) != readme_modules(table), "a reordered table went unseen"


def test_the_readme_is_short_and_keeps_its_two_commands():
    text = README.read_text()
    lines = text.count("\n")
    assert lines <= 150, f"README.md has {lines} lines; the limit is 150"
    assert ".venv/bin/python -m pytest -q\n" in text, "the test command CI runs is gone"
    assert ("python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && "
            ".venv/bin/tinysiamese train --data") in text, "the install-and-train command is gone"
    assert "tinysiamese train --epochs 1 --steps-per-epoch 20" in text, "the quick try is gone"


def test_every_linked_or_named_file_exists():
    missing = []
    for doc in DOCS:
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):  # Markdown links
            path = target.split("#", 1)[0]
            if path and "://" not in path and not (doc.parent / path).exists():
                missing.append(f"{doc.relative_to(REPO)} links to {target}")
        for path in set(re.findall(r"\bscripts/[\w./-]*\w\.(?:py|sh|md)\b", text)):
            if not (REPO / path).exists():
                missing.append(f"{doc.relative_to(REPO)} names {path}")
    assert not missing, "\n".join(missing)
