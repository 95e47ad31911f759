"""``vom bench``: per-stage timings of one propagated frame, fps, peak memory, guided vs dense read, and a
memory-flatness check (is memory after N frames the same as after 10? On glibc, malloc's bytes in use). Random
weights and random frames: the cost of the network does not depend on what it has learnt.

Sizes: 480 means 480x864, 1080 means 1080x1920 padded to 1088x1920 (multiples of 16, as the engine pads).
Each frame runs exactly the engine's step (``HSTSG.predict``, ``finish`` + memory write), split into timed stages.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import torch

from vom_plugin.errors import InputError
from vom_plugin.grammar import default, parse_memory_policy, parse_value
from vom_plugin.model import build_model, count_parameters, stack_memory
from vom_plugin.model.memory_read import LevelMemory, dense_topk_read, level_memory, to_rows

from .allocator import heap_mb
from .device import inference_context, peak_memory_mb, resolve_device, to_input
from .memory import MemoryBank
from .propagate import inference_model

SIZES = {480: (480, 864), 1080: (1088, 1920)}
STAGES = ("key_encoder", "memory_read_16", "memory_read_8", "memory_read_4", "cfar", "decoder", "detail",
          "value_encoder")


def current_memory_mb(device: torch.device) -> float:
    """Memory in use now: allocated CUDA memory, or the process's resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_memory_mb(device)


class _Timer:
    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.cpu_ms: dict[str, list[float]] = defaultdict(list)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        self.sync()
        t, c = time.perf_counter(), time.process_time()
        yield
        self.sync()
        self.ms[stage].append((time.perf_counter() - t) * 1000.0)
        self.cpu_ms[stage].append((time.process_time() - c) * 1000.0)


def _dense_ms(
    q: torch.Tensor,
    key_map: torch.Tensor,
    value_map: torch.Tensor,
    frames: int,
    top_k: int,
    timer: _Timer,
    max_queries: int,
) -> tuple[float, bool]:
    """Time a dense top-k read at a fine level over `frames` memory frames; extrapolated linearly in query
    pixels (the dense cost is exactly linear in them) when the map has more than `max_queries` pixels."""
    mem = LevelMemory.cat([level_memory(key_map, value_map, blocked=False)] * frames)
    rows = to_rows(q)
    n = rows.shape[1]
    sub = rows[:, : min(n, max_queries)]
    dense_topk_read(sub[:, :64], mem, top_k)  # warm-up
    with timer("dense"):
        dense_topk_read(sub, mem, top_k)
    ms = timer.ms.pop("dense")[0]
    return ms * n / sub.shape[1], sub.shape[1] < n


def _ships_detail(config: str) -> bool:
    """Whether the shipped weights of ``config`` hold the detail module (True when no weights of it ship)."""
    from safetensors import safe_open

    from vom_plugin.engine.weights import holds_module, read_weights_metadata, weights_path

    try:
        path = weights_path("default")
        if read_weights_metadata(path).get("config") != config:
            return True
        with safe_open(str(path), framework="pt") as f:
            return holds_module(f.keys(), "detail")
    except (InputError, OSError):
        return True


def run_bench(
    config: str = "lite",
    size: int = 480,
    device: str = "auto",
    frames: int = 30,
    top_k: int | None = None,
    memory: str | None = None,
    threads: int | None = None,
    dense_queries: int = 4096,
    detail: bool | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return the result dict (the JSON that ``vom bench --json`` prints).

    ``top_k`` and ``memory`` default to the node definition's (what a render uses); ``detail``: with the learned
    detail residual (model/detail.py) or without; None: as the shipped weights of ``config`` are (with it when
    none ship)."""
    top_k = parse_value("top_k", default("top_k") if top_k is None else top_k, "--top-k")
    memory = parse_memory_policy(default("memory") if memory is None else memory, "--memory").text
    if size not in SIZES:
        raise InputError(f"--size {size}: expected one of {', '.join(map(str, SIZES))}")
    if frames < 12:
        raise InputError(f"--frames {frames}: expected at least 12 (the memory check compares frame 10 with the last)")
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    h, w = SIZES[size]
    torch.manual_seed(0)
    raw = build_model(config)
    if not (_ships_detail(config) if detail is None else detail):
        raw.detail = None
    model = inference_model(raw.eval(), dev)
    stage_names = [s for s in STAGES if s != "detail" or model.detail is not None]
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    timer = _Timer(dev)
    gen = torch.Generator().manual_seed(0)
    pool = [torch.rand(1, 3, h, w, generator=gen) for _ in range(4)]
    mask = torch.zeros(1, 1, h, w)
    mask[..., h // 4 : 3 * h // 4, w // 3 : 2 * w // 3] = 1.0
    bank = MemoryBank(memory)
    history: list = []
    frame_ms: list[float] = []
    frame_cpu_ms: list[float] = []  # process CPU time: on a shared, oversubscribed machine wall time waits
    mem_at: dict[int, float] = {}
    peak_at: dict[int, float] = {}
    heap_at: dict[int, tuple[float, float] | None] = {}
    warmup = 2
    fine_k = model.config.guided_top_k  # the guided 1/8 and 1/4 reads' k (top_k is the 1/16 read's)
    with inference_context(dev):
        image = to_input(pool[0], dev)
        keys = model.encode_key(image)
        m = to_input(mask, dev)
        bank.add(0, model.memory_frame(image, keys, m, m, keyframe=True))
        for t in range(1, frames + 1):
            image = to_input(pool[t % len(pool)], dev)
            timer.sync()
            t0, c0 = time.perf_counter(), time.process_time()
            with timer("key_encoder"):
                keys = model.encode_key(image)
            with timer("memory_read_16"):
                mem = stack_memory(bank.ordered())
                r16, idx = model.read_dense16(keys.key16, mem[0], top_k)
            with timer("memory_read_8"):
                r8, idx = model.read_guided(keys.key8, mem[1], idx, fine_k)
            with timer("memory_read_4"):
                r4, _ = model.read_guided(keys.key4, mem[2], idx, fine_k)
            with timer("cfar"):
                refined, hist = model.refine(keys, (r16, r8, r4), history)
            with timer("decoder"):
                logits, alpha = model.decode(image, keys, refined)
            if model.detail is not None:
                with timer("detail"):
                    model.finish(image, logits, alpha)
            with timer("value_encoder"):
                if bank.writes(t):
                    bank.add(t, model.memory_frame(image, keys, model.memory_mask_of(torch.sigmoid(logits)), alpha))
            history = [hist, *history][: model.config.cfar_frames - 1]
            timer.sync()
            frame_ms.append((time.perf_counter() - t0) * 1000.0)
            frame_cpu_ms.append((time.process_time() - c0) * 1000.0)
            if t in (10, frames):
                mem_at[t] = current_memory_mb(dev)
                # the kernel's high-water mark is brought up to date only as memory is unmapped: it may lag the
                # reading just taken (QA: "peak 596.9 MB", after 12 frames 597.2 MB)
                peak_at[t] = max(peak_memory_mb(dev), mem_at[t])
                heap_at[t] = heap_mb() if dev.type == "cpu" else None
        # guided (1/8 + 1/4) against dense top-k reads at the same levels, same memory
        n_mem = len(bank)
        dense8, ext8 = _dense_ms(keys.key8, keys.key8, r8, n_mem, fine_k, timer, dense_queries)
        dense4, ext4 = _dense_ms(keys.key4, keys.key4, r4, n_mem, fine_k, timer, dense_queries)
    # of the propagation, before the dense comparison above (each reading's peak is at least its memory)
    peak = max(peak_at.values(), default=max(peak_memory_mb(dev), current_memory_mb(dev)))

    def mean(xs: list[float]) -> float:
        xs = xs[warmup:] if len(xs) > warmup else xs
        return sum(xs) / len(xs)

    stages = {s: round(mean(timer.ms[s]), 2) for s in stage_names}
    per_frame = mean(frame_ms)
    guided = stages["memory_read_8"] + stages["memory_read_4"]
    dense = dense8 + dense4
    return {
        "config": config,
        "size": size,
        "device": dev.type,
        "stages_ms": stages,
        "fps": round(1000.0 / per_frame, 3),
        "peak_mem_mb": round(peak, 1),
        "guided_vs_dense": round(dense / guided, 2) if guided > 0 else None,
        "details": {
            "input": f"{w}x{h}",
            "frames": frames,
            "warmup_frames": warmup,
            "threads": torch.get_num_threads() if dev.type == "cpu" else None,
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else _cpu_name(),
            "parameters": count_parameters(raw),
            "frame_ms": round(per_frame, 2),
            "frame_cpu_ms": round(mean(frame_cpu_ms), 2),
            "stages_cpu_ms": {s: round(mean(timer.cpu_ms[s]), 2) for s in stage_names},
            "detail": model.detail is not None,
            "load_average": _loadavg(),
            "guided_read_ms": round(guided, 2),
            "dense_read_ms": round(dense, 2),
            "dense_read_ms_by_level": {"8": round(dense8, 2), "4": round(dense4, 2)},
            "dense_extrapolated": ext8 or ext4,
            "guided_share_of_frame": round(guided / per_frame, 4),
            "memory_policy": memory,
            "top_k": top_k,
            "memory_mb_after_10": round(mem_at.get(10, 0.0), 1),
            "memory_mb_after_n": round(mem_at.get(frames, 0.0), 1),
            "peak_mem_mb_after_10": round(peak_at.get(10, 0.0), 1),
            "peak_mem_mb_after_n": round(peak_at.get(frames, 0.0), 1),
            "heap_in_use_mb_after_10": _heap(heap_at.get(10), 0),
            "heap_in_use_mb_after_n": _heap(heap_at.get(frames), 0),
            "heap_kept_free_mb_after_10": _heap(heap_at.get(10), 1),
            "heap_kept_free_mb_after_n": _heap(heap_at.get(frames), 1),
            "memory_flat": _flat(dev, peak_at.get(10, 0.0), peak_at.get(frames, 0.0), heap_at.get(10),
                                 heap_at.get(frames), mem_at.get(10, 0.0), mem_at.get(frames, 0.0)),
            "bank_frames": n_mem,
            "bank_mb": round(bank.nbytes() / 2**20, 2),
        },
    }


def _heap(stats: tuple[float, float] | None, i: int) -> float | None:
    return None if stats is None else round(stats[i], 1)


def _flat(dev: torch.device, peak10: float, peak_n: float, heap10: tuple[float, float] | None = None,
          heap_n: tuple[float, float] | None = None, rss10: float = 0.0, rss_n: float = 0.0) -> bool:
    """Memory after N frames vs after 10. CUDA's allocator statistics are exact. On the CPU, where glibc says
    what malloc has handed out (``allocator.heap_mb``), that is compared: a leak or a growing bank grows it per
    frame, while the resident set also grows by the freed memory the heap keeps on purpose until it reaches its
    high-water mark, early or late, in steps. The resident set's growth beyond that
    kept memory must stay within 10% too: Python's small objects live outside malloc. Elsewhere the peak RSS,
    within 10%."""
    if dev.type == "cuda":
        return peak_n - peak10 <= 1.0
    if heap10 is not None and heap_n is not None:
        in_use = heap_n[0] - heap10[0] <= max(16.0, 0.05 * heap10[0])
        beyond_kept = (rss_n - rss10) - (heap_n[1] - heap10[1]) <= max(64.0, 0.10 * rss10)
        return in_use and beyond_kept
    return peak_n - peak10 <= max(64.0, 0.10 * peak10)


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    import platform

    return platform.processor() or "cpu"


def format_text(r: dict[str, Any]) -> str:
    d = r["details"]
    lines = [
        f"vom bench: config {r['config']}, {d['input']} ({r['size']}), {r['device']} ({d['device_name']}), "
        f"{d['parameters']:,} parameters, {d['frames']} frames (first {d['warmup_frames']} not averaged)"
    ]
    for s, ms in r["stages_ms"].items():
        lines.append(f"  {s:<16} {ms:9.2f} ms")
    lines.append(
        f"  {'frame':<16} {d['frame_ms']:9.2f} ms   ({r['fps']:.2f} fps; CPU time {d['frame_cpu_ms']:.0f} ms, "
        f"load average {d['load_average']})"
    )
    lines.append(
        f"  guided read (1/8 + 1/4) {d['guided_read_ms']:.2f} ms = {100 * d['guided_share_of_frame']:.1f}% "
        f"of a frame; dense top-k read at the same levels {d['dense_read_ms']:.1f} ms"
        f"{' (extrapolated)' if d['dense_extrapolated'] else ''}: guided is {r['guided_vs_dense']}x faster"
    )
    lines.append(
        f"  peak memory {r['peak_mem_mb']:.1f} MB; memory after 10 frames {d['memory_mb_after_10']} MB, "
        f"after {d['frames']} {d['memory_mb_after_n']} MB "
        f"(peak {d['peak_mem_mb_after_10']} -> {d['peak_mem_mb_after_n']} MB) "
        f"({'flat' if d['memory_flat'] else 'GROWING'}); bank {d['bank_frames']} frames, {d['bank_mb']} MB"
    )
    if d.get("heap_in_use_mb_after_10") is not None:
        lines.append(
            f"  malloc: in use {d['heap_in_use_mb_after_10']} -> {d['heap_in_use_mb_after_n']} MB, freed and kept in "
            f"its heap {d['heap_kept_free_mb_after_10']} -> {d['heap_kept_free_mb_after_n']} MB (the flatness check: "
            f"the first, and the resident set's growth beyond the second)"
        )
    return "\n".join(lines)
