"""`archive-inpaint inpaint` end to end on real (tiny) media files, and its bad-input handling."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner, Result

from archive_inpaint.cli import app
from archive_inpaint.media import read_frames, write_frames
from archive_inpaint.pipeline import ShotInputs, contact_sheet_path, inpaint_files
from engine_fixtures import (  # noqa: F401  (single_thread is a fixture)
    CPU,
    moving_box_holes,
    moving_texture,
    single_thread,
    tiny_config,
    write_empty_video,
    write_gray_video,
)

pytestmark = pytest.mark.usefixtures("single_thread")

FPS = Fraction(24000, 1001)
T, H, W = 8, 24, 32
TINY_RUN = ["--iterations", "5", "--width", "4", "--preset", "fast", "--quiet", "--device", "cpu"]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def invoke(*args: object) -> Result:
    # A wide terminal keeps rich from wrapping long paths; _squeeze copes if it still does.
    return CliRunner().invoke(
        app, [str(a) for a in args], env={"COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
    )


def _squeeze(text: str) -> str:
    """Output without colour codes and whitespace: immune to rich's line wrapping."""
    return re.sub(r"\s+", "", _ANSI.sub("", text))


def _mentions(result: Result, *texts: str) -> bool:
    output = _squeeze(result.output)
    return all(_squeeze(text) in output for text in texts)


def _succeeded(result: Result) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash: surface it with its own traceback
    assert result.exit_code == 0, result.output


@pytest.fixture
def shot(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """A lossless FFV1 clip at 24000/1001 fps with a red 'object' under a moving mask."""
    frames = moving_texture(T, H, W, seed=5)
    holes = moving_box_holes(T, H, W, box=(6, 8))
    frames[holes] = (255, 0, 0)
    video = write_frames(frames, FPS, tmp_path / "shot.mkv")
    mask = write_gray_video(tmp_path / "shot_mask.mkv", holes, FPS)
    return video, mask, frames, holes


def _check_output(
    written: Path, frames: np.ndarray, holes: np.ndarray, fps: Fraction | None
) -> None:
    result = read_frames(written, fps=Fraction(24) if fps is None else None)
    assert result.frames.shape == frames.shape
    if fps is not None:
        assert result.fps == fps
    known = ~holes
    assert np.array_equal(result.frames[known], frames[known]), "an unmasked pixel changed"
    changed = np.any(result.frames != frames, axis=-1)
    assert changed[holes].any(), "nothing inside the mask changed"
    sheet = contact_sheet_path(written)
    assert sheet.is_file()
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] > H and image.shape[1] > W


# --------------------------------------------------------------------------- success paths


def test_pipeline_files_end_to_end_without_checkpoints(shot, tmp_path):
    """The engine behind the CLI (media in, train, fill, media + contact sheet out)."""
    video, mask, frames, holes = shot
    output = tmp_path / "piped.mkv"
    outputs, result = inpaint_files(
        ShotInputs(video=video, mask=mask), output, tiny_config(3), CPU, checkpoint_dir=None
    )
    assert outputs.video == output and outputs.contact_sheet == contact_sheet_path(output)
    assert result.iterations == 3 and len(result.loss_history) == 3
    _check_output(output, frames, holes, FPS)


def test_cli_ffv1_output_and_resume(shot, tmp_path):
    video, mask, frames, holes = shot
    output = tmp_path / "out.mkv"
    result = invoke("inpaint", video, "--mask", mask, "-o", output, *TINY_RUN)
    _succeeded(result)
    assert _mentions(result, str(output), "5 steps")
    assert not _mentions(result, "resumed")
    _check_output(output, frames, holes, FPS)
    assert contact_sheet_path(output) == tmp_path / "out.contact.png"
    checkpoints = tmp_path / "out.checkpoints"
    assert sorted(p.name[-11:] for p in checkpoints.iterdir()) == ["00000005.pt"]

    more = [a if a != "5" else "7" for a in TINY_RUN]
    again = invoke("inpaint", video, "--mask", mask, "-o", output, *more)
    _succeeded(again)
    assert _mentions(again, "resumed from step 5", "7 steps")
    _check_output(output, frames, holes, FPS)


@pytest.mark.parametrize("propagation", ["--propagation", "--no-propagation"])
def test_cli_progressive_stages_fill_at_full_resolution(shot, tmp_path, propagation):
    """--stages 2 with a working size below the frame: a patch stage at the frame's own size
    fills through mask tiles, and still only hole pixels change; with content propagated from
    other frames or without, with lighting compensation, blended sources and the agreement
    check or without, as asked (the provenance records which)."""
    video, mask, frames, holes = shot
    output = tmp_path / "progressive.mkv"
    lighting = "--lighting" if propagation == "--propagation" else "--no-lighting"
    blend = "--blend-sources" if propagation == "--propagation" else "--no-blend-sources"
    agreement = "--check-agreement" if propagation == "--propagation" else "--no-check-agreement"
    judge = "--no-agreement-between-sources" if propagation == "--propagation" else "--agreement-between-sources"
    args = [
        "--working-size", "16", "--stages", "2", "--patch-size", "32", "--patch-iterations", "2",
        propagation, lighting, blend, agreement, judge,
    ]
    result = invoke("inpaint", video, "--mask", mask, "-o", output, *TINY_RUN, *args)
    _succeeded(result)
    assert _mentions(result, "2 stages", "tiles", f"{5 + 2} steps")
    _check_output(output, frames, holes, FPS)
    recorded = json.loads((tmp_path / "progressive.provenance.json").read_text())["config"]["content_propagation"]
    assert recorded["patch_stages"] is recorded["whole_frame_fill"] is (propagation == "--propagation")
    assert recorded["lighting"] is (lighting == "--lighting")
    assert recorded["blend_sources"] is (blend == "--blend-sources")
    assert recorded["check_agreement"] is (agreement == "--check-agreement")
    assert recorded["agreement_between_sources"] is (judge == "--agreement-between-sources")


def test_cli_single_frame_mask_with_regularizers(shot, tmp_path):
    """One annotated frame in, masks for every frame predicted and saved; the regularizers on."""
    video, mask, frames, holes = shot
    annotation = tmp_path / "annotation.png"
    cv2.imwrite(str(annotation), holes[3].astype(np.uint8) * 255)
    output = tmp_path / "single.mkv"
    args = ["--mask-mode", "single-frame", "--mask-frame", "3", "--stabilization", "0.2", "--contextual", "0.1"]
    result = invoke("inpaint", video, "--mask", annotation, "-o", output, *TINY_RUN, *args)
    _succeeded(result)
    assert _mentions(result, "predicted masks", "single.masks.mkv")
    predicted = read_frames(tmp_path / "single.masks.mkv").frames[..., 0] > 127
    assert (predicted[3] == holes[3]).all()
    restored = read_frames(output).frames
    assert (restored[~predicted] == frames[~predicted]).all()
    bad = invoke("inpaint", video, "--mask", annotation, "-o", output, *TINY_RUN, "--mask-mode", "one")
    assert bad.exit_code == 2 and _mentions(bad, "mask_mode must be one of")


def test_cli_png_sequence_output(shot, tmp_path):
    video, mask, frames, holes = shot
    output = tmp_path / "filled"
    result = invoke("inpaint", video, "--mask", mask, "-o", output, *TINY_RUN)
    _succeeded(result)
    assert output.is_dir()
    assert len(sorted(output.glob("*.png"))) == T
    _check_output(output, frames, holes, None)
    assert contact_sheet_path(output) == tmp_path / "filled.contact.png"


# --------------------------------------------------------------------------- bad input


def _assert_usage_error(result: Result, *names: object) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert _mentions(result, "error"), result.output
    for name in names:
        assert _mentions(result, str(name)), f"{name} not named in: {result.output}"


def test_missing_video_file(shot, tmp_path):
    _, mask, _, _ = shot
    missing = tmp_path / "no_such_clip.mkv"
    result = invoke("inpaint", missing, "--mask", mask, "-o", tmp_path / "o.mkv", *TINY_RUN)
    _assert_usage_error(result, missing)
    assert _mentions(result, "not found")
    assert not (tmp_path / "o.mkv").exists()


def test_missing_mask_file(shot, tmp_path):
    video, _, _, _ = shot
    missing = tmp_path / "no_such_mask.mkv"
    result = invoke("inpaint", video, "--mask", missing, "-o", tmp_path / "o.mkv", *TINY_RUN)
    _assert_usage_error(result, missing)


def test_mask_of_another_size(shot, tmp_path):
    video, _, _, _ = shot
    mask = write_gray_video(tmp_path / "small_mask.mkv", np.ones((T, 16, 16), dtype=bool), FPS)
    result = invoke("inpaint", video, "--mask", mask, "-o", tmp_path / "o.mkv", *TINY_RUN)
    _assert_usage_error(result, mask, video)
    assert _mentions(result, "16x16", f"{W}x{H}")


def test_mask_with_fewer_frames(shot, tmp_path):
    video, _, _, holes = shot
    mask = write_gray_video(tmp_path / "short_mask.mkv", holes[:5], FPS)
    result = invoke("inpaint", video, "--mask", mask, "-o", tmp_path / "o.mkv", *TINY_RUN)
    _assert_usage_error(result, mask, video)
    assert _mentions(result, "5 frames")


def test_video_without_frames(shot, tmp_path):
    _, mask, _, _ = shot
    empty = write_empty_video(tmp_path / "empty.avi", H, W, FPS)
    result = invoke("inpaint", empty, "--mask", mask, "-o", tmp_path / "o.mkv", *TINY_RUN)
    _assert_usage_error(result, empty)
    assert _mentions(result, "no frames"), result.output


def test_zero_byte_video(shot, tmp_path):
    _, mask, _, _ = shot
    empty = tmp_path / "zero.mkv"
    empty.write_bytes(b"")
    result = invoke("inpaint", empty, "--mask", mask, "-o", tmp_path / "o.mkv", *TINY_RUN)
    _assert_usage_error(result, empty)


def test_corrupt_video(shot, tmp_path):
    _, mask, _, _ = shot
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    result = invoke("inpaint", corrupt, "--mask", mask, "-o", tmp_path / "o.mkv", *TINY_RUN)
    _assert_usage_error(result, corrupt)


def test_error_names_file_with_brackets(shot, tmp_path):
    _, mask, _, _ = shot
    missing = tmp_path / "take[v2].mkv"
    result = invoke("inpaint", missing, "--mask", mask, "-o", tmp_path / "o.mkv", *TINY_RUN)
    _assert_usage_error(result, missing)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(shot, tmp_path):
    video, mask, _, _ = shot
    args = [a for a in TINY_RUN if a not in ("--device", "cpu")]
    output = tmp_path / "o.mkv"
    result = invoke("inpaint", video, "--mask", mask, "-o", output, *args, "--device", "cuda")
    assert result.exit_code == 2, result.output
    assert _mentions(result, "--device cuda", "no CUDA device"), result.output
    assert not (tmp_path / "o.mkv").exists()


def test_output_may_not_overwrite_the_input(shot):
    video, mask, frames, _ = shot
    before = video.read_bytes()
    result = invoke("inpaint", video, "--mask", mask, "-o", video, *TINY_RUN)
    _assert_usage_error(result, video)
    assert _mentions(result, "overwrite")
    assert video.read_bytes() == before


@pytest.mark.parametrize("method", ["dip-vid-flow", "lgtsm"])
def test_inpaint_with_another_method(shot, tmp_path: Path, method: str) -> None:
    """``--method`` runs the same media path with another network: same frames, rate and size,
    unmasked pixels bit-exact."""
    video, mask, frames, holes = shot
    out = tmp_path / f"{method}.mkv"
    _succeeded(invoke("inpaint", video, "--mask", mask, "-o", out, "--method", method, *TINY_RUN))
    _check_output(out, frames, holes, FPS)


def test_method_settings_reach_the_method(shot, tmp_path: Path) -> None:
    """``--gan-weight`` runs LGTSM's TSMGAN phase, ``--flow-estimator`` picks DIP-Vid-Flow's flow;
    each is refused for a method that does not have it."""
    video, mask, frames, holes = shot
    out = tmp_path / "gan.mkv"
    # 8 steps (the last word wins over TINY_RUN's 5): steps 7 and 8 are the GAN's last quarter.
    _succeeded(
        invoke("inpaint", video, "--mask", mask, "-o", out, "--method", "lgtsm", "--gan-weight", "1", *TINY_RUN, "--iterations", "8")
    )
    details = json.loads((tmp_path / "gan.provenance.json").read_text())["method_details"]
    assert details["gan"] is True
    _check_output(out, frames, holes, FPS)
    out = tmp_path / "flow.mkv"
    _succeeded(
        invoke("inpaint", video, "--mask", mask, "-o", out, "--method", "dip-vid-flow", "--flow-estimator", "farneback", *TINY_RUN)
    )
    assert json.loads((tmp_path / "flow.provenance.json").read_text())["method_details"]["flow_estimator"] == "farneback"
    refused = invoke("inpaint", video, "--mask", mask, "-o", tmp_path / "x.mkv", "--gan-weight", "1", *TINY_RUN)
    assert refused.exit_code == 2 and _mentions(refused, "gan_weight: an lgtsm setting, not iivi's")
    refused = invoke(
        "inpaint", video, "--mask", mask, "-o", tmp_path / "x.mkv", "--method", "dip-vid-flow", "--flow-estimator", "raft", *TINY_RUN
    )
    assert refused.exit_code == 2 and _mentions(refused, "unknown estimator 'raft'; choose one of dis, farneback")
    assert not (tmp_path / "x.mkv").exists()


def test_submit_refuses_an_unknown_flow_estimator_before_reading_anything(tmp_path: Path) -> None:
    result = invoke("submit", tmp_path / "missing.parquet", "-o", tmp_path / "out", "--flow-estimator", "raft")
    assert result.exit_code == 2 and _mentions(result, "unknown estimator 'raft'; choose one of dis, farneback")
    assert not (tmp_path / "out").exists()


def test_unknown_method_is_refused(shot, tmp_path: Path) -> None:
    video, mask, _, _ = shot
    result = invoke("inpaint", video, "--mask", mask, "-o", tmp_path / "x.mkv", "--method", "deepfill", *TINY_RUN)
    assert result.exit_code != 0
    assert _mentions(result, "unknown method 'deepfill'; choose one of iivi, dip-vid-flow, lgtsm")
    # IIVI's regularizers are not another method's settings.
    result = invoke(
        "inpaint", video, "--mask", mask, "-o", tmp_path / "x.mkv", "--method", "lgtsm", "--contextual", "0.1", *TINY_RUN
    )
    assert result.exit_code != 0 and _mentions(result, "IIVI settings, not lgtsm's")
    assert not (tmp_path / "x.mkv").exists()
