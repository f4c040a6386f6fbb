"""`archive-inpaint manifest validate|init`: every problem reported at once; pairing by stem."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import s3fs
from batch_fixtures import (  # noqa: F401  (fixtures are used by name)
    BUCKET,
    bucket,
    invoke,
    mask_image,
    s3_endpoint,
    text,
    tiny_shot,
)

from archive_inpaint.batch.manifest import validate_manifest

def test_validate_reports_every_bad_row_at_once(
    tmp_path: Path, bucket: s3fs.S3FileSystem  # noqa: F811  (fixture)
) -> None:
    video, _ = tiny_shot(tmp_path, "a")
    mask = mask_image(tmp_path / "a.png")
    good = {"video_uri": str(video), "mask_uri": str(mask)}
    rows = [
        {"shot_id": "ok", **good},
        {"shot_id": "ok", **good},  # duplicate id
        {"shot_id": None, **good},  # null required value
        {"shot_id": "preset", **good, "preset": "ultra"},
        {"shot_id": "range", **good, "start_frame": 4, "end_frame": 2},
        {"shot_id": "single", **good, "mask_mode": "one-frame"},
        {"shot_id": "missing", "video_uri": str(tmp_path / "nope.mkv"), "mask_uri": str(mask)},
        {"shot_id": "s3", "video_uri": str(video), "mask_uri": f"s3://{BUCKET}/masks/none.png"},
        {"shot_id": "steps", **good, "iterations": 0, "dilate": -1},
        {"shot_id": "a/b", **good},
        {"shot_id": "annotated", **good, "mask_mode": "single-frame", "end_frame": 3, "mask_frame": 3},
        {"shot_id": "method", **good, "method": "deepfill"},
        {"shot_id": "lgtsm", **good, "method": "lgtsm"},
    ]
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("shot_id", pa.string()),
                ("video_uri", pa.string()),
                ("mask_uri", pa.string()),
                ("preset", pa.string()),
                ("method", pa.string()),
                ("start_frame", pa.int64()),
                ("end_frame", pa.int64()),
                ("mask_mode", pa.string()),
                ("mask_frame", pa.int64()),
                ("iterations", pa.int32()),
                ("dilate", pa.int64()),
            ]
        ),
    )
    # A wrong column type is reported alongside the row problems.
    table = table.append_column("output_uri", pa.array([1] * len(rows), pa.int64()))
    manifest = tmp_path / "bad.parquet"
    pq.write_table(table, manifest)

    result = invoke("manifest", "validate", manifest)
    out = text(result)
    assert result.exit_code == 1, out
    for expected in (
        "column 'output_uri' must be string",
        "row 1 (shot_id 'ok'): duplicate shot_id (first at row 0)",
        "row 2: shot_id is empty",
        "row 3 (shot_id 'preset'): unknown preset 'ultra'",
        "row 4 (shot_id 'range'): end_frame (2) must be greater than start_frame (4)",
        "row 5 (shot_id 'single'): unknown mask_mode 'one-frame' (choose one of per-frame, single-frame)",
        "row 10 (shot_id 'annotated'): mask_frame (3) is outside the range's 3 frames",
        f"row 6 (shot_id 'missing'): video_uri not found: {tmp_path / 'nope.mkv'}",
        f"row 7 (shot_id 's3'): mask_uri not found: s3://{BUCKET}/masks/none.png",
        "row 8 (shot_id 'steps'): iterations must be > 0, got 0",
        "row 8 (shot_id 'steps'): dilate must be >= 0, got -1",
        "row 9 (shot_id 'a/b'): shot_id must not contain '/'",
        "row 11 (shot_id 'method'): unknown method 'deepfill' (choose one of iivi, dip-vid-flow, lgtsm)",
    ):
        assert expected in out, expected
    assert "row 0 " not in out
    assert "row 12 " not in out  # a known method is fine


def test_validate_missing_columns_and_ok(tmp_path: Path) -> None:
    manifest = tmp_path / "m.parquet"
    pq.write_table(pa.table({"shot_id": ["a"], "video": ["x"]}), manifest)
    report = validate_manifest(str(manifest))
    assert "missing required column 'video_uri' (string)" in report.problems
    assert "missing required column 'mask_uri' (string)" in report.problems

    video, _ = tiny_shot(tmp_path, "a")
    mask = mask_image(tmp_path / "a.png")
    pq.write_table(
        pa.table({"shot_id": ["a", "b"], "video_uri": [str(video)] * 2, "mask_uri": [str(mask)] * 2}),
        manifest,
    )
    result = invoke("manifest", "validate", manifest)
    assert result.exit_code == 0, result.output
    assert f"OK: 2 shot(s) in {manifest}" in text(result)


def test_init_pairs_by_stem(tmp_path: Path) -> None:
    videos, masks = tmp_path / "videos", tmp_path / "masks"
    videos.mkdir()
    masks.mkdir()
    for name in ("a", "b", "c"):
        tiny_shot(videos, name)
    mask_image(masks / "a.png")
    (masks / "b").mkdir()  # a folder of per-frame masks named like the video's stem
    mask_image(masks / "b" / "mask_0000.png")
    manifest = tmp_path / "m.parquet"

    result = invoke("manifest", "init", videos, masks, "-o", manifest)
    out = text(result)
    assert result.exit_code == 0, out
    assert f"no mask for {videos / 'c.mkv'}" in out
    assert "2 shot(s), 1 unpaired video(s)" in out
    rows = pq.read_table(manifest).to_pylist()
    assert rows == [
        {"shot_id": "a", "video_uri": str(videos / "a.mkv"), "mask_uri": str(masks / "a.png")},
        {"shot_id": "b", "video_uri": str(videos / "b.mkv"), "mask_uri": str(masks / "b")},
    ]
    assert validate_manifest(str(manifest)).ok
