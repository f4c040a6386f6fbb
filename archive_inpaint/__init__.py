"""archive-inpaint: per-shot internal-learning video inpainting at the footage's own resolution."""

__version__ = "0.1.0"
