"""The README's promises stay true: its two commands, its settings, its commands, the pins they install."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from portcullis.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e '.[dev]' && "


def _first_code_block() -> list[str]:
    match = re.search(r"^```[a-z]*\n(.*?)^```", README, re.S | re.M)
    assert match, "README.md has no code block"
    return match.group(1).splitlines()


def test_readme_starts_with_the_two_commands() -> None:
    lines = README.splitlines()
    assert lines[0].startswith("# ")
    assert lines[2].startswith("```"), "the commands come right after the title"
    assert _first_code_block() == [
        INSTALL + ".venv/bin/portcullis demo --serve",
        INSTALL + ".venv/bin/python -m pytest",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    script = ci.read_text(encoding="utf-8")
    assert "set -euo pipefail" in script
    assert "export CI=true" in script
    # .ci/run takes the second line of the first code block; it must be the test command.
    assert _first_code_block()[1].endswith("-m pytest")


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert f"PORTCULLIS_{name.upper()}" in README, f"PORTCULLIS_{name.upper()} is not in README.md"


def test_every_top_level_command_is_documented() -> None:
    from portcullis.cli import app

    names = [c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands]
    names += [g.name or "" for g in app.registered_groups]
    assert "serve" in names
    for name in names:
        assert f"portcullis {name}" in README, f"`portcullis {name}` is not in README.md"


def test_constraints_pin_every_declared_dependency() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [Requirement(r) for r in pyproject["dependencies"] + pyproject["optional-dependencies"]["dev"]]
    pins: dict[str, str] = {}
    for raw in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("-e"), f"editable line in constraints.txt: {line}"
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt pins exact versions only: {line}"
        pins[canonicalize_name(name)] = version
    assert "portcullis" not in pins
    for req in declared:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is a dependency but not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), f"pin {name}=={pins[name]} breaks {req}"
