"""How the training loop runs fast on the device it has, without changing what it learns.

- Mixed precision: bf16 autocast (bf16 has fp32's exponent range, so no loss scaling is needed,
  unlike fp16) where the device computes it natively; "auto" picks it on CUDA GPUs that support it
  and on CPUs with bf16 instructions (AMX or AVX512-BF16; elsewhere bf16 is emulated, slower).
- Channels-last memory layout: the convolution kernels of cuDNN (and oneDNN on CPUs) run fastest on
  NHWC tensors; the network and its inputs are kept in that layout.
- torch.compile of the network, in place (``Module.compile``), so its state_dict, hence the
  checkpoints, keep their plain parameter names.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from archive_inpaint.config import TrainConfig


def training_dtype(train: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for training on ``device``; None: plain fp32."""
    if train.precision == "bf16":
        return torch.bfloat16
    if train.precision == "auto" and has_native_bf16(device):
        return torch.bfloat16
    return None


def has_native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"})


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to tell; fp32 is the safe answer
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def prepare_network(network: nn.Module, train: TrainConfig, device: torch.device) -> nn.Module:
    memory_format = torch.channels_last if train.channels_last else torch.contiguous_format
    network = network.to(device=device, memory_format=memory_format)
    if train.compile:
        # dynamic=False: a shot's batches all have one shape; recompiling for the last, smaller
        # inference batch is cheaper than dynamic-shape kernels for every step.
        network.compile(dynamic=False)
    return network
