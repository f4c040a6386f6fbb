"""Per-run HTML report: one row per shot, for archivists reviewing a batch.

The page is a single self-contained file (inline CSS, no scripts, no remote
fonts) so it opens from a file share or an email attachment, offline, and
still renders years later.  Thumbnails and outputs are linked by relative
hrefs, so the run folder can be moved or copied as a whole.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote as url_quote
from urllib.parse import urlsplit

import cv2
import numpy as np

from archive_inpaint.media.atomic import atomic_file
from archive_inpaint.media.errors import MediaError, quote
from archive_inpaint.media.pixels import to_uint8

STATUSES = ("succeeded", "failed", "skipped")
# Solid badge colours (GitHub's palette): distinct for colour-blind readers
# by lightness as well as hue, and white text stays legible on all three.
BADGE_COLOURS = {"succeeded": "#1a7f37", "failed": "#cf222e", "skipped": "#6e7781"}
THUMBNAIL_WIDTH = 200

_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1f2328; background: #ffffff; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
.meta, .summary { color: #57606a; margin: 4px 0; }
table { border-collapse: collapse; margin-top: 16px; }
th, td { border-bottom: 1px solid #d0d7de; padding: 6px 10px; text-align: left; vertical-align: middle; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; padding: 3px 10px; border-radius: 4px; color: #ffffff;
         font-size: 13px; font-weight: 600; }
%s
img.thumb { width: %dpx; height: auto; display: block; }
.error { color: #82071e; white-space: pre-wrap; max-width: 360px; overflow-wrap: anywhere;
         font-family: monospace; font-size: 12px; }
ul.links { margin: 0; padding-left: 16px; }
.none { color: #8c959f; }
""" % (
    "\n".join(f".badge.{s} {{ background: {c}; }}" for s, c in BADGE_COLOURS.items()),
    THUMBNAIL_WIDTH,
)


@dataclass
class ReportRow:
    """One shot's outcome; None fields are shown as a dash."""

    shot_id: str
    status: str  # "succeeded" | "failed" | "skipped"
    error: str | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    iterations: int | None = None
    train_seconds: float | None = None
    total_seconds: float | None = None
    thumbnail: str | None = None  # href relative to the report
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, relative href)


def write_report(rows: Sequence[ReportRow], path: str | Path, title: str) -> Path:
    """Render the report, stamped with the local time now, and write it atomically."""
    generated_at = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    page = render_report(rows, title, generated_at)
    target = Path(path)
    with atomic_file(target) as temp:
        temp.write_text(page, encoding="utf-8")
    return target


def render_report(rows: Sequence[ReportRow], title: str, generated_at: str) -> str:
    """The complete HTML page; every caller-supplied string is escaped."""
    for row in rows:
        if row.status not in STATUSES:
            raise ValueError(f"shot {row.shot_id!r} has unknown status {row.status!r}")
    body = "\n".join(_render_row(row) for row in rows)
    header = "".join(
        f"<th>{name}</th>"
        for name in ("Status", "Shot", "Frames", "Size", "Iterations", "Training", "Total",
                     "Thumbnail", "Outputs", "Error")
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n"
        f"<p class=\"meta\">Generated {_e(generated_at)}</p>\n"
        f"<p class=\"summary\">{_e(summary_line(rows))}</p>\n"
        f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
        "</body>\n</html>\n"
    )


def summary_line(rows: Sequence[ReportRow]) -> str:
    """E.g. '5 shots: 3 succeeded, 1 failed, 1 skipped' (every status, even at 0)."""
    counts = Counter(row.status for row in rows)
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES)
    noun = "shot" if len(rows) == 1 else "shots"
    return f"{len(rows)} {noun}: {parts}"


def format_duration(seconds: float | None) -> str:
    """'0.4s', '42s', '1m 05s', '2h 03m 09s'; a dash when unknown."""
    if seconds is None:
        return "\u2014"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def relative_href(target: str | Path, report_path: str | Path) -> str:
    """A URL-encoded href from the report's folder to `target` (for thumbnails and links).

    File names with spaces, '#' or '?' would otherwise break the link.
    """
    relative = os.path.relpath(Path(target), Path(report_path).parent)
    return url_quote(Path(relative).as_posix())


def write_thumbnail(frame: np.ndarray, path: str | Path, max_width: int = 240) -> Path:
    """Write one (H, W, 3) RGB frame as an 8-bit PNG or JPEG (by suffix), at most `max_width` wide."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise MediaError(f"cannot write thumbnail {quote(target)}: use a .png, .jpg or .jpeg suffix")
    image = np.asarray(frame)
    if image.ndim != 3 or image.shape[2] != 3 or max_width < 1:
        raise ValueError(f"expected one (H, W, 3) frame and max_width >= 1, got {image.shape}")
    image = np.ascontiguousarray(to_uint8(image))
    height, width = image.shape[:2]
    if width > max_width:
        size = (max_width, max(1, round(height * max_width / width)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise MediaError(f"could not encode thumbnail {quote(target)}")
    with atomic_file(target) as temp:
        temp.write_bytes(encoded.tobytes())
    return target


def _render_row(row: ReportRow) -> str:
    size = f"{row.width}\u00d7{row.height}" if row.width and row.height else None
    cells = [
        f"<td><span class=\"badge {row.status}\">{_e(row.status)}</span></td>",
        f"<td class=\"shot\">{_e(row.shot_id)}</td>",
        _number_cell(row.frames),
        f"<td class=\"num\">{_e(size) if size else _DASH}</td>",
        _number_cell(row.iterations),
        _duration_cell(row.train_seconds),
        _duration_cell(row.total_seconds),
        f"<td>{_thumbnail(row)}</td>",
        f"<td>{_links(row.links)}</td>",
        f"<td>{_error(row.error)}</td>",
    ]
    return f"<tr class=\"{row.status}\">{''.join(cells)}</tr>"


_DASH = "<span class=\"none\">\u2014</span>"


def _number_cell(value: int | None) -> str:
    return f"<td class=\"num\">{_DASH if value is None else _e(str(value))}</td>"


def _duration_cell(seconds: float | None) -> str:
    text = _DASH if seconds is None else _e(format_duration(seconds))
    return f"<td class=\"num\">{text}</td>"


def _thumbnail(row: ReportRow) -> str:
    if not row.thumbnail:
        return _DASH
    href, alt = _e(_relative(row.thumbnail)), _e(f"thumbnail of {row.shot_id}")
    return f"<a href=\"{href}\"><img class=\"thumb\" src=\"{href}\" alt=\"{alt}\"></a>"


def _links(links: list[tuple[str, str]]) -> str:
    if not links:
        return _DASH
    items = "".join(
        f"<li><a href=\"{_e(_relative(href))}\">{_e(label)}</a></li>" for label, href in links
    )
    return f"<ul class=\"links\">{items}</ul>"


def _error(error: str | None) -> str:
    return f"<div class=\"error\">{_e(error)}</div>" if error else ""


def _relative(href: str) -> str:
    """Force a relative href: a file named after a shot such as 'javascript:x' must
    stay a file name, never become a script or remote URL."""
    return f"./{href}" if urlsplit(href).scheme else href


def _e(text: str) -> str:
    """Escape for both element text and double-quoted attribute values."""
    return html.escape(text, quote=True)
