"""The batch driver: validate the manifest, start Ray, skip shots already done, run one Ray task per
remaining shot, and write the results table.

Shots are Ray Core tasks rather than a Ray Data pipeline: a shot is minutes to hours of training,
so per-shot naming (``shot:<id>`` in the dashboard), per-shot retry and one GPU per task matter
more than streaming throughput. Ray Data only reads the manifest. This also gives each shot its
own unit of failure (a Ray Data map fails whole blocks) and keeps hours-long shots clear of Ray
Data's no-progress timeout (``execution_no_progress_timeout_s``), which only watches Ray Data
operators.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow.fs as pafs
import ray
import torch

from archive_inpaint.batch import storage
from archive_inpaint.batch.options import RunOptions
from archive_inpaint.batch.manifest import (
    ShotSpec,
    ValidationReport,
    manifest_base,
    validate_manifest,
)
from archive_inpaint.batch.groups import GroupWarmStarts
from archive_inpaint.batch.results import (
    FAILED,
    SKIPPED,
    ShotResult,
    default_results_uri,
    write_results,
)
from archive_inpaint.batch.run_report import write_run_report
from archive_inpaint.batch.scheduling import ShotPlan, gpu_fraction, longest_first, plan_shot
from archive_inpaint.batch.shot_size import probe_shot_size
from archive_inpaint.batch.shot_task import (
    SUCCESS_NAME,
    ShotJob,
    fingerprint,
    shot_task,
)
from archive_inpaint.config import preset

log = logging.getLogger(__name__)

# How often the driver wakes to refresh the progress bar when no shot has finished.
_WAIT_SECONDS = 5.0
# Shot headers are read from object storage in parallel: the probing is all network latency.
_PROBE_THREADS = 16
# How long the driver waits for a GPU worker to report its GPU's memory.
_GPU_PROBE_SECONDS = 120.0


class ManifestInvalid(Exception):
    def __init__(self, report: ValidationReport) -> None:
        super().__init__(f"{len(report.problems)} problem(s) in {report.manifest_uri}")
        self.report = report


@dataclass
class RunSummary:
    results_uri: str
    results: list[ShotResult] = field(default_factory=list)
    report_uri: str | None = None

    @property
    def failed(self) -> list[ShotResult]:
        return [row for row in self.results if row.status == FAILED]


# Called once with the number of shots, then once per finished shot.
StartHook = Callable[[int], None]
DoneHook = Callable[[ShotResult], None]


def make_job(spec: ShotSpec, options: RunOptions) -> ShotJob:
    spec = dataclasses.replace(
        spec,
        video_uri=storage.absolute(spec.video_uri),
        mask_uri=None if spec.mask_uri is None else storage.absolute(spec.mask_uri),
        output_uri=None if spec.output_uri is None else storage.absolute(spec.output_uri),
    )
    preset_name = spec.preset or options.preset
    base = preset(preset_name, spec.method or options.method)
    config = base.with_overrides(
        iterations=spec.iterations or options.iterations,
        width=options.width,
        checkpoint_every=options.checkpoint_every,
        vgg_weights=options.vgg_weights,
        # Run-wide method settings reach only the rows whose method has them.
        gan_weight=options.gan_weight if hasattr(base, "gan_weight") else None,
        flow_estimator=options.flow_estimator if hasattr(base, "flow") else None,
    )
    output = spec.output_uri or storage.join(storage.absolute(options.output_uri), spec.shot_id)
    return ShotJob(spec=spec, output_uri=output, config=config, preset=preset_name, device=options.device)


def already_done(job: ShotJob) -> ShotResult | None:
    """The skipped row when ``_SUCCESS.json`` exists and its fingerprint matches the inputs and
    parameters as they are now; None when the shot must be (re)done."""
    marker = storage.read_json(storage.join(job.output_uri, SUCCESS_NAME))
    if marker is None or marker.get("fingerprint") != fingerprint(job)[0]:
        return None
    previous = ShotResult.from_dict(marker.get("result") or {"shot_id": job.spec.shot_id})
    previous.status, previous.error, previous.output_uri = SKIPPED, None, job.output_uri
    previous.shot_id = job.spec.shot_id
    return previous


def read_manifest_rows(uri: str) -> list[dict[str, Any]]:
    """The manifest through Ray Data, with the same fsspec filesystem (and AWS configuration) as
    every other access, instead of pyarrow's own S3 client."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver draws its own shot-level bar
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its execution-plan lines are noise here
    if storage.is_local(uri):
        dataset = ray.data.read_parquet(str(storage.local_path(uri)))
    else:
        fs, path = storage.filesystem(uri)
        dataset = ray.data.read_parquet(path, filesystem=pafs.PyFileSystem(pafs.FSSpecHandler(fs)))
    return dataset.take_all()


def run_batch(
    options: RunOptions, on_start: StartHook | None = None, on_done: DoneHook | None = None
) -> RunSummary:
    report = validate_manifest(options.manifest_uri)
    if not report.ok:
        raise ManifestInvalid(report)
    summary = RunSummary(options.results_uri or default_results_uri(options.output_uri))
    started_here = not ray.is_initialized()
    if started_here:
        # An embedded single-machine cluster; Ray writes its own logs under /tmp/ray.
        ray.init(
            address="local",
            num_cpus=options.num_cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    try:
        # Relative paths in the manifest are relative to the manifest's own folder.
        base = manifest_base(options.manifest_uri)
        shots = [ShotSpec.from_row(row, base) for row in read_manifest_rows(options.manifest_uri)]
        _run_shots(shots, options, summary, on_start, on_done, started_here)
    finally:
        if started_here:
            ray.shutdown()
    write_results(summary.results, summary.results_uri)
    try:
        summary.report_uri = write_run_report(
            summary.results, storage.absolute(options.output_uri), f"archive-inpaint run: {options.manifest_uri}"
        )
    except Exception as error:  # noqa: BLE001  the results table is written; the report is a view of it
        log.warning("run report not written: %s", error)
    return summary


def _run_shots(
    shots: list[ShotSpec],
    options: RunOptions,
    summary: RunSummary,
    on_start: StartHook | None,
    on_done: DoneHook | None,
    started_here: bool,
) -> None:
    use_gpus = _use_gpus(options, started_here)
    if on_start is not None:
        on_start(len(shots))

    def finish(row: ShotResult) -> None:
        summary.results.append(row)
        if on_done is not None:
            on_done(row)

    todo: list[ShotJob] = []
    warm_starts = GroupWarmStarts()
    for spec in shots:
        job = make_job(spec, options)
        try:
            done = already_done(job)
        except Exception as error:  # noqa: BLE001  an input vanished since validation, say so
            finish(_failed(job, error, 0.0))
            continue
        if done is not None:
            finish(done)
            warm_starts.note_done(job)
        else:
            todo.append(job)
    plans = _plan(todo)
    gpu_memory = _gpu_memory_bytes(options) if use_gpus else None
    pending: dict[ray.ObjectRef, ShotJob] = {}
    # Longest first: the last shot to start should be a short one (fewer stragglers). A group's
    # first shot in this order is its longest: it trains from scratch and the others wait for it.
    for index in longest_first([plan.cost for plan in plans]):
        job, plan = todo[index], plans[index]
        share = gpu_fraction(plan.gpu_bytes, gpu_memory) if use_gpus else 0.0
        job = dataclasses.replace(job, gpu_fraction=share, estimated_gpu_bytes=plan.gpu_bytes)
        job, warm_start = warm_starts.assign(job)
        resources: dict[str, float] = {"num_gpus": share} if use_gpus else {"num_cpus": 1}
        ref = shot_task.options(
            name=f"shot:{job.spec.shot_id}", max_retries=options.max_retries, **resources
        ).remote(job, warm_start)
        warm_starts.scheduled_as(job, ref)
        pending[ref] = job
    began = time.perf_counter()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=_WAIT_SECONDS)
        for ref in ready:
            job = pending.pop(ref)
            try:
                finish(ray.get(ref))
            except Exception as error:  # noqa: BLE001  retries exhausted (worker lost...): a failed row
                cause = getattr(error, "cause", None) or error
                finish(_failed(job, cause, time.perf_counter() - began))


def _use_gpus(options: RunOptions, started_here: bool) -> bool:
    """Whether shots request GPUs. An attached cluster without GPUs yet may be about to get them
    (a GPU worker group autoscaling from zero): with ``--device cuda`` the requests are made and
    the autoscaler answers them. The embedded cluster has what this machine has."""
    if options.device == "cpu":
        return False
    gpus = ray.cluster_resources().get("GPU", 0)
    if options.device.startswith("cuda") and not gpus:
        if started_here:
            raise ValueError("--device cuda was requested but the Ray cluster has no GPU")
        log.warning("no GPU in the Ray cluster yet: the shots wait for the autoscaler to add GPU nodes")
        return True
    return bool(gpus)


def _plan(jobs: list[ShotJob]) -> list[ShotPlan]:
    """Each shot's cost and memory estimate, from its headers read in parallel."""

    def size(job: ShotJob):  # type: ignore[no-untyped-def]
        return probe_shot_size(job.spec.video_uri, job.spec.start_frame, job.spec.end_frame)

    with ThreadPoolExecutor(max_workers=_PROBE_THREADS) as pool:
        sizes = list(pool.map(size, jobs))
    return [plan_shot(shot_size, job.config) for shot_size, job in zip(sizes, jobs)]


def _gpu_memory_bytes(options: RunOptions) -> int | None:
    """One GPU's memory: the run's setting, else asked of a GPU worker if one is up now; None
    (a whole GPU per shot) when neither says."""
    if options.gpu_memory_gib is not None:
        return int(options.gpu_memory_gib * (1 << 30))
    if not ray.cluster_resources().get("GPU", 0):
        return None
    ref = _device_memory.remote()
    ready, _ = ray.wait([ref], timeout=_GPU_PROBE_SECONDS)
    if not ready:
        ray.cancel(ref, force=True)
        return None
    try:
        return ray.get(ref)
    except Exception as error:  # noqa: BLE001  a whole GPU per shot is always safe
        log.warning("could not read the GPUs' memory: %s", error)
        return None


@ray.remote(num_gpus=1, max_retries=0)
def _device_memory() -> int | None:
    # Logical GPUs (a test cluster, or a node started with --num-gpus and no CUDA) have none.
    return torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None


def _failed(job: ShotJob, error: BaseException, seconds: float) -> ShotResult:
    return ShotResult(
        shot_id=job.spec.shot_id,
        status=FAILED,
        output_uri=job.output_uri,
        error=f"shot {job.spec.shot_id!r}: {type(error).__name__}: {error}",
        total_seconds=seconds,
    )
