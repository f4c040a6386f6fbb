"""`archive-inpaint submit` end to end on a real local Ray cluster against a real S3 API (moto's
server on 127.0.0.1): a bad shot fails alone, outputs are committed, a rerun skips done shots."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from batch_fixtures import (  # noqa: F401  (fixtures are used by name)
    ACCESS_KEY,
    BUCKET,
    SECRET_KEY,
    TINY,
    bucket,
    invoke,
    mask_folder,
    mask_image,
    mask_video,
    ray_cluster,
    s3_endpoint,
    text,
    tiny_shot,
)

from archive_inpaint.media import read_frames

pytestmark = pytest.mark.usefixtures("ray_cluster")
def statuses(fs: s3fs.S3FileSystem, uri: str) -> dict[str, dict]:
    with fs.open(uri, "rb") as stream:
        return {row["shot_id"]: row for row in pq.read_table(stream).to_pylist()}


def test_submit_to_s3_fails_one_shot_alone_then_skips_done_shots(
    tmp_path: Path, bucket: s3fs.S3FileSystem  # noqa: F811  (fixture)
) -> None:
    base = f"{BUCKET}/in"
    holes = {}
    for name, seed in (("a", 0), ("b", 1), ("c", 2)):
        video, holes[name] = tiny_shot(tmp_path, name, seed=seed)
        bucket.put_file(str(video), f"{base}/{name}.mkv")
    bucket.put_file(str(mask_video(tmp_path / "a_mask.mkv", holes["a"])), f"{base}/a_mask.mkv")
    bucket.put(str(mask_folder(tmp_path / "b_masks", holes["b"])), f"{base}/b_masks", recursive=True)
    # Shot c's mask is 16x12 for a 32x24 shot: a media error of that shot only.
    bucket.put_file(str(mask_image(tmp_path / "c_bad.png", 12, 16)), f"{base}/c_mask.png")
    manifest = pa.table(
        {
            "shot_id": ["a", "b", "c"],
            "video_uri": [f"s3://{base}/{n}.mkv" for n in "abc"],
            "mask_uri": [f"s3://{base}/a_mask.mkv", f"s3://{base}/b_masks", f"s3://{base}/c_mask.png"],
            "dilate": pa.array([0, 1, None], pa.int64()),
        }
    )
    local_manifest = tmp_path / "manifest.parquet"
    pq.write_table(manifest, local_manifest)
    bucket.put_file(str(local_manifest), f"{BUCKET}/manifest.parquet")
    output = f"s3://{BUCKET}/out"

    first = invoke("submit", f"s3://{BUCKET}/manifest.parquet", "--output", output, *TINY)
    out = text(first)
    assert first.exit_code == 1, out
    assert "2 succeeded, 0 skipped (already done), 1 failed" in out
    rows = statuses(bucket, f"{BUCKET}/out/results.parquet")
    assert {k: r["status"] for k, r in rows.items()} == {"a": "succeeded", "b": "succeeded", "c": "failed"}
    assert rows["c"]["error"].startswith("shot 'c': MediaError: ")
    assert f"s3://{base}/c_mask.png" in rows["c"]["error"] and "16x12" in rows["c"]["error"]
    assert rows["a"]["frames"] == 5 and (rows["a"]["width"], rows["a"]["height"]) == (32, 24)
    assert rows["a"]["iterations"] == 3 and rows["a"]["output_uri"] == f"{output}/a"

    for name in ("a", "b"):
        folder = f"{BUCKET}/out/{name}"
        names = {p.rsplit("/", 1)[-1] for p in bucket.ls(folder)}
        assert {f"{name}.mkv", f"{name}.contact.png", "provenance.json", "_SUCCESS.json", "checkpoints"} <= names
        assert any(p.endswith(".pt") for p in bucket.ls(f"{folder}/checkpoints"))
        provenance = json.loads(bucket.cat_file(f"{folder}/provenance.json"))
        assert provenance["inputs"]["video"]["uri"] == f"s3://{base}/{name}.mkv"
        assert provenance["inputs"]["video"]["size"] > 0
        assert provenance["parameters"]["config"]["model"]["width"] == 4
        assert provenance["versions"]["torch"] and provenance["device"]["type"] == "cpu"
        # Content hashes name the manifest's URIs, not the worker's scratch copies.
        digests = provenance["media"]["input_digests"]
        assert digests["video"]["path"] == f"s3://{base}/{name}.mkv"
        assert digests["video"]["sha256"] == hashlib.sha256((tmp_path / f"{name}.mkv").read_bytes()).hexdigest()
        assert provenance["media"]["source"]["path"] == f"s3://{base}/{name}.mkv"
        assert provenance["media"]["output"]["path"] == f"{output}/{name}/{name}.mkv"
        success = json.loads(bucket.cat_file(f"{folder}/_SUCCESS.json"))
        assert len(success["fingerprint"]) == 64 and success["inputs"]["mask"]["version"]
        # The lossless output keeps every unmasked pixel of the input.
        bucket.get_file(f"{folder}/{name}.mkv", str(tmp_path / f"out_{name}.mkv"))
        result = read_frames(tmp_path / f"out_{name}.mkv").frames
        source = read_frames(tmp_path / f"{name}.mkv").frames
        keep = ~holes[name]
        if name == "b":  # dilated by 1 px in the manifest
            keep[:, 7:15, :] = False
        assert result.shape == source.shape and np.array_equal(result[keep], source[keep])
    assert not bucket.exists(f"{BUCKET}/out/c/_SUCCESS.json")

    status = invoke("status", output, "--manifest", local_manifest)
    assert status.exit_code == 1
    assert "done: 2 failed: 1 c: shot 'c': MediaError" in text(status)
    assert "remaining: 0 of 3" in text(status)

    # Fix c's mask and rerun: a and b are skipped untouched, only c is redone.
    marker_a = bucket.info(f"{BUCKET}/out/a/_SUCCESS.json")["ETag"]
    bucket.put_file(str(mask_image(tmp_path / "c_good.png")), f"{base}/c_mask.png")
    results = f"s3://{BUCKET}/reports/second.parquet"
    second = invoke("submit", f"s3://{BUCKET}/manifest.parquet", "--output", output, "--results", results, *TINY)
    assert second.exit_code == 0, text(second)
    rows = statuses(bucket, results[len("s3://") :])
    assert {k: r["status"] for k, r in rows.items()} == {"a": "skipped", "b": "skipped", "c": "succeeded"}
    assert rows["a"]["frames"] == 5 and rows["a"]["error"] is None
    assert bucket.info(f"{BUCKET}/out/a/_SUCCESS.json")["ETag"] == marker_a
    assert bucket.exists(f"{BUCKET}/out/c/_SUCCESS.json")

    # No credential ends up in anything the run wrote.
    for path in bucket.find(f"{BUCKET}/out") + bucket.find(f"{BUCKET}/reports"):
        data = bucket.cat_file(path)
        assert SECRET_KEY.encode() not in data and ACCESS_KEY.encode() not in data, path


def test_submit_refuses_an_invalid_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "m.parquet"
    pq.write_table(
        pa.table({"shot_id": ["x"], "video_uri": [str(tmp_path / "x.mkv")], "mask_uri": ["m.png"]}),
        manifest,
    )
    result = invoke("submit", manifest, "--output", tmp_path / "out", *TINY)
    out = text(result)
    assert result.exit_code == 2, out
    assert "video_uri not found" in out and "nothing was started" in out
    assert not (tmp_path / "out").exists()


def test_shot_task_resumes_from_the_checkpoint_in_the_store(
    tmp_path: Path, bucket: s3fs.S3FileSystem  # noqa: F811  (fixture)
) -> None:
    """A task starting on a fresh machine (fresh scratch) continues from the checkpoint that an
    earlier attempt uploaded, instead of training from zero. Run in-process: it is the task body."""
    from archive_inpaint.batch.manifest import ShotSpec
    from archive_inpaint.batch.runner import RunOptions, make_job
    from archive_inpaint.batch.shot_task import run_shot

    video, holes = tiny_shot(tmp_path, "r")
    bucket.put_file(str(video), f"{BUCKET}/in/r.mkv")
    bucket.put_file(str(mask_video(tmp_path / "r_mask.mkv", holes)), f"{BUCKET}/in/r_mask.mkv")
    spec = ShotSpec("r", f"s3://{BUCKET}/in/r.mkv", f"s3://{BUCKET}/in/r_mask.mkv")
    output = f"s3://{BUCKET}/out"
    options = RunOptions("unused", output, iterations=3, width=4, device="cpu")

    first = run_shot(make_job(spec, options))
    assert first.status == "succeeded", first.error
    longer = run_shot(make_job(spec, RunOptions("unused", output, iterations=5, width=4, device="cpu")))
    assert longer.status == "succeeded" and longer.iterations == 5, longer.error
    provenance = json.loads(bucket.cat_file(f"{BUCKET}/out/r/provenance.json"))
    assert provenance["resumed_from"] == 3
    # Which method ran, and what it used that the parameters do not say (no contextual loss here).
    assert provenance["method"] == "iivi"
    assert provenance["method_details"] == {"contextual_encoder": None}
    # The store mirrors the trainer's pruning (keep 2): steps 3 and 5.
    names = sorted(p.rsplit("_", 1)[-1] for p in bucket.ls(f"{BUCKET}/out/r/checkpoints"))
    assert names == ["00000003.pt", "00000005.pt"]
