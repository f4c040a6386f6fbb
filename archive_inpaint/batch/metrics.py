"""Ray custom metrics of batch runs (``ray.util.metrics``), exported to Prometheus by Ray's metrics
agent where it runs (``ray[default]``; scrape ``http://<node>:<metrics_export_port>/metrics``).

Ray prefixes every name with ``ray_`` and gives counters a ``_total`` suffix, so the series are
``ray_archive_inpaint_shots_succeeded_total``, ``ray_archive_inpaint_shot_loss{shot_id=...}``...
Which shots are running or queued is Ray's own ``ray_tasks{Name="shot:<id>",State=...}``; GPU use is
Ray's ``ray_node_gpus_utilization`` and ``ray_node_gram_used``. cluster/grafana/ charts them all.

The metric objects are created lazily, in the worker process, on first use: they need a connected
Ray worker, and a worker that runs many shots (CPU tasks reuse workers) creates them once.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

PREFIX = "archive_inpaint_"
SHOTS_SUCCEEDED = PREFIX + "shots_succeeded"
SHOTS_FAILED = PREFIX + "shots_failed"
SHOTS_STARTED = PREFIX + "shots_started"
TRAINING_ITERATIONS = PREFIX + "training_iterations"
SHOT_LOSS = PREFIX + "shot_loss"
SHOT_SECONDS = PREFIX + "shot_seconds"
SHOT_PROGRESS = PREFIX + "shot_progress"
SHOT_GPU_MEMORY = PREFIX + "shot_gpu_memory_bytes"
# Wall seconds per shot: seconds (tiny tests) to half a day (quality preset on a slow GPU).
SECONDS_BOUNDARIES = [10, 60, 300, 1800, 3600, 14400, 43200]
# The loss gauge is a per-shot time series; updating it every step would cost more than it tells.
EVERY_STEPS = 25


class ShotMetrics:
    """The batch layer's metrics. ``shot_id`` tags the per-shot series (iterations, loss); the
    shot counters and the duration histogram are run-wide aggregates."""

    def __init__(self) -> None:
        from ray.util.metrics import Counter, Gauge, Histogram

        self.succeeded = Counter(SHOTS_SUCCEEDED, description="Shots inpainted and committed.")
        self.failed = Counter(SHOTS_FAILED, description="Shots that failed (their own error).")
        self.started = Counter(
            SHOTS_STARTED, description="Shot attempts begun (a retry after a lost worker counts again)."
        )
        self.iterations = Counter(
            TRAINING_ITERATIONS,
            description="Training steps run (a resumed shot counts only the steps it ran again).",
            tag_keys=("shot_id",),
        )
        self.loss = Gauge(
            SHOT_LOSS, description="Latest training loss of the shot.", tag_keys=("shot_id",)
        )
        self.progress = Gauge(
            SHOT_PROGRESS,
            description="Share of the shot's training steps done (0 to 1).",
            tag_keys=("shot_id",),
        )
        self.gpu_memory = Gauge(
            SHOT_GPU_MEMORY,
            description="Peak GPU memory allocated by the shot (CUDA shots).",
            tag_keys=("shot_id",),
        )
        self.seconds = Histogram(
            SHOT_SECONDS,
            description="Wall seconds per shot attempt (fetch, train, fill, upload).",
            boundaries=SECONDS_BOUNDARIES,
        )


_lock = threading.Lock()
_instance: ShotMetrics | None = None
_unavailable = False


def get() -> ShotMetrics | None:
    """The process's metrics, created on first call; None (logged once) where they cannot be made,
    e.g. outside a Ray worker. Metrics are best effort: a shot never fails for them."""
    global _instance, _unavailable
    with _lock:
        if _instance is None and not _unavailable:
            try:
                _instance = ShotMetrics()
            except Exception as error:  # noqa: BLE001
                _unavailable = True
                log.warning("Ray metrics unavailable: %s", error)
        return _instance
