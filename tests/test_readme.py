"""The README's promises that CI depends on."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.DOTALL)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = next(command for command in readme_commands() if "pytest" in command)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_readme_demo_uses_shipped_files() -> None:
    demo = next(command for command in readme_commands() if "archive-inpaint inpaint" in command)
    for shipped in re.findall(r"(examples/\S+)", demo):
        assert (ROOT / shipped).is_file(), f"README demo needs {shipped}, which is not in the repo"
