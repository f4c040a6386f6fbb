"""The batch manifest (schema v1): one Parquet row per shot, validated in full before any work.

Validation collects every problem (missing columns, wrong types, bad rows, missing inputs) instead
of stopping at the first, so a manifest of thousands of shots is fixed in one round trip.

Relative paths in a manifest (``video_uri``, ``mask_uri``, ``output_uri``) are relative to the folder
holding the manifest, not to the working directory, so a manifest shipped beside its media works from
anywhere: ``clips/a.mkv`` in ``/data/shots.parquet`` is ``/data/clips/a.mkv``, and in
``s3://bucket/run/shots.parquet`` it is ``s3://bucket/run/clips/a.mkv``. Absolute paths and URIs with
a protocol (``s3://``, ``file://``) are used as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from archive_inpaint.batch import storage
from archive_inpaint.config import METHODS, PRESETS
from archive_inpaint.media.boxes import parse_boxes
from archive_inpaint.media.kinds import OutputKind

SCHEMA_VERSION = 1

# Column name -> (arrow type predicate, description for messages).
_STRING = (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string")
_INT = (pa.types.is_integer, "integer")
REQUIRED: dict[str, tuple[Callable[[pa.DataType], bool], str]] = {
    "shot_id": _STRING,
    "video_uri": _STRING,
    "mask_uri": _STRING,
}
OPTIONAL: dict[str, tuple[Callable[[pa.DataType], bool], str]] = {
    "start_frame": _INT,
    "end_frame": _INT,
    "mask_mode": _STRING,
    "mask_frame": _INT,
    "method": _STRING,
    "preset": _STRING,
    "iterations": _INT,
    "dilate": _INT,
    "output_uri": _STRING,
    # Static boxes "x,y,w,h;x,y,w,h" added to every frame's mask (burnt-in timestamps, logos);
    # with boxes, mask_uri may be null.
    "boxes": _STRING,
    "feather": _INT,
    "handles": _INT,
    # ffv1, prores-422hq, prores-4444, h264, h265, png, tiff, dpx; null: the input's own kind.
    "output_format": _STRING,
    # Shots of one reel or scene: the group's longest shot trains first and the others start
    # from its weights (warm start).
    "group": _STRING,
}
# per-frame: mask_uri has every frame's mask (or one image for all). single-frame: mask_uri
# annotates frame mask_frame of the shot's range; the other masks are predicted (IIVI §4.2).
MASK_MODES = ("per-frame", "single-frame")


@dataclass(frozen=True)
class ShotSpec:
    shot_id: str
    video_uri: str
    mask_uri: str | None  # None: the mask is the static boxes alone
    start_frame: int = 0
    end_frame: int | None = None
    mask_mode: str = "per-frame"
    mask_frame: int = 0
    method: str | None = None
    preset: str | None = None
    iterations: int | None = None
    dilate: int = 0
    output_uri: str | None = None
    boxes: str | None = None
    feather: int = 0
    handles: int = 0
    output_format: str | None = None
    group: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], base: str | None = None) -> ShotSpec:
        """From a validated row (a dict from pyarrow or Ray Data); nulls take the defaults.

        ``base`` is the folder of the manifest (:func:`manifest_base`): relative paths in the row are
        resolved against it. Without it they are left as written (relative to the working directory).
        """

        def get(name: str) -> Any:
            return row.get(name)

        output = get("output_uri")
        return cls(
            shot_id=str(get("shot_id")),
            video_uri=resolve_uri(str(get("video_uri")), base),
            mask_uri=None if get("mask_uri") is None else resolve_uri(str(get("mask_uri")), base),
            start_frame=int(get("start_frame") or 0),
            end_frame=None if get("end_frame") is None else int(get("end_frame")),
            mask_mode=str(get("mask_mode") or "per-frame"),
            mask_frame=int(get("mask_frame") or 0),
            method=get("method"),
            preset=get("preset"),
            iterations=None if get("iterations") is None else int(get("iterations")),
            dilate=int(get("dilate") or 0),
            output_uri=None if output is None else resolve_uri(str(output), base),
            boxes=get("boxes") or None,
            feather=int(get("feather") or 0),
            handles=int(get("handles") or 0),
            output_format=get("output_format"),
            group=get("group") or None,
        )


@dataclass
class ValidationReport:
    manifest_uri: str
    problems: list[str] = field(default_factory=list)
    shots: list[ShotSpec] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def manifest_base(manifest_uri: str) -> str:
    """The folder that relative paths in the manifest at ``manifest_uri`` are relative to: the
    manifest's own folder, made absolute for a local manifest (so it does not depend on the working
    directory either), kept as a URI (``s3://bucket/run``) for a remote one."""
    if storage.is_local(manifest_uri):
        return str(storage.local_path(manifest_uri).resolve().parent)
    return manifest_uri.rstrip("/").rsplit("/", 1)[0]


def resolve_uri(uri: str, base: str | None) -> str:
    """``uri`` as written when it is absolute, has a protocol, or there is no ``base``; otherwise
    ``uri`` relative to ``base`` (a local folder or a folder URI)."""
    if base is None or not uri or not storage.is_local(uri) or uri.startswith("file://"):
        return uri
    if PurePosixPath(uri).is_absolute() or PureWindowsPath(uri).is_absolute():
        return uri
    if storage.is_local(base):
        return str(Path(base) / uri)
    return storage.join(base, str(PurePosixPath(uri)))


def read_shots(uri: str) -> list[ShotSpec]:
    """The shots of the (already validated) manifest at ``uri``, relative paths resolved."""
    base = manifest_base(uri)
    return [ShotSpec.from_row(row, base) for row in read_table(uri).to_pylist()]


def read_table(uri: str) -> pa.Table:
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as stream:
        return pq.read_table(stream)


def validate_manifest(uri: str, check_uris: bool = True) -> ValidationReport:
    report = ValidationReport(uri)
    try:
        table = read_table(uri)
    except (OSError, pa.ArrowInvalid) as error:
        report.problems.append(f"cannot read the manifest {uri}: {error}")
        return report
    validate_table(table, report, check_uris, base=manifest_base(uri))
    return report


def validate_table(
    table: pa.Table, report: ValidationReport, check_uris: bool = True, base: str | None = None
) -> None:
    """Append every problem in ``table`` to ``report``; fill ``report.shots`` when there are none.

    ``base``: the manifest's folder, which relative paths are resolved against (see the module doc).
    """
    usable = _check_columns(table.schema, report.problems)
    rows = table.select(usable).to_pylist()
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        label = _row_label(index, row)
        for problem in _check_row(row):
            report.problems.append(f"{label}: {problem}")
        shot_id = row.get("shot_id")
        if isinstance(shot_id, str) and shot_id:
            if shot_id in seen:
                report.problems.append(f"{label}: duplicate shot_id (first at row {seen[shot_id]})")
            else:
                seen[shot_id] = index
        if check_uris:
            for column in ("video_uri", "mask_uri"):
                uri = row.get(column)
                if isinstance(uri, str) and uri and (missing := _check_uri(uri, base)):
                    report.problems.append(f"{label}: {column} {missing}")
    if not report.problems:
        report.shots = [ShotSpec.from_row(row, base) for row in rows]


def _check_columns(schema: pa.Schema, problems: list[str]) -> list[str]:
    """Report missing or mistyped columns; return the columns whose rows can still be checked."""
    usable = []
    for name, (is_type, description) in {**REQUIRED, **OPTIONAL}.items():
        if name not in schema.names:
            if name in REQUIRED:
                problems.append(f"missing required column {name!r} ({description})")
            continue
        column_type = schema.field(name).type
        # An optional column that is entirely null is read back as the null type: that is fine.
        # mask_uri too: a manifest of box-only shots has no mask file at all.
        nullable = name in OPTIONAL or name == "mask_uri"
        if is_type(column_type) or (nullable and pa.types.is_null(column_type)):
            usable.append(name)
        else:
            problems.append(f"column {name!r} must be {description}, found {column_type}")
    return usable


def _row_label(index: int, row: Mapping[str, Any]) -> str:
    shot_id = row.get("shot_id")
    return f"row {index} (shot_id {shot_id!r})" if shot_id else f"row {index}"


def _check_row(row: Mapping[str, Any]) -> list[str]:
    problems = []
    for name in REQUIRED:
        if name == "mask_uri" and row.get("boxes") and row.get(name) is None:
            continue  # boxes alone are a mask
        if name in row and (row[name] is None or not str(row[name]).strip()):
            problems.append(f"{name} is empty")
    boxes = row.get("boxes")
    if boxes is not None:
        try:
            parse_boxes(boxes)
        except ValueError as error:
            problems.append(f"boxes: {error}")
    for name in ("feather", "handles"):
        value = row.get(name)
        if value is not None and value < 0:
            problems.append(f"{name} must be >= 0, got {value}")
    output_format = row.get("output_format")
    if output_format is not None and output_format not in {kind.value for kind in OutputKind}:
        choices = ", ".join(kind.value for kind in OutputKind)
        problems.append(f"unknown output_format {output_format!r} (choose one of {choices})")
    shot_id = row.get("shot_id")
    if isinstance(shot_id, str) and (shot_id in (".", "..") or any(c in shot_id for c in "/\\")):
        # It names the shot's output folder: it must be one path segment.
        problems.append("shot_id must not contain '/' or '\\' or be '.' or '..'")
    start, end = row.get("start_frame"), row.get("end_frame")
    if start is not None and start < 0:
        problems.append(f"start_frame must be >= 0, got {start}")
    if end is not None and end <= (start or 0):
        problems.append(f"end_frame ({end}) must be greater than start_frame ({start or 0})")
    mode = row.get("mask_mode")
    if mode is not None and mode not in MASK_MODES:
        problems.append(f"unknown mask_mode {mode!r} (choose one of {', '.join(MASK_MODES)})")
    mask_frame = row.get("mask_frame")
    if mask_frame is not None and mask_frame < 0:
        problems.append(f"mask_frame must be >= 0, got {mask_frame}")
    if mask_frame is not None and end is not None and mask_frame >= end - (start or 0):
        problems.append(f"mask_frame ({mask_frame}) is outside the range's {end - (start or 0)} frames")
    method = row.get("method")
    if method is not None and method not in METHODS:
        problems.append(f"unknown method {method!r} (choose one of {', '.join(METHODS)})")
    preset_name = row.get("preset")
    if preset_name is not None and preset_name not in PRESETS:
        problems.append(f"unknown preset {preset_name!r} (choose one of {', '.join(PRESETS)})")
    iterations = row.get("iterations")
    if iterations is not None and iterations <= 0:
        problems.append(f"iterations must be > 0, got {iterations}")
    dilate = row.get("dilate")
    if dilate is not None and dilate < 0:
        problems.append(f"dilate must be >= 0, got {dilate}")
    output = row.get("output_uri")
    if output is not None and not str(output).strip():
        problems.append("output_uri is empty (leave it null to use --output)")
    return problems


def _check_uri(uri: str, base: str | None = None) -> str | None:
    resolved = resolve_uri(uri, base)
    # Name the resolved location too when it differs, so a wrong base is obvious in the message.
    shown = uri if resolved == uri else f"{uri} (resolved to {resolved})"
    try:
        return None if storage.exists(resolved) else f"not found: {shown}"
    except Exception as error:  # noqa: BLE001  any filesystem error means 'unreadable'; say why
        return f"unreadable: {shown} ({type(error).__name__}: {error})"


def manifest_table(shots: Iterable[ShotSpec]) -> pa.Table:
    """A v1 manifest table for ``shots`` (used by ``manifest init``)."""
    items = list(shots)
    return pa.table(
        {
            "shot_id": pa.array([s.shot_id for s in items], pa.string()),
            "video_uri": pa.array([s.video_uri for s in items], pa.string()),
            "mask_uri": pa.array([s.mask_uri for s in items], pa.string()),
        }
    )


def write_table(table: pa.Table, uri: str) -> None:
    fs, path = storage.filesystem(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "wb") as stream:
        pq.write_table(table, stream)


@dataclass
class Pairing:
    shots: list[ShotSpec]
    unpaired_videos: list[str]


def pair_by_stem(video_dir: str, mask_dir: str) -> Pairing:
    """Pair each video file in ``video_dir`` with the mask of the same stem in ``mask_dir`` (a file
    of any suffix, or a folder of mask images named exactly like the stem)."""
    fs_video, video_path = storage.filesystem(video_dir)
    fs_mask, mask_path = storage.filesystem(mask_dir)
    masks: dict[str, str] = {}
    for entry in sorted(fs_mask.ls(mask_path, detail=True), key=lambda e: e["name"]):
        name = PurePosixPath(entry["name"].rstrip("/")).name
        if name.startswith("."):
            continue
        stem = name if entry.get("type") == "directory" else PurePosixPath(name).stem
        masks.setdefault(stem, storage.join(mask_dir, name))
    shots, unpaired = [], []
    for entry in sorted(fs_video.ls(video_path, detail=True), key=lambda e: e["name"]):
        name = PurePosixPath(entry["name"].rstrip("/")).name
        if entry.get("type") == "directory" or name.startswith("."):
            continue
        stem = PurePosixPath(name).stem
        video_uri = storage.join(video_dir, name)
        if stem in masks:
            shots.append(ShotSpec(shot_id=stem, video_uri=video_uri, mask_uri=masks[stem]))
        else:
            unpaired.append(video_uri)
    return Pairing(shots, unpaired)
