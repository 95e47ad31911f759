"""Device, precision and inference set-up: where the network runs and how.

- ``resolve_device("auto")``: CUDA when available, else the CPU. Asking for CUDA without it is a user error.
- ``inference_context(device)``: ``torch.inference_mode`` everywhere; on CUDA also autocast, bf16 where
  the GPU supports it (same range as fp32: no overflow in the L2 affinities), else fp16.
- ``prepare_model(model, device)``: eval mode, BatchNorm folded into the preceding convs (inference only:
  saves a full pass over every feature map), channels_last memory format on both CPU and CUDA (the 3x3
  convs run faster channels_last on the CPU; tensor cores on CUDA want it too).
- ``oom_guard(working_size)``: a CUDA out-of-memory becomes an InputError that names the working size.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn

from vom_plugin.errors import InputError
from vom_plugin.grammar import parse_device


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """ "auto" | "cpu" | "cuda" | "cuda:N" -> torch.device; InputError for unknown names or missing CUDA."""
    if isinstance(name, torch.device):
        name = str(name)
    text = parse_device(name)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():  # cuda or cuda:N
        raise InputError(
            f"device {name!r}: CUDA is not available on this machine (torch "
            f"{torch.__version__}); use --device cpu or auto"
        )
    dev = torch.device(text)
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(
            f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here "
            f"(cuda:0..cuda:{torch.cuda.device_count() - 1})"
        )
    return dev


# the CPU features that decide which kernels torch and oneDNN run (and so how float sums are split), as Linux's
# /proc/cpuinfo names them
_ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2")


def _cpu_features() -> str:
    """The CPU's vendor and the ``_ISA_FLAGS`` it has (Linux; elsewhere the machine's architecture alone): MKL takes
    other paths on two vendors' CPUs of the same flags."""
    import platform

    vendor, flags = "", None
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                key = line.split(":")[0].strip()
                if key in ("vendor_id", "CPU implementer") and not vendor:
                    vendor = line.split(":", 1)[1].strip()
                if key in ("flags", "Features") and flags is None:  # x86, arm
                    have = set(line.split(":", 1)[1].split())
                    flags = ",".join(flag for flag in _ISA_FLAGS if flag in have)
                if vendor and flags is not None:
                    break
    except OSError:
        pass
    return f"{vendor} {flags}".strip() if flags is not None else platform.machine()


def _fp32_precision(device: torch.device) -> str:
    """How float32 matmuls and convolutions may be computed on ``device`` (a host's
    ``torch.set_float32_matmul_precision('medium')`` lets oneDNN run them in bf16 on a CPU that has it), as torch
    says it; full precision said as "ieee" whichever way it was set ("none", "ieee", or 'highest' set back)."""
    backends = ("mkldnn",) if device.type == "cpu" else ("cuda", "cudnn")
    parts = []
    for name in backends:
        backend = getattr(torch.backends, name, None)
        for op in ("matmul", "conv"):
            said = getattr(getattr(backend, op, None), "fp32_precision", None)
            if said is not None:
                parts.append(f"{name}.{op} {'ieee' if said == 'none' else said}")
    generic = getattr(torch.backends, "fp32_precision", None)  # what a backend's "none" falls back to
    if generic not in (None, "none", "ieee"):
        parts.append(f"all {generic}")
    return ", ".join(parts) or f"matmul {torch.get_float32_matmul_precision()}"  # a torch before fp32_precision


def arithmetic_identity(device: torch.device) -> str:
    """What, beyond vom's code and its settings, decides the float arithmetic of a render on ``device``: torch's version
    and, on the CPU, the kernels it dispatches to (its capability, which ATEN_CPU_CAPABILITY lowers) and the CPU's
    features (oneDNN's choice, which ONEDNN_MAX_CPU_ISA lowers); on CUDA, the GPU, cuDNN and TF32; everywhere, the
    float32 precision a host may have lowered (review: a render in a process that set 'medium' filled the cache with
    bf16 matmuls' results, which plain renders then read). Two machines
    sharing a cache on a farm with two CPU generations gave mattes neither computes cold (a chunk continuing from the
    other's state: up to 4.9e-4, QA): the cache's addresses carry this."""
    import os

    parts = [f"torch {torch.__version__}", f"fp32 {_fp32_precision(device)}"]
    if device.type == "cpu":
        parts += [f"aten {torch.backends.cpu.get_cpu_capability()}", f"cpu {_cpu_features()}"]
        parts += [f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA") if os.environ.get(k)]
    elif device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        parts += [f"gpu {torch.cuda.get_device_name(device)} sm{major}{minor}",
                  f"cudnn {torch.backends.cudnn.version()}",
                  f"tf32 {int(torch.backends.cuda.matmul.allow_tf32)}{int(torch.backends.cudnn.allow_tf32)}"]
    return "; ".join(parts)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `device`, or None for full fp32 (the CPU)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def inference_context(device: torch.device) -> Iterator[None]:
    """inference_mode, plus autocast on CUDA."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        dtype = autocast_dtype(device)
        if dtype is not None:
            stack.enter_context(torch.autocast(device_type="cuda", dtype=dtype))
        yield


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every Conv2d -> BatchNorm2d pair inside nn.Sequential containers (eval statistics). In place."""
    for child in list(module.children()):
        fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        items = list(module)
        for i in range(len(items) - 1):
            conv, bn = items[i], items[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.running_var is not None:
                with torch.no_grad():
                    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                    # a copy, not a new layer: a new one drew random initial weights from the global RNG, which a
                    # host seeds for its own work (QA), and torch's skip_init imports sympy (0.6 s of every render)
                    fused = copy.deepcopy(conv)
                    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
                    fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
                module[i] = fused
                module[i + 1] = nn.Identity()
    return module


def prepare_model(
    model: nn.Module, device: torch.device, *, fold_bn: bool = True, channels_last: bool = True
) -> nn.Module:
    """Ready a model for inference on `device` (see module docstring). Do not train the result."""
    model = model.eval().to(device)
    if fold_bn:
        fold_batchnorm(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def to_input(x: torch.Tensor, device: torch.device, channels_last: bool = True,
             dtype: torch.dtype | None = None) -> torch.Tensor:
    """Move an image/mask batch to the device in the layout prepare_model chose (and to ``dtype``: one copy
    for the conversion and the layout, not two)."""
    if channels_last and x.dim() == 4:
        return x.to(device, dtype=dtype, memory_format=torch.channels_last, non_blocking=True)
    return x.to(device, dtype=dtype, non_blocking=True)


@contextlib.contextmanager
def oom_guard(working_size: tuple[int, int] | int | None = None) -> Iterator[None]:
    """Turn a CUDA out-of-memory into an InputError naming the working size to lower."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as e:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if isinstance(working_size, tuple):
            size = f"{working_size[1]}x{working_size[0]} (WxH)"
        else:
            size = str(working_size) if working_size is not None else "the current one"
        raise InputError(
            f"the GPU ran out of memory at working size {size}: lower --working-size "
            f"(e.g. 720 or 540), free the GPU, or use --device cpu"
        ) from e


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: torch.cuda.max_memory_allocated on CUDA, else the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
