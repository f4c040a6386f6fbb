"""The per-shot internal-learning methods, each a network plus its losses and batch schedule
behind one interface (``base.Method``); the pipeline around them is shared."""

from __future__ import annotations

from archive_inpaint.config import DIPVidFlowConfig, IIVIConfig, LGTSMConfig, MethodConfig
from archive_inpaint.methods.base import Method


def make_method(config: MethodConfig) -> Method:
    """The method a config is for (each method has its own config dataclass)."""
    # Imported here: each method pulls in its own network and losses, which a run of another
    # method does not need to load.
    if isinstance(config, IIVIConfig):
        from archive_inpaint.methods.iivi import IIVIMethod

        return IIVIMethod(config)
    if isinstance(config, DIPVidFlowConfig):
        from archive_inpaint.methods.dip_vid_flow import DIPVidFlowMethod

        return DIPVidFlowMethod(config)
    if isinstance(config, LGTSMConfig):
        from archive_inpaint.methods.lgtsm import LGTSMMethod

        return LGTSMMethod(config)
    raise TypeError(f"no method for a {type(config).__name__}")


__all__ = ["Method", "make_method"]
