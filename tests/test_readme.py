"""The README's promises that CI depends on."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.DOTALL)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = next(command for command in readme_commands() if "pytest" in command)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def readme_demo() -> str:
    """The Quick start's first command: the demo everyone runs first."""
    return readme_commands()[0]


def test_readme_demo_uses_shipped_files() -> None:
    demo = readme_demo()
    assert "archive-inpaint submit examples/demo_manifest.parquet" in demo
    single_shot = next(command for command in readme_commands() if "archive-inpaint inpaint examples/" in command)
    for command in (demo, single_shot):
        for shipped in re.findall(r"(examples/\S+)", command):
            assert (ROOT / shipped).is_file(), f"README demo needs {shipped}, which is not in the repo"


def test_readme_demo_manifest_validates_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped manifest's relative URIs resolve against its own folder, not the working
    directory: it validates, and names the shipped clip and mask, from an unrelated directory."""
    from archive_inpaint.batch.manifest import read_shots, validate_manifest

    manifest = ROOT / re.findall(r"(examples/\S+\.parquet)", readme_demo())[0]
    monkeypatch.chdir(tmp_path)
    for uri in (str(manifest), os.path.relpath(manifest, tmp_path)):
        report = validate_manifest(uri)
        assert report.ok, report.problems
        assert [shot.shot_id for shot in report.shots] == ["carphone"]
        shot = report.shots[0]
        assert Path(shot.video_uri) == ROOT / "examples" / "carphone_damaged.mkv"
        assert Path(shot.mask_uri) == ROOT / "examples" / "carphone_mask.mkv"
        assert read_shots(uri) == report.shots


def test_demo_damage_lies_under_the_demo_mask() -> None:
    """The shipped demo is consistent: the damaged clip differs from the clean clip only where the
    mask says, so restoring it exercises exactly the masked pixels."""
    from archive_inpaint.media import read_frames, read_masks

    clean = read_frames(ROOT / "examples" / "carphone.mp4")
    damaged = read_frames(ROOT / "examples" / "carphone_damaged.mkv")
    holes = read_masks(
        ROOT / "examples" / "carphone_mask.mkv",
        num_frames=damaged.num_frames,
        height=damaged.height,
        width=damaged.width,
        fps=damaged.fps,
        video_path=str(damaged.path),
    )
    assert damaged.fps == clean.fps and damaged.frames.shape == clean.frames.shape
    assert holes.any(axis=(1, 2)).all(), "every frame of the demo has damage to remove"
    assert (damaged.frames[~holes] == clean.frames[~holes]).all()
    assert (damaged.frames[holes] != clean.frames[holes]).any(axis=-1).mean() > 0.9
