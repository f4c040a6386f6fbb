"""Options of a batch run, shared by the local runner and the Ray Job submitter.

Kept free of Ray imports: the submitter must set Ray's authentication variables before Ray is
first imported.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunOptions:
    manifest_uri: str
    output_uri: str
    results_uri: str | None = None
    # The internal-learning method and preset for rows without their own.
    method: str = "iivi"
    preset: str = "fast"
    device: str = "auto"
    num_cpus: int | None = None
    # Run-wide overrides; a manifest row's own method/preset/iterations take precedence.
    iterations: int | None = None
    width: int | None = None
    # Method settings, each applied to the rows of the methods that have it: the VGG weights
    # file of every method's feature losses (a path on the workers), LGTSM's TSMGAN weight,
    # DIP-Vid-Flow's flow estimator.
    vgg_weights: str | None = None
    gan_weight: float | None = None
    flow_estimator: str | None = None
    # Training steps between checkpoints (default: the preset's). Not a manifest column: it
    # trades checkpoint traffic against the work lost to a dead worker, per run.
    checkpoint_every: int | None = None
    # Memory of one GPU of the cluster's GPU workers, in GiB: with it, shots whose estimated
    # memory fits several times into one GPU request a fraction of it and share the GPU. None:
    # measured on a GPU worker when the cluster has one at the start, else one whole GPU per shot.
    gpu_memory_gib: float | None = None
    # Ray retries of a shot lost to a system failure (dead worker, lost or preempted node); each
    # retry resumes from the shot's latest stored checkpoint. Spot fleets want more.
    max_retries: int = 3
