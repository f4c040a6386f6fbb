"""`archive-inpaint inpaint` with the mask and delivery controls users reach only through the CLI:
``--box``, ``--dilate``, ``--feather``, ``--start``/``--end`` with ``--handles``, and ``--format``.

One engine run covers them all: each flag changes a region (or the frames) that no other flag can,
so the assertions below fail if any one of them stops reaching the engine. The output is a lossless
TIFF sequence, so "untouched" means bit-exact.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from archive_inpaint.inference.feather import blend_region
from archive_inpaint.media import read_frames, write_frames
from archive_inpaint.media.masks import dilate_holes
from archive_inpaint.media.probe import probe_source
from archive_inpaint.pipeline import contact_sheet_path
from batch_fixtures import invoke, text
from engine_fixtures import moving_texture, single_thread, write_gray_video  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")

FPS = Fraction(25)
T, H, W = 12, 32, 48
TINY_RUN = ["--iterations", "5", "--width", "4", "--preset", "fast", "--quiet", "--device", "cpu"]
# The logo box (x, y, w, h) and the mask's hole: far enough apart that each has its own rings.
BOX = (32, 3, 10, 5)
DILATE, FEATHER = 4, 1  # dilate > feather + 1: the feather alone cannot reach the dilation's far ring
START, END, HANDLES = 4, 8, 2  # frames [2, 10) of 12 delivered
FIRST, LAST = START - HANDLES, END + HANDLES
RED, GREEN = (255, 0, 0), (0, 255, 0)


def _mask_holes() -> np.ndarray:
    """(T, H, W) bool: a 6x8 hole drifting right one px per frame, in the lower left."""
    holes = np.zeros((T, H, W), bool)
    for t in range(T):
        holes[t, 16:22, 4 + t : 12 + t] = True
    return holes


def _box_hole() -> np.ndarray:
    x, y, w, h = BOX
    hole = np.zeros((H, W), bool)
    hole[y : y + h, x : x + w] = True
    return hole


def _distance_to(hole: np.ndarray) -> np.ndarray:
    """Each pixel's Euclidean distance to the nearest pixel of ``hole`` (0 inside it)."""
    return cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One CLI run with every control at once: a red object under the mask video, a green
    'burnt-in logo' under --box, both grown by --dilate and feathered by --feather, frames
    [START, END) plus --handles, written as a TIFF sequence by --format."""
    folder = tmp_path_factory.mktemp("mask_controls")
    frames = moving_texture(T, H, W, seed=11)
    holes = _mask_holes()
    box = _box_hole()
    frames[holes] = RED
    frames[:, box] = GREEN
    video = write_frames(frames, FPS, folder / "shot.mkv")
    mask = write_gray_video(folder / "shot_mask.mkv", holes, FPS)
    output = folder / "restored"  # no suffix: a sequence folder (PNG unless --format says otherwise)
    result = invoke(
        "inpaint", video, "--mask", mask, "-o", output, *TINY_RUN,
        "--box", ",".join(map(str, BOX)), "--dilate", DILATE, "--feather", FEATHER,
        "--start", START, "--end", END, "--handles", HANDLES, "--format", "tiff",
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return {"folder": folder, "frames": frames, "holes": holes, "box": box, "output": output,
            "result": result, "video": video, "mask": mask}


def _delivered(run: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source frames, output frames, given holes = mask | box) over the delivered range."""
    restored = read_frames(run["output"], fps=FPS).frames
    source = run["frames"][FIRST:LAST]
    given = run["holes"][FIRST:LAST] | run["box"]
    return source, restored, given


def test_format_writes_a_tiff_sequence_of_the_range_with_its_handles(run: dict) -> None:
    output: Path = run["output"]
    assert output.is_dir()
    files = sorted(output.iterdir())
    assert [f.suffix for f in files] == [".tiff"] * (LAST - FIRST), [f.name for f in files]
    assert probe_source(output).codec == "tiff"  # not the PNG a suffix-less output gets by default
    assert contact_sheet_path(output).is_file()
    assert str(output) in text(run["result"]) and f"({LAST - FIRST} frames;" in text(run["result"])

    source, restored, given = _delivered(run)
    assert restored.shape == (LAST - FIRST, H, W, 3) and restored.dtype == np.uint8
    # Which source frames: the texture pans, so only frames FIRST..LAST-1 match off the holes.
    far = np.stack([_distance_to(hole) > DILATE + FEATHER + 2 for hole in given])
    assert np.array_equal(restored[far], source[far])
    for shift in (-1, 1):
        wrong = run["frames"][FIRST + shift : LAST + shift]
        assert not np.array_equal(restored[far], wrong[far]), f"frames are off by {shift}"

    record = json.loads((run["folder"] / "restored.provenance.json").read_text())
    media = record["media"]
    assert media["range"] == {"requested_start": START, "requested_end": END, "handles": HANDLES,
                              "start": FIRST, "end": LAST, "frames": LAST - FIRST}
    assert (media["mask"]["boxes"], media["mask"]["dilate"], media["mask"]["feather"]) == (
        ",".join(map(str, BOX)), DILATE, FEATHER)
    assert media["output"]["changed_outside_holes"] > 0  # the feather band


def test_box_dilate_and_feather_decide_exactly_which_pixels_change(run: dict) -> None:
    source, restored, given = _delivered(run)
    changed = np.any(restored != source, axis=-1)
    for index in range(len(given)):
        hole, moved = given[index], changed[index]
        distance = _distance_to(hole)
        dilated = dilate_holes(hole[None], DILATE)[0]
        reach = blend_region(dilated, FEATHER)
        where = f"frame {FIRST + index}"
        # Beyond the dilated hole's feather band, every pixel is the source's, bit for bit.
        assert not moved[~reach].any(), f"{where}: {np.argwhere(moved & ~reach)[:5]} changed"
        # --box: the green logo is filled although the mask video does not cover it.
        assert moved[run["box"]].mean() > 0.9, where
        assert not np.any(np.all(restored[index][run["box"]] == GREEN, axis=-1)), where
        assert moved[run["holes"][FIRST + index]].mean() > 0.9, where
        # --dilate: the far part of the dilation ring (out of the feather's reach from the given
        # hole: d >= FEATHER + 1) is filled outright.
        far_ring = (distance >= FEATHER + 1.5) & (distance <= DILATE)
        assert far_ring.sum() > 20 and moved[far_ring].mean() > 0.7, where
        # --feather: the band just outside the dilated hole blends in.
        band = reach & ~dilated
        assert band.sum() > 20 and moved[band].mean() > 0.5, where


def test_bad_box_format_and_range_are_usage_errors(run: dict, tmp_path: Path) -> None:
    """Refused before any training, naming what is wrong; nothing is written."""
    video, mask, out = run["video"], run["mask"], tmp_path / "o.mkv"
    overhang = invoke("inpaint", video, "--mask", mask, "-o", out, *TINY_RUN, "--box", "40,3,10,5")
    assert overhang.exit_code == 2 and "box 40,3,10,5" in text(overhang)
    assert "past the width 48" in text(overhang)
    typo = invoke("inpaint", video, "--mask", mask, "-o", out, *TINY_RUN, "--box", "1,2,3")
    assert typo.exit_code == 2 and "'1,2,3'" in text(typo)
    wrong_container = invoke("inpaint", video, "--mask", mask, "-o", tmp_path / "o.mov", *TINY_RUN, "--format", "ffv1")
    assert wrong_container.exit_code == 2 and "as ffv1: that needs a .mkv" in text(wrong_container)
    empty = invoke("inpaint", video, "--mask", mask, "-o", out, *TINY_RUN, "--start", "5", "--end", "5")
    assert empty.exit_code == 2 and "--end (5) must be greater than --start (5)" in text(empty)
    assert not list(tmp_path.iterdir())
