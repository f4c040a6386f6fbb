"""The run's HTML report (``report.html`` in the output folder): one row per shot, opening in a
browser straight from the output folder (links and thumbnails are relative to it)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from archive_inpaint.batch import storage
from archive_inpaint.batch.results import FAILED, ShotResult
from archive_inpaint.qc import ReportRow, write_report

REPORT_NAME = "report.html"
# Written by the pipeline beside each shot's output (pipeline.qc_path).
_QC_FILES = (("contact sheet", "contact.png"), ("difference", "diff.png"), ("preview", "preview.mp4"))


def _href(uri: str, root: str) -> str:
    """``uri`` relative to the report's folder when it lies under it, else the URI itself."""
    prefix = root.rstrip("/") + "/"
    return uri[len(prefix):] if uri.startswith(prefix) else uri


def report_rows(results: list[ShotResult], output_uri: str) -> list[ReportRow]:
    rows = []
    for result in results:
        folder = _href(result.output_uri, output_uri)
        shot = result.shot_id
        done = result.status != FAILED
        links = [("folder", folder + "/")]
        if done:
            links += [(label, f"{folder}/{shot}.{suffix}") for label, suffix in _QC_FILES]
            links.append(("provenance", f"{folder}/provenance.json"))
        rows.append(
            ReportRow(
                shot_id=shot,
                status=result.status,
                error=result.error,
                frames=result.frames,
                width=result.width,
                height=result.height,
                iterations=result.iterations,
                train_seconds=result.train_seconds,
                total_seconds=result.total_seconds,
                thumbnail=f"{folder}/{shot}.thumb.png" if done else None,
                links=links,
            )
        )
    return rows


def write_run_report(results: list[ShotResult], output_uri: str, title: str) -> str:
    """Write the report into ``output_uri`` (any fsspec URI); return its URI."""
    uri = storage.join(output_uri, REPORT_NAME)
    rows = report_rows(results, output_uri)
    if storage.is_local(uri):
        write_report(rows, storage.local_path(uri), title)
        return uri
    with tempfile.TemporaryDirectory() as scratch:
        local = write_report(rows, Path(scratch) / REPORT_NAME, title)
        storage.upload(local, uri)
    return uri
