"""The run report: one row per shot, written as Parquet, and its summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Any

import pyarrow as pa

from archive_inpaint.batch import storage
from archive_inpaint.batch.manifest import read_table, write_table

SUCCEEDED, FAILED, SKIPPED = "succeeded", "failed", "skipped"
RESULTS_NAME = "results.parquet"

SCHEMA = pa.schema(
    [
        ("shot_id", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("output_uri", pa.string()),
        ("frames", pa.int64()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("iterations", pa.int64()),
        # The checkpoint iteration training resumed from (0: from scratch), e.g. after a retry.
        ("resumed_from", pa.int64()),
        ("train_seconds", pa.float64()),
        ("total_seconds", pa.float64()),
        # Where and when the shot's last attempt ran (epoch seconds; the Ray node id), and the
        # GPU share it was given with its memory estimate and measured peak (CUDA shots).
        ("node_id", pa.string()),
        ("started_at", pa.float64()),
        ("finished_at", pa.float64()),
        ("gpu_fraction", pa.float64()),
        ("estimated_gpu_bytes", pa.int64()),
        ("peak_gpu_bytes", pa.int64()),
        # The weights training started from (a group's first shot), and whether the held-out
        # pixels ended training before its step ceiling.
        ("warm_start", pa.string()),
        ("stopped_early", pa.bool_()),
    ]
)


@dataclass
class ShotResult:
    shot_id: str
    status: str
    output_uri: str
    error: str | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    iterations: int | None = None
    resumed_from: int | None = None
    train_seconds: float | None = None
    total_seconds: float | None = None
    node_id: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    gpu_fraction: float | None = None
    estimated_gpu_bytes: int | None = None
    peak_gpu_bytes: int | None = None
    warm_start: str | None = None
    stopped_early: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> ShotResult:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in row.items() if key in names})


def default_results_uri(output_uri: str) -> str:
    return storage.join(output_uri, RESULTS_NAME)


def write_results(rows: list[ShotResult], uri: str) -> None:
    table = pa.Table.from_pylist([row.to_dict() for row in rows], schema=SCHEMA)
    write_table(table, uri)


def read_results(uri: str) -> list[ShotResult]:
    return [ShotResult.from_dict(row) for row in read_table(uri).to_pylist()]


def counts(rows: list[ShotResult]) -> dict[str, int]:
    tally = Counter(row.status for row in rows)
    return {status: tally.get(status, 0) for status in (SUCCEEDED, SKIPPED, FAILED)}
