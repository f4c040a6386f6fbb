"""The per-shot Ray task: fetch inputs, train with checkpoints kept in the output store, fill,
encode locally, upload, and commit with ``_SUCCESS.json`` written last.

Any error of the shot itself (unreadable media, a mask of the wrong size...) becomes a ``failed``
row naming the shot, so one bad shot never stops the others; Ray's own retries (``max_retries``)
are left for system failures (a dead worker or node), after which the task resumes from the
latest checkpoint found in the output store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch

from archive_inpaint.batch import metrics, storage
from archive_inpaint.batch.manifest import ShotSpec
from archive_inpaint.batch.metrics import ShotMetrics
from archive_inpaint.batch.results import FAILED, SUCCEEDED, ShotResult
from archive_inpaint.config import MethodConfig
from archive_inpaint.media import MediaError
from archive_inpaint.media.boxes import parse_boxes
from archive_inpaint.media.kinds import OutputKind, default_output_kind, output_suffix
from archive_inpaint.media.probe import SourceInfo, probe_source
from archive_inpaint.pipeline import (
    FileOutputs,
    InpaintResult,
    ShotInputs,
    inpaint_files,
    resolve_device,
)
from archive_inpaint.provenance import shot_provenance
from archive_inpaint.training.trainer import StepCallback, save_weights

log = logging.getLogger(__name__)

SUCCESS_NAME = "_SUCCESS.json"
PROVENANCE_NAME = "provenance.json"
CHECKPOINTS_NAME = "checkpoints"
# The trained whole-frame network of a group's first shot: the group's other shots start from it.
WEIGHTS_NAME = "weights.pt"
METRICS_EVERY = metrics.EVERY_STEPS
# Scratch folders are named <prefix><shot>-p<pid>-<random>, so a task can tell the scratch of a
# dead worker (killed mid-shot: its TemporaryDirectory was never cleaned) from a live one's.
SCRATCH_PREFIX = "archive-inpaint-"


@dataclass(frozen=True)
class ShotJob:
    """Everything a worker needs for one shot (pickled to the worker: no open handles)."""

    spec: ShotSpec
    output_uri: str  # the shot's own folder, <output>/<shot_id>
    config: MethodConfig
    preset: str
    device: str
    # What the scheduler gave the shot (recorded in its result; not part of its fingerprint).
    gpu_fraction: float = 0.0
    estimated_gpu_bytes: int | None = None
    # Warm start within a group: the group's first shot saves its weights (save_weights), the
    # others start from that shot's (warm_start_from: its shot id).
    save_weights: bool = False
    warm_start_from: str | None = None

    def output_name(self, source: SourceInfo) -> tuple[str, OutputKind]:
        """The output's file (or sequence folder) name and kind: the manifest's output_format,
        else the input's own kind (a ProRes .mov comes back as a ProRes .mov)."""
        spec = self.spec
        kind = OutputKind(spec.output_format) if spec.output_format else default_output_kind(source)
        return f"{spec.shot_id}{output_suffix(kind, source)}", kind


def fingerprint(job: ShotJob) -> tuple[str, dict[str, Any]]:
    """What the shot's result depends on: each input's URI, size and version (mtime or ETag), and
    every parameter. A matching ``_SUCCESS.json`` fingerprint means the output is still current."""
    spec = job.spec
    document = {
        "inputs": {
            "video": storage.stat(spec.video_uri).to_dict(),
            "mask": None if spec.mask_uri is None else storage.stat(spec.mask_uri).to_dict(),
        },
        "parameters": parameters(job),
    }
    # The checkpoint cadence changes what a lost worker costs, not the result: leave it out of the
    # digest (it stays in the document, hence in provenance), so changing it redoes no done shot.
    hashed = json.loads(json.dumps(document))
    for not_result in ("checkpoint_every", "keep_checkpoints"):
        hashed["parameters"]["config"]["train"].pop(not_result, None)
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()
    return digest, document


def parameters(job: ShotJob) -> dict[str, Any]:
    spec = job.spec
    return {
        "method": job.config.method,
        "preset": job.preset,
        "config": job.config.to_dict(),
        "start_frame": spec.start_frame,
        "end_frame": spec.end_frame,
        "mask_mode": spec.mask_mode,
        "mask_frame": spec.mask_frame,
        "dilate": spec.dilate,
        "boxes": spec.boxes,
        "feather": spec.feather,
        "handles": spec.handles,
        "output_format": spec.output_format or "same as input",
        # The group, not which of its shots this one started from: that is settled only when the
        # run is planned, after this fingerprint decides whether the shot is done (provenance
        # records the weights actually used).
        "group": spec.group,
    }


class CheckpointSync:
    """Mirror a local checkpoint folder to the output store, so a retried task (on any node)
    resumes where the lost one stopped. The trainer writes locally (atomic rename); each finished
    file is then uploaded whole, and files the trainer pruned are pruned remotely."""

    def __init__(self, local: Path, remote: str) -> None:
        self.local, self.remote = local, remote
        self.mirrored: set[str] = set()

    def download(self) -> None:
        self.local.mkdir(parents=True, exist_ok=True)
        for name in storage.list_names(self.remote):
            if name.startswith("ckpt_") and name.endswith(".pt"):
                storage.fetch(storage.join(self.remote, name), self.local)
                self.mirrored.add(name)

    def push(self) -> None:
        if not self.local.is_dir():
            return
        # Temporary files start with '.', so only complete checkpoints match.
        present = {p.name for p in self.local.glob("ckpt_*.pt")}
        for name in sorted(present - self.mirrored):
            storage.upload(self.local / name, storage.join(self.remote, name))
            self.mirrored.add(name)
        for name in sorted(self.mirrored - present):
            storage.remove(storage.join(self.remote, name))
            self.mirrored.discard(name)


def run_shot(job: ShotJob, warm_start_uri: str | None = None) -> ShotResult:
    """The task body: never raises for a problem of the shot itself; returns its result row.

    ``warm_start_uri``: weights to start from (a group's first shot's), or None: from scratch."""
    began = time.perf_counter()
    started_at = time.time()
    recorder = metrics.get()
    _record(recorder, lambda r: r.started.inc())
    try:
        row = _process(job, began, recorder, warm_start_uri)
    except Exception as error:
        if isinstance(error, MediaError):
            # Bad input media is an expected outcome: one line, no traceback, in the worker log.
            log.warning("shot %s failed: %s", job.spec.shot_id, error)
        else:
            log.exception("shot %s failed", job.spec.shot_id)
        row = ShotResult(
            shot_id=job.spec.shot_id,
            status=FAILED,
            output_uri=job.output_uri,
            error=f"shot {job.spec.shot_id!r}: {type(error).__name__}: {error}",
            total_seconds=time.perf_counter() - began,
        )
    row.node_id = _node_id()
    row.started_at, row.finished_at = started_at, time.time()
    row.gpu_fraction, row.estimated_gpu_bytes = job.gpu_fraction, job.estimated_gpu_bytes
    _record(recorder, lambda r: (r.succeeded if row.status == SUCCEEDED else r.failed).inc())
    _record(recorder, lambda r: r.seconds.observe(time.perf_counter() - began))
    if row.peak_gpu_bytes is not None:
        peak = row.peak_gpu_bytes
        _record(recorder, lambda r: r.gpu_memory.set(peak, tags={"shot_id": job.spec.shot_id}))
    return row


def _record(recorder: ShotMetrics | None, update: Callable[[ShotMetrics], object]) -> None:
    if recorder is None:
        return
    try:
        update(recorder)
    except Exception as error:  # noqa: BLE001  metrics are best effort, the shot is not
        log.warning("metrics not recorded: %s", error)


def _node_id() -> str:
    """The Ray node the attempt ran on (the host name outside Ray)."""
    if ray.is_initialized():
        return ray.get_runtime_context().get_node_id()
    return socket.gethostname()


def _process(
    job: ShotJob, began: float, recorder: ShotMetrics | None, warm_start_uri: str | None
) -> ShotResult:
    spec = job.spec
    digest, identity = fingerprint(job)
    device = resolve_device(job.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # A marker from an earlier run with other inputs or parameters must not outlive this attempt:
    # if it fails, the shot has to read as not done.
    storage.remove(storage.join(job.output_uri, SUCCESS_NAME))
    remote_output = not storage.is_local(job.output_uri)
    timings: dict[str, float] = {}
    safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.shot_id)
    _remove_dead_scratch()
    if not remote_output:
        _remove_stale_temporaries(storage.local_path(job.output_uri))
    scratch_prefix = f"{SCRATCH_PREFIX}{safe_id}-p{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=scratch_prefix) as scratch_name:
        scratch = Path(scratch_name)
        mark = time.perf_counter()
        video = storage.fetch(spec.video_uri, scratch / "video")
        mask = None if spec.mask_uri is None else storage.fetch(spec.mask_uri, scratch / "mask")
        initial_weights = None
        if warm_start_uri is not None:
            try:
                initial_weights = storage.fetch(warm_start_uri, scratch / "warm")
            except Exception as error:  # noqa: BLE001  a warm start saves time; its absence costs only that
                log.warning("shot %s: warm start from %s not available: %s", spec.shot_id, warm_start_uri, error)
        output_name, kind = job.output_name(probe_source(video))
        timings["download_seconds"] = time.perf_counter() - mark

        # A local output is written in place; a remote one is built in scratch and uploaded whole.
        out_dir = scratch / "out" if remote_output else storage.local_path(job.output_uri)
        checkpoints = out_dir / CHECKPOINTS_NAME
        sync = None
        if remote_output:
            sync = CheckpointSync(checkpoints, storage.join(job.output_uri, CHECKPOINTS_NAME))
            sync.download()
        on_step = _step_hook(spec.shot_id, recorder)
        scratch_names = {str(video): spec.video_uri, str(out_dir): job.output_uri}
        if mask is not None and spec.mask_uri is not None:
            scratch_names[str(mask)] = spec.mask_uri
        try:
            outputs, result = inpaint_files(
                ShotInputs(
                    video=video,
                    mask=mask,
                    start=spec.start_frame,
                    end=spec.end_frame,
                    dilate=spec.dilate,
                    mask_mode=spec.mask_mode,
                    mask_frame=spec.mask_frame,
                    boxes=parse_boxes(spec.boxes),
                    feather=spec.feather,
                    handles=spec.handles,
                ),
                out_dir / output_name,
                job.config,
                device,
                kind,
                checkpoints,
                on_step,
                # Each checkpoint is uploaded as soon as it is complete (and pruned ones removed).
                None if sync is None else (lambda _saved: sync.push()),
                initial_weights,
            )
        except Exception as error:
            # Media errors name the scratch copies; name the manifest's URIs instead.
            text = _with_uris(str(error), scratch_names)
            if _rebuildable(error):
                raise type(error)(text) from error
            raise
        # So does the media record (source, digests, outputs): the archive documents the URIs.
        outputs.media = _with_uris(outputs.media, scratch_names)
        weights_file = None
        if job.save_weights and result.weights is not None:
            weights_file = out_dir / WEIGHTS_NAME
            save_weights(result.weights, weights_file)
        mark = time.perf_counter()
        if remote_output:
            for path in [*outputs.files(), *([weights_file] if weights_file else [])]:
                storage.upload_tree(path, storage.join(job.output_uri, path.name))
        timings["upload_seconds"] = time.perf_counter() - mark

    frames, height, width = (int(n) for n in result.shape[:3])
    timings["train_seconds"] = result.train_seconds
    timings["fill_seconds"] = result.fill_seconds
    timings["total_seconds"] = time.perf_counter() - began
    storage.write_json(
        storage.join(job.output_uri, PROVENANCE_NAME),
        _provenance(job, identity, result, device, timings, outputs),
    )
    row = ShotResult(
        shot_id=spec.shot_id,
        status=SUCCEEDED,
        output_uri=job.output_uri,
        frames=frames,
        width=width,
        height=height,
        iterations=result.iterations,
        resumed_from=result.resumed_from,
        train_seconds=result.train_seconds,
        total_seconds=timings["total_seconds"],
        peak_gpu_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        warm_start=warm_start_uri if result.provenance.get("warm_start") else None,
        stopped_early=result.stopped_early,
    )
    # The commit marker goes last: its presence means every other output is complete.
    storage.write_json(
        storage.join(job.output_uri, SUCCESS_NAME),
        {"fingerprint": digest, **identity, "result": row.to_dict(), "completed_at": time.time()},
    )
    return row


def _with_uris(value: Any, names: dict[str, str]) -> Any:
    """``value`` (a string, or dicts and lists of them) with local paths replaced by URIs."""
    if isinstance(value, str):
        for local, uri in names.items():
            value = value.replace(local, uri)
        return value
    if isinstance(value, dict):
        return {key: _with_uris(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_uris(item, names) for item in value]
    return value


def _rebuildable(error: Exception) -> bool:
    """Whether ``type(error)(message)`` makes an equivalent error (true of plain message errors)."""
    return len(error.args) == 1 and isinstance(error.args[0], str)


def _step_hook(shot_id: str, recorder: ShotMetrics | None) -> StepCallback:
    # The step counted last; None until the first step of this attempt (which, resumed from a
    # checkpoint, is not step 1), so a retried shot does not count the lost attempt's steps twice.
    last: dict[str, int | None] = {"iteration": None}
    tags = {"shot_id": shot_id}

    def on_step(iteration: int, total: int, loss: float) -> None:
        if recorder is None:
            return
        if last["iteration"] is None:
            last["iteration"] = iteration - 1
        if iteration % METRICS_EVERY == 0 or iteration == total:
            done = iteration - last["iteration"]

            def update(r: ShotMetrics) -> None:
                r.loss.set(loss, tags=tags)
                r.progress.set(iteration / total, tags=tags)
                r.iterations.inc(done, tags=tags)

            _record(recorder, update)
            last["iteration"] = iteration

    return on_step


def _remove_dead_scratch() -> None:
    """Delete the scratch folders of workers that died mid-shot (a SIGKILL or the OOM killer skips
    TemporaryDirectory's cleanup), so each retry does not leave one more copy of a shot behind."""
    try:
        for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-p*-*"):
            match = re.search(r"-p(\d+)-[^-]*$", folder.name)
            if match is None or not folder.is_dir() or _alive(int(match[1])):
                continue
            shutil.rmtree(folder, ignore_errors=True)
    except OSError as error:  # housekeeping: never a reason to fail the shot
        log.warning("could not clear dead workers' scratch: %s", error)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale_temporaries(folder: Path) -> None:
    """A local output is written in place, through hidden temporary names renamed when complete;
    a worker killed mid-write leaves its temporary behind. Remove those (``.tmp-*`` of storage and
    the checkpoints, ``.<name>.tmp-*`` of the media writer) before this attempt writes anew."""
    for directory in (folder, folder / CHECKPOINTS_NAME):
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if entry.name.startswith(".") and ".tmp-" in entry.name:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def _provenance(
    job: ShotJob,
    identity: dict[str, Any],
    result: InpaintResult,
    device: torch.device,
    timings: dict[str, float],
    outputs: FileOutputs,
) -> dict[str, Any]:
    """The archival record: the manifest's URIs and parameters (``identity``) plus what the shot's
    run used and made (media, content hashes, versions, device, timings)."""
    record = shot_provenance(outputs, result, job.config, job.preset, device, timings["total_seconds"])
    record["timings"] = timings
    return {"shot_id": job.spec.shot_id, **identity, **record}


# One task per shot. max_retries covers system failures only (worker or node lost); shot errors
# are returned as failed rows by run_shot, so they are never retried blindly.
shot_task = ray.remote(max_retries=3)(run_shot)
