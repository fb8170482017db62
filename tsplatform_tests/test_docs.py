"""The README and docs stay true to the code: every command they show exists and answers ``--help``,
every setting is documented, every relative link resolves."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", REPO / "BENCHMARKS.md", *(REPO / "docs").glob("*.md")])
_FENCE = re.compile(r"```(?:bash|sh|console|shell)?\n(.*?)```", re.S)
#: First words of the command lines checked (other lines of a code block are output or prose).
_PROGRAMS = ("make", "tsplatform", ".venv/bin/", "python", "dagster")


def _command_lines() -> list[tuple[str, str]]:
    """(doc name, command line) of every shell line in the docs' bash code blocks."""
    found = []
    for doc in DOCS:
        for block in _FENCE.findall(doc.read_text(encoding="utf-8")):
            for raw in block.splitlines():
                line = raw.split(" #", 1)[0].strip()
                if line.startswith("$ "):
                    line = line[2:]
                words = _words(line) if line and not line.startswith("#") else []
                if words and words[0].startswith(_PROGRAMS):
                    found.append((doc.name, line))
    return found


def _words(line: str) -> list[str]:
    """The words of a line up to the first option, pipe or redirection; env assignments dropped."""
    words = []
    try:
        split = shlex.split(line, comments=True)
    except ValueError:  # not shell syntax: not a command line
        return []
    for word in split:
        if word.startswith("-") or word in {"|", "&&", ">", "2>&1", ";"}:
            break
        if not words and re.match(r"^[A-Z_]+=", word):
            continue
        words.append(word)
    return words


COMMANDS = _command_lines()


def _tsplatform_commands() -> list[tuple[str, list[str]]]:
    out = []
    for doc, line in COMMANDS:
        words = _words(line)
        if words and words[0] in {"tsplatform", ".venv/bin/tsplatform"}:
            path = [w for w in words[1:] if re.match(r"^[a-z][a-z-]*$", w) and "|" not in w]
            out.append((doc, path[:2]))
    return out


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) >= 10, "the docs' bash blocks hold fewer commands than expected: parser broken?"
    assert _tsplatform_commands(), "no tsplatform command found in the docs"


@pytest.mark.parametrize(("doc", "path"), _tsplatform_commands(), ids=lambda v: str(v))
def test_every_documented_tsplatform_command_exists(doc: str, path: list[str]) -> None:
    from tsplatform.cli import build_app

    # sub-commands of a group ("services up") are words too; keep the longest prefix that resolves
    result = CliRunner().invoke(build_app(), [*path, "--help"])
    if result.exit_code != 0 and len(path) > 1:  # the second word was an argument, not a sub-command
        result = CliRunner().invoke(build_app(), [path[0], "--help"])
    assert result.exit_code == 0, f"{doc}: `tsplatform {' '.join(path)} --help` failed:\n{result.output}"
    assert "Usage" in result.output


def _make_targets() -> list[tuple[str, str]]:
    return [(doc, w[1]) for doc, line in COMMANDS if len(w := _words(line)) >= 2 and w[0] == "make"]


@pytest.mark.parametrize(("doc", "target"), _make_targets(), ids=lambda v: str(v))
def test_every_documented_make_target_exists(doc: str, target: str) -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"{doc}: make {target} is not a target"
    dry = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, check=False)
    assert dry.returncode == 0, f"{doc}: `make -n {target}` failed: {dry.stderr[-2000:]}"


def _python_modules() -> list[tuple[str, str]]:
    out = []
    for doc, line in COMMANDS:
        match = re.search(r"python\S* -m ([\w.]+)", line)
        if match and match.group(1) != "pytest":
            out.append((doc, match.group(1)))
    return out


@pytest.mark.parametrize(("doc", "module"), _python_modules(), ids=lambda v: str(v))
def test_every_documented_python_module_exists(doc: str, module: str) -> None:
    assert importlib.util.find_spec(module) is not None, f"{doc}: python -m {module}: no such module"


def test_every_relative_link_resolves() -> None:
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.name} -> {target}")
    assert not broken, f"broken links: {broken}"


def test_every_setting_is_documented() -> None:
    from tsplatform.settings import Settings

    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [
        f"TSPLATFORM_{name.upper()}"
        for name in Settings.model_fields
        if f"`TSPLATFORM_{name.upper()}`" not in text
    ]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"
    documented = set(re.findall(r"`(TSPLATFORM_[A-Z0-9_]+)`", text))
    known = {f"TSPLATFORM_{name.upper()}" for name in Settings.model_fields}
    # variables that are not settings of the package (benchmarks, tests, exported service addresses)
    extra = documented - known
    assert all(name in text.split("## Other variables", 1)[-1] for name in extra), (
        f"documented as settings but not in tsplatform.settings: {sorted(extra)}"
    )
