"""Submitting a batch run to a running Ray cluster as a Ray Job, and following it there.

The job's entrypoint is the same ``archive-inpaint submit`` command without ``--address``: inside
the job, Ray's job supervisor sets ``RAY_ADDRESS``, so the runner attaches to the cluster instead of
starting an embedded one. The package must be installed on the cluster (the container image does
that, or a runtime environment checked by ``batch.runtime_env``); nothing large travels with the job,
and no secret is put in its runtime environment, whose variables are visible in the job's details.

Every request goes through the Jobs API on the head's dashboard (``http://HEAD:8265``). Its
failures (unreachable head, refused token, unknown job id) are raised as :class:`JobError` with a
message fit for the command line. Ray is imported inside the functions only: ``use_token`` must run
before Ray is first imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive_inpaint.batch import storage
from archive_inpaint.batch.options import RunOptions
from archive_inpaint.batch.runtime_env import validate_runtime_env

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

TERMINAL_STATES = {"SUCCEEDED", "FAILED", "STOPPED"}
# Every submission id of this package starts with this; `jobs list` shows only these.
JOB_PREFIX = "archive-inpaint-"


class JobError(RuntimeError):
    """A Jobs API request that failed: unreachable dashboard, refused token, unknown job.

    A RuntimeError, like the errors of Ray's own client, so callers that caught those still do."""


class UnknownJob(JobError):
    """The cluster has no job with this submission id."""


@dataclass(frozen=True)
class RemoteRun:
    address: str
    options: RunOptions


@dataclass(frozen=True)
class JobState:
    """What the Jobs API knows about one job. Times are UTC; None where the job has none yet."""

    submission_id: str
    status: str
    message: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    entrypoint: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    runtime_env: dict[str, Any] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_STATES


def use_token(token: str | None) -> None:
    """Ray clusters with token authentication (on by default for local clusters since Ray 2.59)
    need the client to send a token: from ``--token``, ``RAY_AUTH_TOKEN`` or Ray's token file.

    Ray reads these variables when it is first imported, so call this before importing Ray."""
    if token:
        os.environ["RAY_AUTH_TOKEN"] = token
    if token or os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or (
        Path.home() / ".ray" / "auth_token"
    ).is_file():
        os.environ.setdefault("RAY_AUTH_MODE", "token")


# ---- The job's command and runtime environment


def entrypoint(run: RemoteRun) -> str:
    """The command the job runs on the cluster. Local paths are made absolute: they only make
    sense to a cluster that shares this machine's filesystem (a local `ray start` head)."""
    options = run.options
    args = [
        "archive-inpaint",
        "submit",
        storage.absolute(options.manifest_uri),
        "--output",
        storage.absolute(options.output_uri),
        "--method",
        options.method,
        "--preset",
        options.preset,
        "--device",
        options.device,
        "--quiet",
    ]
    if options.results_uri:
        args += ["--results", storage.absolute(options.results_uri)]
    if options.iterations:
        args += ["--iterations", str(options.iterations)]
    if options.width:
        args += ["--width", str(options.width)]
    if options.vgg_weights:
        args += ["--vgg-weights", options.vgg_weights]  # a path on the cluster's workers
    if options.gan_weight is not None:
        args += ["--gan-weight", f"{options.gan_weight:g}"]
    if options.flow_estimator:
        args += ["--flow-estimator", options.flow_estimator]
    # Only when set: a cluster whose package predates these options still runs default runs.
    if options.gpu_memory_gib is not None:
        args += ["--gpu-memory", f"{options.gpu_memory_gib:g}"]
    if options.max_retries != RunOptions.max_retries:
        args += ["--max-retries", str(options.max_retries)]
    return shlex.join(args)


def submission_id(run: RemoteRun) -> str:
    key = f"{run.options.manifest_uri}|{run.options.output_uri}"
    digest = hashlib.blake2b(key.encode(), digest_size=4)
    # The random tail keeps two submissions of the same run within one second apart.
    return f"{JOB_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{digest.hexdigest()}-{secrets.token_hex(2)}"


# ---- The Jobs API


@contextlib.contextmanager
def _requests_to(address: str, job_id: str | None = None) -> Iterator[None]:
    """Turn the Jobs API client's failures into JobErrors that say what went wrong."""
    import requests
    from ray.exceptions import AuthenticationError

    try:
        yield
    except JobError:
        raise
    except AuthenticationError as error:
        # Ray's message runs on for paragraphs; its first line says whether the token was missing
        # or wrong.
        first = (error.message.strip().splitlines() or ["authentication failed"])[0]
        raise JobError(
            f"{address} refused the request ({first}); give the cluster's token with --token or "
            "RAY_AUTH_TOKEN"
        ) from None
    except ConnectionError:
        # Ray's own text only repeats the address.
        raise JobError(f"cannot reach the Ray dashboard at {address}") from None
    except requests.RequestException as error:
        raise JobError(f"cannot reach the Ray dashboard at {address} ({type(error).__name__})") from None
    except RuntimeError as error:
        # Ray's client reports HTTP errors as RuntimeError("Request failed with status code 404: ...").
        if job_id is not None and "status code 404" in str(error):
            raise UnknownJob(f"no job {job_id!r} on the cluster at {address}") from None
        raise JobError(f"{address}: {error}") from None


@contextlib.contextmanager
def _without_address_variables() -> Iterator[None]:
    """Ray's client prefers RAY_API_SERVER_ADDRESS or RAY_ADDRESS to the address it is given;
    an explicit address must win (inside a Ray Job, RAY_ADDRESS is the GCS, not the dashboard)."""
    names = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _client(address: str, token: str | None) -> JobSubmissionClient:
    use_token(token)
    from ray.job_submission import JobSubmissionClient

    with _requests_to(address), _without_address_variables():
        try:
            return JobSubmissionClient(address)
        except (TypeError, ValueError) as error:
            raise JobError(
                f"{address!r} is not a Ray dashboard address (http://HEAD:8265): {error}"
            ) from None


def _timestamp(milliseconds: int | None) -> datetime | None:
    return None if milliseconds is None else datetime.fromtimestamp(milliseconds / 1000, timezone.utc)


def _state(details: Any) -> JobState:
    return JobState(
        submission_id=str(details.submission_id or details.job_id),
        status=str(getattr(details.status, "value", details.status)),
        message=details.message,
        start_time=_timestamp(details.start_time),
        end_time=_timestamp(details.end_time),
        entrypoint=details.entrypoint,
        metadata=dict(details.metadata or {}),
        runtime_env=dict(details.runtime_env or {}),
    )


# A head answers on its dashboard port before its job agent has registered (seconds after
# `ray start` or `ray up`, longer on a loaded machine); the Jobs API then refuses with this.
_AGENT_NOT_READY = "No available agent to submit job"


def submit_job(
    run: RemoteRun,
    token: str | None = None,
    agent_wait_seconds: float = 60.0,
    runtime_env: dict[str, Any] | None = None,
) -> str:
    """Submit the run as a Ray Job; returns its submission id. While the head's job agent is
    still starting, the submission is retried for up to ``agent_wait_seconds``.

    ``runtime_env`` (e.g. from ``runtime_env.load_runtime_env``) is checked again here, so no secret or
    bulky upload reaches the cluster whichever way it was built."""
    use_token(token)  # before the check below imports Ray
    if runtime_env:
        runtime_env = validate_runtime_env(runtime_env)
    client = _client(run.address, token)
    identifier = submission_id(run)
    deadline = time.monotonic() + agent_wait_seconds
    with _requests_to(run.address):
        while True:
            try:
                return client.submit_job(
                    entrypoint=entrypoint(run),
                    submission_id=identifier,
                    runtime_env=runtime_env or None,
                    metadata={"manifest": run.options.manifest_uri, "output": run.options.output_uri},
                    # No entrypoint resources: a job that reserves none runs its driver on the
                    # head node, which is on-demand and advertises no CPUs for tasks in cluster/
                    # (a reservation would send the driver to a spot GPU worker).
                )
            except RuntimeError as error:
                # Refused before any job was created, so the same id is free for the retry.
                if _AGENT_NOT_READY not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(2.0)


def job_status(address: str, job_id: str, token: str | None = None) -> JobState:
    client = _client(address, token)
    with _requests_to(address, job_id):
        return _state(client.get_job_info(job_id))


def wait_for_job(
    address: str,
    job_id: str,
    poll_seconds: float = 2.0,
    token: str | None = None,
    timeout: float | None = None,
) -> str:
    """Block until the job ends; returns its final status name. JobError after ``timeout`` s."""
    client = _client(address, token)
    deadline = None if timeout is None else time.monotonic() + timeout
    with _requests_to(address, job_id):
        while True:
            status = str(client.get_job_status(job_id).value)
            if status in TERMINAL_STATES:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise JobError(f"job {job_id} is still {status} after {timeout:g} s")
            time.sleep(poll_seconds)


def job_logs(address: str, job_id: str, token: str | None = None) -> str:
    """The job's whole log (its driver's stdout and stderr) so far."""
    client = _client(address, token)
    with _requests_to(address, job_id):
        return client.get_job_logs(job_id)


def follow_job_logs(
    address: str, job_id: str, write: Callable[[str], None], token: str | None = None
) -> str:
    """Stream the job's log to ``write`` as it grows, from the start, until the job ends;
    returns its final status name."""
    client = _client(address, token)
    # The stream of an unknown id fails with a bare handshake error; ask first for a clear one.
    job_status(address, job_id, token)
    # Ray's client logs every closed stream at INFO, which would end up in the log it streams.
    logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)

    async def stream() -> None:
        async for chunk in client.tail_job_logs(job_id):
            write(chunk)

    try:
        asyncio.run(stream())
    except Exception as error:  # noqa: BLE001  aiohttp's errors; their repr carries the token header
        if isinstance(error, JobError):
            raise
        status = getattr(error, "status", None)
        reason = f"HTTP {status}" if status is not None else type(error).__name__
        raise JobError(f"the log stream of job {job_id} from {address} broke off ({reason})") from None
    # The stream closes when the job ends; polling covers a stream closed early by a proxy.
    return wait_for_job(address, job_id, token=token)


def stop_job(address: str, job_id: str, token: str | None = None) -> bool:
    """Ask the cluster to stop the job (SIGTERM to its driver, then SIGKILL); True when a stop
    was sent, False when the job had already ended. UnknownJob for an id the cluster lacks."""
    client = _client(address, token)
    with _requests_to(address, job_id):
        return bool(client.stop_job(job_id))


def list_jobs(address: str, token: str | None = None) -> list[JobState]:
    """The cluster's jobs of this package (submission id ``archive-inpaint-...``), oldest first."""
    client = _client(address, token)
    with _requests_to(address):
        everything = client.list_jobs()
    jobs = [_state(job) for job in everything if (job.submission_id or "").startswith(JOB_PREFIX)]
    earliest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(jobs, key=lambda job: (job.start_time or earliest, job.submission_id))
