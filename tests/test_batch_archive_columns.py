"""Manifest columns for archive work (boxes, feather, handles, output_format) and the run report's
rows and links."""

from __future__ import annotations

import pyarrow as pa

from archive_inpaint.batch.manifest import ValidationReport, validate_table
from archive_inpaint.batch.results import FAILED, SUCCEEDED, ShotResult
from archive_inpaint.batch.run_report import report_rows, write_run_report


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
