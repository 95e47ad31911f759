"""Work put off until its result is read, run then in the autograd and autocast state of the moment it was put off.

A render whose memory matches come from its cache never reads the memory's keys, so their layout (and, for
an object that reuses another's CFAR weights, the keys and CFAR's projections) is made only if something
reads them: a step whose cached matches are gone, or a saved memory state. That may happen outside the
``inference_mode`` and ``autocast`` the frame was computed in; replayed in the same state, the result is the
one computing it at once would have given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def deferred(fn: Callable[[], T], device_type: str) -> Callable[[], T]:
    """``fn`` wrapped to run, when called, in the grad, inference and autocast state of now."""
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()
    autocast, dtype = _autocast_state(device_type)

    def run() -> T:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.inference_mode(inference))
            stack.enter_context(torch.set_grad_enabled(grad))
            stack.enter_context(torch.autocast(device_type=device_type, dtype=dtype, enabled=autocast))
            return fn()

    return run


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype | None]:
    """(enabled, dtype) of autocast on ``device_type``; torch 2.3 (our floor) has only the per-device calls."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        enabled = torch.is_autocast_enabled(device_type)
        return enabled, (torch.get_autocast_dtype(device_type) if enabled else None)
    if device_type == "cuda":
        enabled = torch.is_autocast_enabled()
        return enabled, (torch.get_autocast_gpu_dtype() if enabled else None)
    if device_type == "cpu":
        enabled = torch.is_autocast_cpu_enabled()
        return enabled, (torch.get_autocast_cpu_dtype() if enabled else None)
    return False, None
