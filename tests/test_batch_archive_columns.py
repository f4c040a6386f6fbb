"""Manifest columns for archive work (boxes, feather, handles, output_format) and the run report's
rows and links; and a real local batch run (`archive-inpaint submit`) whose shots use them.

``archive_batch_run`` is shared with test_qc_report.py, which screenshots the report that run wrote:
one Ray run serves both modules in a session."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from batch_fixtures import invoke, mask_image, mask_video, text, tiny_shot
from engine_fixtures import moving_texture

from archive_inpaint.batch.manifest import ValidationReport, validate_table
from archive_inpaint.batch.results import FAILED, SUCCEEDED, ShotResult, read_results
from archive_inpaint.batch.run_report import report_rows, write_run_report
from archive_inpaint.inference.feather import blend_region
from archive_inpaint.media import read_frames, write_frames
from archive_inpaint.media.probe import probe_source


def _validate(rows: list[dict], tmp_path) -> ValidationReport:
    report = ValidationReport("m.parquet")
    validate_table(pa.Table.from_pylist(rows), report, check_uris=False, base=str(tmp_path))
    return report


def test_boxes_alone_are_a_mask_and_bad_archive_columns_are_named(tmp_path):
    good = {"shot_id": "dash", "video_uri": "d.mkv", "mask_uri": None, "boxes": "10,10,80,20;0,0,4,4",
            "feather": 2, "handles": 12, "output_format": "prores-422hq"}
    report = _validate([good], tmp_path)
    assert report.ok, report.problems
    [shot] = report.shots
    assert (shot.mask_uri, shot.boxes, shot.feather, shot.handles, shot.output_format) == (
        None, "10,10,80,20;0,0,4,4", 2, 12, "prores-422hq")
    bad = [
        {**good, "shot_id": "a", "boxes": "10,10,80"},
        {**good, "shot_id": "b", "boxes": None},
        {**good, "shot_id": "c", "feather": -1, "handles": -2},
        {**good, "shot_id": "d", "output_format": "mpeg2"},
    ]
    problems = "\n".join(_validate(bad, tmp_path).problems)
    assert "row 0 (shot_id 'a'): boxes:" in problems and "'10,10,80'" in problems
    assert "row 1 (shot_id 'b'): mask_uri is empty" in problems
    assert "feather must be >= 0, got -1" in problems and "handles must be >= 0, got -2" in problems
    assert "unknown output_format 'mpeg2'" in problems


def test_report_rows_link_relative_to_the_output_folder(tmp_path):
    out = str(tmp_path / "run")
    results = [
        ShotResult("a", SUCCEEDED, f"{out}/a", frames=10, width=64, height=48, iterations=5,
                   train_seconds=3.0, total_seconds=4.5),
        ShotResult("b", FAILED, f"{out}/b", error="shot 'b': MediaError: mask has 3 frames"),
        ShotResult("c", SUCCEEDED, "s3://elsewhere/c"),
    ]
    rows = report_rows(results, out)
    assert rows[0].thumbnail == "a/a.thumb.png"
    assert ("difference", "a/a.diff.png") in rows[0].links and ("provenance", "a/provenance.json") in rows[0].links
    assert rows[1].thumbnail is None and rows[1].links == [("folder", "b/")]
    assert rows[2].thumbnail == "s3://elsewhere/c/c.thumb.png"
    uri = write_run_report(results, out, "run")
    html = (tmp_path / "run" / "report.html").read_text()
    assert uri.endswith("report.html") and html.count("<tr") >= 3 and "mask has 3 frames" in html


# ---------------------------------------------------------------- a real batch run using the columns

DASH_T, DASH_H, DASH_W = 10, 24, 32
DASH_BOX = (20, 2, 10, 4)  # x, y, w, h: a burnt-in timestamp, the shot's only mask (no mask_uri)
DASH_FEATHER = 1
DASH_START, DASH_END, DASH_HANDLES = 3, 6, 2  # frames [1, 8) of 10 delivered
GREEN = (0, 255, 0)
_RUN: dict = {}


def archive_batch_run(factory: pytest.TempPathFactory) -> dict:
    """One `archive-inpaint submit` of three shots on an embedded local Ray cluster, done once per
    session: 'dash' (boxes alone as its mask, feather, start/end_frame with handles, PNG output),
    'plain' (a mask video, ProRes 422 HQ output) and 'broken' (a mask of the wrong size: fails)."""
    if _RUN:
        return _RUN
    folder = factory.mktemp("archive_batch")
    frames = moving_texture(DASH_T, DASH_H, DASH_W, seed=4)
    x, y, w, h = DASH_BOX
    box = np.zeros((DASH_H, DASH_W), bool)
    box[y : y + h, x : x + w] = True
    frames[:, box] = GREEN
    dash = write_frames(frames, Fraction(24), folder / "dash.mkv")
    plain, plain_holes = tiny_shot(folder, "plain", seed=1)
    plain_mask = mask_video(folder / "plain_mask.mkv", plain_holes)
    bad_mask = mask_image(folder / "bad_mask.png", 12, 16)
    manifest = folder / "archive.parquet"
    pq.write_table(
        pa.table(
            {
                "shot_id": ["dash", "plain", "broken"],
                "video_uri": [str(dash), str(plain), str(plain)],
                "mask_uri": pa.array([None, str(plain_mask), str(bad_mask)], pa.string()),
                "boxes": pa.array([",".join(map(str, DASH_BOX)), None, None], pa.string()),
                "feather": pa.array([DASH_FEATHER, None, None], pa.int64()),
                "start_frame": pa.array([DASH_START, None, None], pa.int64()),
                "end_frame": pa.array([DASH_END, None, None], pa.int64()),
                "handles": pa.array([DASH_HANDLES, None, None], pa.int64()),
                "output_format": pa.array(["png", "prores-422hq", None], pa.string()),
                # plain runs LGTSM, the others the run's default (IIVI).
                "method": pa.array([None, "lgtsm", None], pa.string()),
            }
        ),
        manifest,
    )
    output = folder / "out"
    result = invoke(
        "submit", manifest, "--output", output, "--num-cpus", "2",
        "--iterations", "3", "--width", "4", "--device", "cpu", "--quiet",
        "--gan-weight", "0.5",  # reaches the LGTSM row only
    )
    _RUN.update(
        folder=folder, output=output, result=result, dash_frames=frames, box=box,
        plain=plain, plain_holes=plain_holes,
    )
    return _RUN


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return archive_batch_run(tmp_path_factory)


def test_submit_applies_boxes_feather_range_handles_and_output_format(batch_run: dict) -> None:
    result, output = batch_run["result"], batch_run["output"]
    out = text(result)
    assert result.exit_code == 1, out  # the broken shot fails alone
    assert "2 succeeded, 0 skipped (already done), 1 failed" in out
    rows = {row.shot_id: row for row in read_results(str(output / "results.parquet"))}
    assert {k: r.status for k, r in rows.items()} == {"dash": SUCCEEDED, "plain": SUCCEEDED, "broken": FAILED}
    assert "16x12" in rows["broken"].error
    # Each row ran its own method, and the run-wide TSMGAN weight reached only the LGTSM row.
    dash_record = json.loads((output / "dash" / "provenance.json").read_text())
    plain_record = json.loads((output / "plain" / "provenance.json").read_text())
    assert dash_record["method"] == "iivi" and "gan_weight" not in dash_record["config"]
    assert plain_record["method"] == "lgtsm" and plain_record["config"]["gan_weight"] == 0.5
    assert plain_record["method_details"]["gan"] is True

    # dash: output_format png -> a PNG sequence folder named after the shot, of the range with its
    # handles: source frames [1, 8).
    first, last = DASH_START - DASH_HANDLES, DASH_END + DASH_HANDLES
    sequence = output / "dash" / "dash"
    assert sequence.is_dir() and probe_source(sequence).codec == "png"
    assert sorted(p.suffix for p in sequence.iterdir()) == [".png"] * (last - first)
    assert rows["dash"].frames == last - first
    restored = read_frames(sequence).frames
    source = batch_run["dash_frames"][first:last]
    assert restored.shape == source.shape
    box = batch_run["box"]
    reach = blend_region(box, DASH_FEATHER)  # the box and its feather band; no dilation
    changed = np.any(restored != source, axis=-1)
    assert np.array_equal(restored[:, ~reach], source[:, ~reach]), "a pixel off box+feather changed"
    for shift in (-1, 1):  # the right source frames, not a neighbouring range
        wrong = batch_run["dash_frames"][first + shift : last + shift]
        assert not np.array_equal(restored[:, ~reach], wrong[:, ~reach])
    assert changed[:, box].mean() > 0.9, "the boxed timestamp was not filled"
    band = reach & ~box
    assert changed[:, band].mean() > 0.5, "no feathered edge around the box"
    provenance = json.loads((output / "dash" / "provenance.json").read_text())
    assert provenance["media"]["range"]["start"] == first and provenance["media"]["range"]["end"] == last
    assert provenance["media"]["mask"]["boxes"] == ",".join(map(str, DASH_BOX))

    # plain: output_format prores-422hq, in the source's own container where ProRes fits (.mkv).
    [video] = [p for p in (output / "plain").iterdir() if p.name.startswith("plain.") and p.suffix in (".mkv", ".mov")]
    info = probe_source(video)
    assert info.codec == "prores" and "HQ" in (info.profile or ""), info
    assert rows["plain"].frames == 5
    decoded = read_frames(video).frames
    assert decoded.dtype == np.uint16  # 10-bit ProRes comes back at 16 bits
    original = read_frames(batch_run["plain"]).frames
    keep = ~batch_run["plain_holes"]
    assert decoded.shape == original.shape
    # Lossy (4:2:2 chroma on per-pixel grain: ~11 levels, as FFmpeg's own ProRes encode of these
    # frames), but the same pictures in the same order: much nearer than the neighbouring frames.
    error = np.abs(decoded / 257.0 - original)
    shifted = np.abs(decoded[1:] / 257.0 - original[:-1])
    assert error[keep].mean() < 16 and error[keep].mean() < 0.6 * shifted[keep[1:]].mean()

    # The report has one row per shot.
    html = (output / "report.html").read_text()
    assert html.count('<tr class="') == 3
    assert all(f">{shot}<" in html for shot in ("dash", "plain", "broken"))
