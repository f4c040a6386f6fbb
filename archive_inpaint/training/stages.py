"""How many resolutions a shot is learnt at, and which (progressive learning, IIVI §3.5).

Stage 1 is the whole-frame engine at the working size. If the footage is much larger, patch
stages follow, each at most ``max_stage_factor`` times larger than the one before, the last at
the footage's own resolution. The intermediate sizes are spaced geometrically so every stage
adds the same share of detail: 640 px -> 3840 px with a factor of at most 4 gives 640, 1568,
3840 (factor 2.45 twice) rather than 640, 2560, 3840.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archive_inpaint.config import ProgressiveConfig
from archive_inpaint.training.working_set import working_size


@dataclass(frozen=True)
class Stage:
    index: int  # 0 = the whole-frame stage
    height: int
    width: int

    @property
    def is_patch_stage(self) -> bool:
        return self.index > 0


def plan_stages(
    height: int, width: int, working_long_side: int, progressive: ProgressiveConfig
) -> list[Stage]:
    """The stages for footage of ``height`` x ``width``: always at least the whole-frame stage."""
    coarse_h, coarse_w = working_size(height, width, working_long_side)
    ratio = max(height, width) / max(coarse_h, coarse_w)
    if progressive.max_stages == 1 or ratio <= progressive.min_stage_factor:
        return [Stage(0, coarse_h, coarse_w)]
    steps = math.ceil(math.log(ratio) / math.log(progressive.max_stage_factor) - 1e-9)
    steps = min(max(steps, 1), progressive.max_stages - 1)
    stages = [Stage(0, coarse_h, coarse_w)]
    for step in range(1, steps):
        scale = ratio ** (step / steps) / ratio  # relative to the full frame
        stages.append(Stage(step, round(height * scale), round(width * scale)))
    stages.append(Stage(steps, height, width))
    return stages
