"""Quality-control artefacts for reviewing inpainting results."""

from .contact_sheet import write_contact_sheet
from .difference import changed_outside_mask, write_difference_image
from .preview import write_side_by_side_preview
from .report import ReportRow, render_report, write_report, write_thumbnail

__all__ = [
    "ReportRow",
    "changed_outside_mask",
    "render_report",
    "write_contact_sheet",
    "write_difference_image",
    "write_report",
    "write_side_by_side_preview",
    "write_thumbnail",
]
