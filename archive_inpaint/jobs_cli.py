"""`archive-inpaint jobs status|logs|stop|list`: follow batch runs submitted as Ray Jobs.

`archive-inpaint submit --address http://HEAD:8265` prints the job's submission id; these commands
take it. Machine-readable answers (a status name, the log, the list) go to stdout; everything meant
for people goes to stderr. Exit codes: 0 for a job that succeeded or is still going, 1 for one that
failed or was stopped, 2 when the cluster could not answer (unreachable, refused token, unknown id).

The dashboard address comes from ``--address`` or ``ARCHIVE_INPAINT_ADDRESS``, deliberately not
from ``RAY_ADDRESS``: inside a Ray Job that variable holds the cluster's GCS address, not the
dashboard URL the Jobs API needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from archive_inpaint.batch.remote import JobState

jobs_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Follow batch runs submitted to a Ray cluster (archive-inpaint submit --address).",
)
# soft_wrap: a message stays one line however narrow the terminal, for grep and log files.
console = Console(stderr=True, soft_wrap=True)

# Statuses that leave the run without its results.
_UNSUCCESSFUL = {"FAILED", "STOPPED"}

Address = Annotated[
    str,
    typer.Option(
        envvar="ARCHIVE_INPAINT_ADDRESS",
        help="The Ray cluster's dashboard, e.g. http://HEAD:8265 (env: ARCHIVE_INPAINT_ADDRESS).",
        show_envvar=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        envvar="RAY_AUTH_TOKEN",
        help="Token for clusters with token authentication (env: RAY_AUTH_TOKEN).",
        show_envvar=False,
    ),
]
JobId = Annotated[str, typer.Argument(help="The submission id printed by `archive-inpaint submit`.")]


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(error))}")
    return typer.Exit(2)


def _time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")


def _describe(job: JobState) -> str:
    parts = [f"job {escape(job.submission_id)}: [bold]{job.status}[/bold]"]
    if job.message:
        parts.append(escape(job.message.rstrip(".")))
    if job.start_time is not None:
        parts.append(f"started {_time(job.start_time)}")
    if job.end_time is not None and job.start_time is not None:
        seconds = (job.end_time - job.start_time).total_seconds()
        parts.append(f"ended {_time(job.end_time)} after {seconds:.0f} s")
    return "; ".join(parts)


@jobs_app.command("status")
def status(job_id: JobId, address: Address, token: Token = None) -> None:
    """Print the job's status (first line of stdout) and, on stderr, its message and times.

    Exit 0 while it is pending or running and when it succeeded, 1 when it failed or was stopped."""
    from archive_inpaint.batch import remote

    try:
        job = remote.job_status(address, job_id, token)
    except remote.JobError as error:
        raise _fail(error)
    typer.echo(job.status)
    console.print(_describe(job))
    if job.status in _UNSUCCESSFUL:
        raise typer.Exit(1)


@jobs_app.command("logs")
def logs(
    job_id: JobId,
    address: Address,
    token: Token = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing the log as it grows, until the job ends.")
    ] = False,
) -> None:
    """Print the job's log (its driver's output) to stdout.

    With --follow, exit like `status` once the job has ended."""
    from archive_inpaint.batch import remote

    try:
        if not follow:
            typer.echo(remote.job_logs(address, job_id, token), nl=False)
            return
        final = remote.follow_job_logs(address, job_id, lambda chunk: typer.echo(chunk, nl=False), token)
    except remote.JobError as error:
        raise _fail(error)
    console.print(f"job {escape(job_id)}: [bold]{final}[/bold]")
    if final in _UNSUCCESSFUL:
        raise typer.Exit(1)


@jobs_app.command("stop")
def stop(
    job_id: JobId,
    address: Address,
    token: Token = None,
    wait: Annotated[bool, typer.Option(help="Wait until the job has ended.")] = False,
    timeout: Annotated[
        float, typer.Option(help="With --wait: give up after this many seconds.", min=1)
    ] = 300.0,
) -> None:
    """Stop the job (its driver gets SIGTERM, then SIGKILL; Ray cancels its shots).

    Prints the job's status afterwards (with --wait: its final one). Shots already committed stay
    committed; submitting the run again skips them."""
    from archive_inpaint.batch import remote

    try:
        sent = remote.stop_job(address, job_id, token)
        if sent:
            console.print(f"stop sent to job {escape(job_id)}")
        if wait:
            final = remote.wait_for_job(address, job_id, poll_seconds=1.0, token=token, timeout=timeout)
        else:
            final = remote.job_status(address, job_id, token).status
    except remote.JobError as error:
        raise _fail(error)
    if not sent:
        console.print(f"job {escape(job_id)} was not running")
    typer.echo(final)


@jobs_app.command("list")
def list_(address: Address, token: Token = None) -> None:
    """List the cluster's archive-inpaint jobs, oldest first.

    One line per job, tab-separated: submission id, status, start and end time (UTC), manifest,
    output."""
    from archive_inpaint.batch import remote

    try:
        jobs = remote.list_jobs(address, token)
    except remote.JobError as error:
        raise _fail(error)
    if not jobs:
        console.print(f"no archive-inpaint jobs on {escape(address)}")
    for job in jobs:
        fields = [
            job.submission_id,
            job.status,
            _time(job.start_time),
            _time(job.end_time),
            job.metadata.get("manifest", "-"),
            job.metadata.get("output", "-"),
        ]
        typer.echo("\t".join(fields))
