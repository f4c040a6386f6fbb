"""Submitting a batch run to a running Ray cluster as a Ray Job.

The job's entrypoint is the same ``archive-inpaint submit`` command without ``--address``: inside
the job, Ray's job supervisor sets ``RAY_ADDRESS``, so the runner attaches to the cluster instead of
starting an embedded one. The package must be installed on the cluster (the container image does
that); nothing large travels with the job, and no secret is put in its runtime environment, whose
variables are visible in the job's details.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from archive_inpaint.batch import storage
from archive_inpaint.batch.options import RunOptions

TERMINAL_STATES = {"SUCCEEDED", "FAILED", "STOPPED"}


@dataclass(frozen=True)
class RemoteRun:
    address: str
    options: RunOptions


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
    return shlex.join(args)


def submission_id(run: RemoteRun) -> str:
    key = f"{run.options.manifest_uri}|{run.options.output_uri}"
    digest = hashlib.blake2b(key.encode(), digest_size=4)
    return f"archive-inpaint-{time.strftime('%Y%m%d-%H%M%S')}-{digest.hexdigest()}"


# A head answers on its dashboard port before its job agent has registered (seconds after
# `ray start` or `ray up`, longer on a loaded machine); the Jobs API then refuses with this.
_AGENT_NOT_READY = "No available agent to submit job"


def submit_job(run: RemoteRun, token: str | None = None, agent_wait_seconds: float = 60.0) -> str:
    """Submit the run as a Ray Job; returns its submission id. While the head's job agent is
    still starting, the submission is retried for up to ``agent_wait_seconds``."""
    from ray.job_submission import JobSubmissionClient

    use_token(token)
    client = JobSubmissionClient(run.address)
    identifier = submission_id(run)
    deadline = time.monotonic() + agent_wait_seconds
    while True:
        try:
            return client.submit_job(
                entrypoint=entrypoint(run),
                submission_id=identifier,
                metadata={"manifest": run.options.manifest_uri, "output": run.options.output_uri},
                # The driver only schedules and waits; the shots take the cluster's GPUs.
                entrypoint_num_cpus=0.5,
            )
        except RuntimeError as error:
            # Refused before any job was created, so the same id is free for the retry.
            if _AGENT_NOT_READY not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def wait_for_job(address: str, job_id: str, poll_seconds: float = 2.0, token: str | None = None) -> str:
    """Block until the job ends; returns its final status name."""
    from ray.job_submission import JobSubmissionClient

    use_token(token)
    client = JobSubmissionClient(address)
    while True:
        status = str(client.get_job_status(job_id).value)
        if status in TERMINAL_STATES:
            return status
        time.sleep(poll_seconds)


def job_logs(address: str, job_id: str, token: str | None = None) -> str:
    from ray.job_submission import JobSubmissionClient

    use_token(token)
    return JobSubmissionClient(address).get_job_logs(job_id)
