"""Quality-control artefacts for reviewing inpainting results."""

from .contact_sheet import write_contact_sheet

__all__ = ["write_contact_sheet"]
