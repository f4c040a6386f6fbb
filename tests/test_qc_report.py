"""HTML run report: rendering and escaping, thumbnails, and a real browser rendering."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from archive_inpaint.media.errors import MediaError
from archive_inpaint.qc import ReportRow, render_report, write_report, write_thumbnail
from archive_inpaint.qc.report import format_duration, relative_href

NASTY = '<b>&"x'


class _Rows(HTMLParser):
    """Collects each <tr>'s class and text, and every src/href, from rendered HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str | None, str]] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        values = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v is not None]
        if tag == "tr":
            self._class, self._text = values.get("class"), []

    def handle_endtag(self, tag):
        if tag == "tr" and self._text is not None:
            self.rows.append((self._class, "".join(self._text)))
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def _rows() -> list[ReportRow]:
    return [
        ReportRow(
            shot_id=NASTY, status="succeeded", frames=120, width=1920, height=1080,
            iterations=500, train_seconds=65.2, total_seconds=3723.0,
            thumbnail="thumbs/a b.png", links=[("video", "out/a.mkv"), ("sheet", "out/a.png")],
        ),
        ReportRow(shot_id="shot_2", status="failed", error="MediaError: 'x.mov' <broken> & gone"),
        ReportRow(shot_id="shot_3", status="skipped", links=[("<log>", "javascript:alert(1)")]),
    ]


def test_render_report_escapes_user_data_and_has_one_row_per_shot():
    page = render_report(_rows(), title="Run <1>", generated_at="2024-01-02 03:04")

    assert NASTY not in page and "<broken>" not in page and "<log>" not in page
    assert "&lt;b&gt;&amp;&quot;x" in page and "Run &lt;1&gt;" in page
    parser = _Rows()
    parser.feed(page)
    body = parser.rows[1:]  # the first <tr> is the header
    assert [cls for cls, _ in body] == ["succeeded", "failed", "skipped"]
    assert NASTY in body[0][1]  # escaped in the source, the original text on screen
    assert "MediaError: 'x.mov' <broken> & gone" in body[1][1]
    assert "1m 05s" in body[0][1] and "1h 02m 03s" in body[0][1] and "1920\u00d71080" in body[0][1]
    assert re.search(r"3 shots: 1 succeeded, 1 failed, 1 skipped", page)
    # Self-contained: no scripts, no stylesheets or images from elsewhere.
    assert "script" not in parser.tags and "link" not in parser.tags
    assert all("://" not in url for url in parser.urls)
    assert "./javascript:alert(1)" in parser.urls  # a file name, not a script URL
    assert "thumbs/a b.png" in parser.urls


def test_render_report_counts_and_rejects_unknown_status():
    rows = [ReportRow(shot_id=f"s{i}", status="succeeded") for i in range(4)]
    page = render_report(rows, title="t", generated_at="now")
    assert "4 shots: 4 succeeded, 0 failed, 0 skipped" in page
    assert "1 shot: 1 succeeded, 0 failed" in render_report(rows[:1], title="t", generated_at="now")
    with pytest.raises(ValueError, match="status"):
        render_report([ReportRow(shot_id="s", status="done")], title="t", generated_at="now")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "\u2014"), (0.42, "0.4s"), (42.4, "42s"), (65.2, "1m 05s"), (3723, "1h 02m 03s")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_relative_href_is_relative_and_url_encoded(tmp_path):
    report = tmp_path / "run" / "report.html"
    assert relative_href(tmp_path / "run" / "thumbs" / "a #1.png", report) == "thumbs/a%20%231.png"
    assert relative_href(tmp_path / "other" / "x.mkv", report) == "../other/x.mkv"


def test_write_thumbnail_scales_8bit_and_names_bad_suffix(tmp_path):
    frame = np.full((30, 600, 3), 65535, dtype=np.uint16)
    out = write_thumbnail(frame, tmp_path / "t" / "thumb.png", max_width=120)
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint8 and image.shape == (6, 120, 3) and (image == 255).all()
    assert cv2.imread(str(write_thumbnail(frame[:, :50], tmp_path / "s.jpg"))).shape == (30, 50, 3)
    with pytest.raises(MediaError, match="thumb.gif"):
        write_thumbnail(frame, tmp_path / "thumb.gif")
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["thumb.png"]


# ---------------------------------------------------------------- browser rendering

# Thumbnail colours: far from each other, from the badges and from greys.
THUMB_RGB = [(30, 90, 230), (250, 160, 20), (140, 40, 200)]
BADGE_RGB = {
    "succeeded": (0x1A, 0x7F, 0x37),
    "failed": (0xCF, 0x22, 0x2E),
    "skipped": (0x6E, 0x77, 0x81),
}
ERROR_RGB = (0x82, 0x07, 0x1E)  # .error text


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        reason = "headless Chromium is needed to screenshot the report: install the 'chromium' package"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this must not be skipped)")
        pytest.skip(reason)
    return found


def _screenshot(html_file: Path, png: Path, profile: Path) -> np.ndarray:
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
        "--force-device-scale-factor=1", "--window-size=1200,1600",
        f"--screenshot={png}", html_file.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and png.is_file(), f"chromium failed:\n{result.stderr[-2000:]}"
    image = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert image is not None
    return image[..., ::-1]


def _blobs(image: np.ndarray, rgb: tuple[int, int, int], min_area: int) -> list[tuple[int, int]]:
    """(width, height) of each connected region of `rgb` (within anti-aliasing) of min_area pixels."""
    near = (np.abs(image.astype(np.int16) - np.array(rgb)).max(axis=-1) <= 6).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(near, connectivity=8)
    return [
        (int(stats[i, cv2.CC_STAT_WIDTH]), int(stats[i, cv2.CC_STAT_HEIGHT]))
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= min_area
    ]


def test_report_renders_badges_and_thumbnails_in_chromium(tmp_path):
    _chromium()
    report = tmp_path / "run" / "report.html"
    rows = []
    for index, colour in enumerate(THUMB_RGB):
        frame = np.zeros((45, 80, 3), dtype=np.uint8)
        frame[:] = colour
        thumb = write_thumbnail(frame, tmp_path / "run" / "thumbs" / f"shot {index}.png")
        rows.append(
            ReportRow(
                shot_id=f"shot_{index}", status="succeeded", frames=3, width=80, height=45,
                iterations=10, train_seconds=1.5, total_seconds=70.0,
                thumbnail=relative_href(thumb, report), links=[("video", f"shot_{index}.mkv")],
            )
        )
    rows.append(ReportRow(shot_id="broken <shot>", status="failed", error="MediaError: 'broken.mov'"))
    rows.append(ReportRow(shot_id="empty", status="skipped"))
    write_report(rows, report, title="QC run")

    image = _screenshot(report, tmp_path / "shot.png", tmp_path / "profile")

    for status, expected in (("succeeded", 3), ("failed", 1), ("skipped", 1)):
        badges = _blobs(image, BADGE_RGB[status], min_area=150)
        assert len(badges) == expected, f"{status}: {badges}"
        assert all(w > h >= 12 for w, h in badges)  # badge-shaped, not a stray line
    for colour in THUMB_RGB:
        thumbs = _blobs(image, colour, min_area=1000)
        assert len(thumbs) == 1, f"thumbnail {colour}: {thumbs}"
        width, height = thumbs[0]
        assert abs(width - 200) <= 2 and abs(height - 112) <= 3  # 80x45 shown 200 px wide


def _blob_boxes(image: np.ndarray, rgb: tuple[int, int, int], min_area: int) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) of each connected region of `rgb` (within anti-aliasing), top to bottom."""
    near = (np.abs(image.astype(np.int16) - np.array(rgb)).max(axis=-1) <= 6).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(near, connectivity=8)
    boxes = [
        tuple(int(stats[i, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= min_area
    ]
    return sorted(boxes, key=lambda box: box[1])


def test_a_real_batch_runs_report_renders_one_row_per_shot_in_chromium(tmp_path, tmp_path_factory):
    """The report `archive-inpaint submit` wrote (not hand-built rows), opened from the output
    folder as an archivist would: a badge per shot, and each finished shot's own thumbnail, loaded
    through its relative link, on the same row as its badge."""
    _chromium()  # skip (or fail in CI) before paying for the batch run
    from test_batch_archive_columns import archive_batch_run  # one run shared with that module

    run = archive_batch_run(tmp_path_factory)
    output: Path = run["output"]
    report = output / "report.html"
    assert report.is_file(), run["result"].output

    image = _screenshot(report, tmp_path / "run.png", tmp_path / "profile")

    succeeded = _blob_boxes(image, BADGE_RGB["succeeded"], min_area=150)
    failed = _blob_boxes(image, BADGE_RGB["failed"], min_area=150)
    assert len(succeeded) == 2 and len(failed) == 1, (succeeded, failed)
    assert not _blob_boxes(image, BADGE_RGB["skipped"], min_area=150)
    assert all(w > h >= 12 for _, _, w, h in succeeded + failed)
    rows_y = sorted(y + h / 2 for _, y, _, h in succeeded + failed)
    assert min(b - a for a, b in zip(rows_y, rows_y[1:])) > 20, "badges share a row"
    # The failed shot's error message is shown on its row (dark red monospace text, wrapped to
    # the column's width): between the midpoints to the rows above and below it.
    _, failed_y, _, failed_h = failed[0]
    failed_centre = failed_y + failed_h / 2
    above = max((y for y in rows_y if y < failed_centre), default=None)
    below = min((y for y in rows_y if y > failed_centre), default=None)
    top = 0 if above is None else (above + failed_centre) / 2
    bottom = image.shape[0] if below is None else (below + failed_centre) / 2
    ys, xs = np.nonzero(np.abs(image.astype(np.int16) - np.array(ERROR_RGB)).max(axis=-1) <= 10)
    assert len(ys) > 100, "no error text on the page"
    assert top <= ys.min() and ys.max() <= bottom and xs.min() > 400, (top, bottom, ys.min(), ys.max())
    assert xs.max() < image.shape[1] - 5, "the error text runs off the page"

    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    badge_rows = []
    for shot in ("dash", "plain"):
        thumb = cv2.imread(str(output / shot / f"{shot}.thumb.png"), cv2.IMREAD_GRAYSCALE)
        assert thumb is not None, shot
        shown = (200, round(thumb.shape[0] * 200 / thumb.shape[1]))  # img.thumb is 200 px wide
        template = cv2.resize(thumb, shown, interpolation=cv2.INTER_LINEAR).astype(np.float32)
        scores = cv2.matchTemplate(gray, template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (x, y) = cv2.minMaxLoc(scores)
        assert best > 0.8, f"{shot}'s thumbnail is not on the page (best match {best:.2f})"
        # The badge on the thumbnail's row.
        [row] = [i for i, (_, by, _, bh) in enumerate(succeeded) if y <= by + bh / 2 <= y + shown[1]]
        badge_rows.append(row)
    assert sorted(badge_rows) == [0, 1], "both thumbnails sit on one badge's row"
