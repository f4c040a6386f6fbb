"""The batch layer's Ray custom metrics reach Prometheus: a real local Ray cluster with its metrics
agent (``ray[default]``) on a known export port, a 2-shot batch (one good, one failing), then the
agent's ``/metrics`` endpoint is scraped until the series appear (Ray flushes every few seconds)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
import requests
from batch_fixtures import mask_image, mask_video, tiny_shot

from archive_inpaint.batch.runner import RunOptions, run_batch

ITERATIONS = 30  # the loss gauge is set at steps 25 and 30
_LINE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def metrics_port() -> Iterator[int]:
    """A local cluster whose metrics agent exports on a known port. The agent is part of Ray's
    dashboard agent, which raylet starts with ray[default] installed, dashboard or not."""
    pytest.importorskip("opentelemetry.exporter.prometheus", reason="needs ray[default]")
    port = free_port()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _metrics_export_port=port,
        logging_level="WARNING",
    )
    try:
        yield port
    finally:
        ray.shutdown()


def scrape(port: int) -> list[tuple[str, dict[str, str], float]]:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.RequestException:
        return []
    samples = []
    for line in text.splitlines():
        if line.startswith("#") or not (match := _LINE.match(line)):
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        samples.append((match["name"], labels, float(match["value"])))
    return samples


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float | None:
    """The sum over every series of ``name`` (one per worker) carrying ``labels``; None if none."""
    values = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in labels.items())]
    return sum(values) if values else None


def test_shot_metrics_are_exported_for_prometheus(tmp_path: Path, metrics_port: int) -> None:
    video, holes = tiny_shot(tmp_path, "m")
    bad, _ = tiny_shot(tmp_path, "bad", seed=1)
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(
        pa.table(
            {
                "shot_id": ["m", "bad"],
                "video_uri": [str(video), str(bad)],
                # bad's mask is 16x12 for a 32x24 shot: that shot fails.
                "mask_uri": [
                    str(mask_video(tmp_path / "m_mask.mkv", holes)),
                    str(mask_image(tmp_path / "bad.png", 12, 16)),
                ],
            }
        ),
        manifest,
    )
    summary = run_batch(
        RunOptions(str(manifest), str(tmp_path / "out"), iterations=ITERATIONS, width=4, device="cpu")
    )
    assert {r.shot_id: r.status for r in summary.results} == {"m": "succeeded", "bad": "failed"}

    # Ray adds the ray_ prefix, and _total to counters. Each worker flushes its own series every
    # few seconds, so wait until every expected series is there (or the deadline passes).
    expected = {
        "ray_archive_inpaint_shots_succeeded_total": {},
        "ray_archive_inpaint_shots_failed_total": {},
        "ray_archive_inpaint_shots_started_total": {},
        "ray_archive_inpaint_shot_loss": {"shot_id": "m"},
        "ray_archive_inpaint_shot_progress": {"shot_id": "m"},
        "ray_archive_inpaint_training_iterations_total": {"shot_id": "m"},
        "ray_archive_inpaint_shot_seconds_count": {},
    }
    deadline = time.monotonic() + 45
    while True:
        samples = scrape(metrics_port)
        missing = [name for name, labels in expected.items() if total(samples, name, **labels) is None]
        if (total(samples, "ray_archive_inpaint_shot_seconds_count") or 0) < 2:
            missing.append("a second ray_archive_inpaint_shot_seconds observation")
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    names = sorted({n for n, _, _ in samples if "archive_inpaint" in n})
    assert not missing, f"missing on /metrics: {missing}; archive series there: {names}"

    assert total(samples, "ray_archive_inpaint_shots_succeeded_total") >= 1
    assert total(samples, "ray_archive_inpaint_shots_failed_total") >= 1
    assert total(samples, "ray_archive_inpaint_shots_started_total") >= 2  # both shots began
    assert total(samples, "ray_archive_inpaint_shot_progress", shot_id="m") == 1.0  # trained to the end
    # The gauge and the iteration counter are per shot; the failed shot never trained.
    assert total(samples, "ray_archive_inpaint_shot_loss", shot_id="m") > 0
    assert total(samples, "ray_archive_inpaint_training_iterations_total", shot_id="m") == ITERATIONS
    assert total(samples, "ray_archive_inpaint_shot_loss", shot_id="bad") is None
    assert total(samples, "ray_archive_inpaint_shot_seconds_count") >= 2
    assert total(samples, "ray_archive_inpaint_shot_seconds_bucket", le="+Inf") >= 2
