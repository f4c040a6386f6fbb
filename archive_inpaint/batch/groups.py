"""Warm starts within a manifest ``group`` (the shots of one reel or scene share grain, palette and
lighting): the group's first shot to be scheduled (its longest, under longest-first order) trains
from scratch and saves its weights; every other shot of the group starts from them.

A follower must not take a GPU while it waits, so its warm start is passed as the ObjectRef of a
zero-CPU task that resolves when the seed shot ends: Ray schedules the follower only once that
argument is ready. A seed that fails leaves its followers to train from scratch.
"""

from __future__ import annotations

import dataclasses

import ray

from archive_inpaint.batch import storage
from archive_inpaint.batch.results import SUCCEEDED
from archive_inpaint.batch.shot_task import WEIGHTS_NAME, ShotJob


class GroupWarmStarts:
    def __init__(self) -> None:
        # group -> (seed shot id, weights URI) for seeds done in an earlier run: no wait.
        self.done: dict[str, tuple[str, str]] = {}
        # group -> (seed job, its task's ref) for seeds scheduled in this run.
        self.scheduled: dict[str, tuple[ShotJob, ray.ObjectRef]] = {}

    def note_done(self, job: ShotJob) -> None:
        """A shot skipped as done: if it left weights, its group's other shots start from them."""
        group = job.spec.group
        weights = storage.join(job.output_uri, WEIGHTS_NAME)
        if group is not None and group not in self.done and storage.exists(weights):
            self.done[group] = (job.spec.shot_id, weights)

    def assign(self, job: ShotJob) -> tuple[ShotJob, str | ray.ObjectRef | None]:
        """The job as it must run (seed: saves weights; follower: says whose it starts from) and
        its warm-start argument. Call in scheduling order, then :meth:`scheduled_as` for seeds."""
        group = job.spec.group
        if group is None:
            return job, None
        if group in self.done:
            seed_id, weights = self.done[group]
            return dataclasses.replace(job, warm_start_from=seed_id), weights
        if group in self.scheduled:
            seed, seed_ref = self.scheduled[group]
            weights = storage.join(seed.output_uri, WEIGHTS_NAME)
            follower = dataclasses.replace(job, warm_start_from=seed.spec.shot_id)
            return follower, _weights_when_done.remote([seed_ref], weights)
        return dataclasses.replace(job, save_weights=True), None

    def scheduled_as(self, job: ShotJob, ref: ray.ObjectRef) -> None:
        if job.save_weights and job.spec.group is not None:
            self.scheduled[job.spec.group] = (job, ref)


@ray.remote(num_cpus=0, max_retries=0)
def _weights_when_done(seed: list[ray.ObjectRef], weights_uri: str) -> str | None:
    """``weights_uri`` once the group's first shot has succeeded; None (the shot then trains from
    scratch) when it failed. ``seed`` is wrapped in a list so its failure arrives here as an
    exception instead of failing this task."""
    try:
        row = ray.get(seed[0])
    except Exception:  # noqa: BLE001  the seed's failure is reported by its own row
        return None
    return weights_uri if row.status == SUCCEEDED else None
