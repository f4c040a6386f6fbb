"""Compositing in the source's own pixel format, so untouched pixels keep their exact samples.

The network sees RGB, but a 10-bit 4:2:2 master converted to RGB and back is not the same
master: the YUV->RGB->YUV round trip rounds.  So the output frame is built from the *decoded
source frame*, plane by plane, and only samples inside the touched region are taken from the
filled RGB frame converted to that format.  With a lossless codec every other sample is the
source's own, bit for bit, whatever the pixel format (YUV 4:2:0/4:2:2/4:4:4, planar RGB,
packed RGB, 8 to 16 bits).

Subsampled chroma: one chroma sample covers several pixels.  It is replaced only when every
pixel it covers is touched; a sample straddling the hole's edge keeps the source value, so no
pixel outside the hole changes.  The one-pixel fringe inside the edge then pairs new luma with
old chroma, which the dilated mask (and the feather) hide.
"""

from __future__ import annotations

import math

import av
import numpy as np

# FFmpeg's codes for BT.709 and limited ("MPEG") range, and for "unspecified".
BT709 = 1
LIMITED_RANGE = 1
UNSPECIFIED_MATRIX = 2
UNSPECIFIED_RANGE = 0


def rgb_frame(pixels: np.ndarray) -> av.VideoFrame:
    """An (H, W, 3) uint8/uint16 RGB array as a packed RGB VideoFrame."""
    fmt = "rgb48le" if pixels.dtype == np.uint16 else "rgb24"
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=fmt)


def convert(frame: av.VideoFrame, pix_fmt: str, matrix: int | None, colour_range: int | None) -> av.VideoFrame:
    """``frame`` in ``pix_fmt``; a YUV target uses ``matrix`` and ``colour_range`` (None: FFmpeg's
    defaults, BT.601 limited, which is also how an untagged source was decoded)."""
    if frame.format.name == pix_fmt:
        return frame
    if is_rgb_format(pix_fmt):
        return frame.reformat(format=pix_fmt)
    options = {}
    if matrix is not None:
        options["dst_colorspace"] = matrix
    if colour_range is not None:
        options["dst_color_range"] = colour_range
    return frame.reformat(format=pix_fmt, **options)


def frame_matrix(frame: av.VideoFrame, fallback: int | None) -> int | None:
    """The matrix a decoded frame was (or will be) turned into RGB with: its own tag, else the
    stream's (MOV keeps it in the header only), else None (FFmpeg's default)."""
    value = int(frame.colorspace) if frame.colorspace is not None else UNSPECIFIED_MATRIX
    return value if value != UNSPECIFIED_MATRIX else fallback


def frame_range(frame: av.VideoFrame, fallback: int | None) -> int | None:
    value = int(frame.color_range) if frame.color_range is not None else UNSPECIFIED_RANGE
    return value if value != UNSPECIFIED_RANGE else fallback


def is_rgb_format(pix_fmt: str) -> bool:
    return pix_fmt.startswith(("rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr"))


def plane_view(frame: av.VideoFrame, index: int) -> np.ndarray:
    """A writable (rows, row_samples) view of one plane, without the line padding.

    Planar formats give one sample per pixel per plane; packed formats (bgr0, rgb48le) give all
    of a pixel's samples side by side, so a row holds width * samples_per_pixel samples.
    """
    plane = frame.planes[index]
    components = [c for c in frame.format.components if c.plane == index]
    deep = max(c.bits for c in components) > 8
    dtype = np.uint16 if deep else np.uint8
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, -1)
    row_samples = plane.line_size // dtype().itemsize
    per_pixel = _samples_per_pixel(frame.format, index, deep)
    used = plane.width * per_pixel
    assert used <= row_samples, (frame.format.name, index, used, row_samples)
    return rows[:, :used]


def _samples_per_pixel(fmt: av.VideoFormat, plane: int, deep: bool) -> int:
    in_plane = [c for c in fmt.components if c.plane == plane]
    if len(in_plane) == 1:
        return 1
    # Packed: padded bits per pixel covers padding bytes too (bgr0 is 4 bytes, not 3).
    return fmt.padded_bits_per_pixel // (16 if deep else 8)


def plane_mask(touched: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """``touched`` (H, W) reduced to a plane of rows x columns samples: a sample is replaced only
    if every pixel it covers is touched (pixels past the frame edge do not count)."""
    height, width = touched.shape
    if (rows, columns) == (height, width):
        return touched
    step_y, step_x = math.ceil(height / rows), math.ceil(width / columns)
    padded = np.ones((rows * step_y, columns * step_x), dtype=bool)
    padded[:height, :width] = touched
    return padded.reshape(rows, step_y, columns, step_x).all(axis=(1, 3))


# The fill is converted only over the touched pixels' bounding box, grown by this margin and
# aligned to this grid: at 4K a whole-frame conversion of a small hole's fill cost more memory
# than the frame itself (the RGB array, its converted copy, full-frame masks). The margin keeps
# swscale's chroma filter taps and edge handling away from every sample that is used, and the
# alignment keeps chroma subsampling and ordered dither in phase with the whole frame, so the
# samples taken are the ones a whole-frame conversion gives (tests compare the two).
_FILL_MARGIN = 32
_FILL_ALIGN = 64


def touched_box(touched: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the region whose fill is converted, or None if nothing is
    touched: the touched pixels' bounding box, grown and aligned (see ``_FILL_MARGIN``)."""
    rows, columns = np.flatnonzero(touched.any(axis=1)), np.flatnonzero(touched.any(axis=0))
    if rows.size == 0:
        return None
    height, width = touched.shape

    def span(first: int, last: int, size: int) -> tuple[int, int]:
        low = max(0, (first - _FILL_MARGIN) // _FILL_ALIGN * _FILL_ALIGN)
        high = min(size, -(-(last + 1 + _FILL_MARGIN) // _FILL_ALIGN) * _FILL_ALIGN)
        return low, high

    top, bottom = span(int(rows[0]), int(rows[-1]), height)
    left, right = span(int(columns[0]), int(columns[-1]), width)
    return top, bottom, left, right


def composite_region(
    source: av.VideoFrame,
    fill_rgb: np.ndarray | None,
    touched: np.ndarray,
    box: tuple[int, int, int, int] | None,
    pix_fmt: str,
    matrix: int | None = None,
    colour_range: int | None = None,
) -> av.VideoFrame:
    """The source frame in ``pix_fmt`` with the touched samples taken from the fill, given only
    inside ``box`` (``touched_box(touched)``; None when nothing is touched), so a caller reading
    frames from disk never holds a whole filled frame.

    When ``source`` is already in ``pix_fmt`` its untouched samples are returned unchanged.  The
    fill goes to YUV with the matrix and range the source frame was decoded with (its own tags,
    else ``matrix`` / ``colour_range``), so the fill's colours come back as the network made them.
    """
    matrix, colour_range = frame_matrix(source, matrix), frame_range(source, colour_range)
    base = convert(source, pix_fmt, matrix, colour_range)
    if base is source:
        # A decoded frame's buffer may be shared with the decoder's reference frames: copy first.
        base = av.VideoFrame(source.width, source.height, pix_fmt)
        for index in range(len(source.planes)):
            plane_view(base, index)[...] = plane_view(source, index)
    if box is None:
        return base
    top, bottom, left, right = box
    fill = convert(rgb_frame(fill_rgb), pix_fmt, matrix, colour_range)
    region = touched[top:bottom, left:right]
    for index in range(len(base.planes)):
        plane, fill_plane = base.planes[index], fill.planes[index]
        # The box's corner is a multiple of the alignment, so it falls on a sample of every plane.
        row = top * plane.height // source.height
        column = left * plane.width // source.width
        values = plane_view(fill, index)
        mask = plane_mask(region, fill_plane.height, fill_plane.width)
        per_pixel = values.shape[1] // fill_plane.width
        if per_pixel > 1:
            mask = np.repeat(mask, per_pixel, axis=1)
        target = plane_view(base, index)[
            row : row + fill_plane.height, column * per_pixel : (column + fill_plane.width) * per_pixel
        ]
        target[mask] = values[mask]
    return base
