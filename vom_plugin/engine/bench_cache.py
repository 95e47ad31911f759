"""``vom bench --cache``: a cold render against a re-render after only the roto changed, through ``vom render``.

Each render is a ``vom render`` process, as a compositor's Analyze button or a farm task starts one, so the
numbers include the process start, the model load, reading the plates and writing the EXRs: what an artist
waits for. Per repeat: a cold render on an empty cache, then the same shot with the keyframe's roto dilated
(the cache's job: key features and the memory read's matches depend on the pixels only). ``start_s`` is a
third render with everything cached (nothing to compute): the fixed cost of a ``vom render``. The minimum
over repeats is reported (a shared machine only ever adds time), with the CPU seconds of each process.

With ``worker``, the same three renders also run with a ``vom worker`` listening (started by the bench on a
private socket, as an artist or a farm node would start one): ``vom render`` hands them over, and their CPU
seconds are those of the ``vom render`` process plus the worker's during the render.

The shot is a shot file (default: the shipped demo); ``plate_size`` resamples its plates and rotos to
another size and ``length`` extends it (the frames played forward, back, forward...), in a temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vom_plugin import import_oiio
from vom_plugin.engine.shot import Shot, escape_vars
from vom_plugin.errors import InputError
from vom_plugin.locations import MODEL_ALIASES


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _process_cpu(pid: int | None) -> float:
    """CPU seconds of a running process (the bench's worker), 0 for None."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _worker(env: dict[str, str], folder: Path) -> Iterator[int]:
    """A ``vom worker`` on a private socket in ``folder`` (set in ``env`` for the renders); yields its pid."""
    if not Path("/proc/self/stat").exists():
        raise InputError("--worker: the bench reads the worker's CPU time from /proc, which this system lacks")
    folder.mkdir(mode=0o700)
    sock = folder / "w.sock"
    env["VOM_WORKER_SOCKET"] = str(sock)
    proc = subprocess.Popen([sys.executable, "-m", "vom_plugin.cli", "worker", "--idle-exit", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vom worker did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.05)
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def _render(shot_file: Path, env: dict[str, str], worker: int | None = None, **flags: str) -> dict[str, Any]:
    """One ``vom render`` process (handing the render to the ``worker`` of this pid, else --no-worker); wall
    and CPU seconds, and its summary event."""
    args = [x for k, v in flags.items() for x in (f"--{k.replace('_', '-')}", v)]
    return _render_args(shot_file, env, args if worker else [*args, "--no-worker"], worker=worker)


def _pingpong(n: int, length: int) -> list[int]:
    """Indices 0..n-1 forward, back, forward... ``length`` long (a longer shot made of the same frames)."""
    if n == 1:
        return [0] * length
    cycle = list(range(n)) + list(range(n - 2, 0, -1))
    return [cycle[i % len(cycle)] for i in range(length)]


def _resampled(buf: Any, size: tuple[int, int] | None) -> Any:
    oiio = import_oiio()

    if size is None or (buf.spec().width, buf.spec().height) == size:
        return buf
    roi = oiio.ROI(0, size[0], 0, size[1], 0, 1, 0, buf.nchannels)
    return oiio.ImageBufAlgo.resize(buf, roi=roi)


def make_bench_shot(shot: Shot, folder: Path, *, plate_size: tuple[int, int] | None, length: int | None
                    ) -> tuple[Path, Path]:
    """A copy of ``shot`` in ``folder`` (resampled, lengthened); returns (shot file, the dilated roto)."""
    import cv2
    oiio = import_oiio()
    import yaml

    from vom_plugin import io as vio

    seq = vio.open_sequence(shot.plate, shot.frames)
    frames = list(seq.frames)
    kf, roto_path = min(shot.keyframes.items())
    if kf != frames[0]:
        raise InputError(f"--shot: the bench needs the shot's first keyframe on its first frame ({frames[0]}), "
                         f"not {kf}")
    order = _pingpong(len(frames), length or len(frames))
    (folder / "plate").mkdir(parents=True)
    for i, j in enumerate(order):
        src = _resampled(oiio.ImageBuf(str(seq.path(frames[j]))), plate_size)
        if not src.write(str(folder / "plate" / f"p.{i + 1:04d}.exr"), oiio.HALF):
            raise RuntimeError(f"cannot write the bench plate: {oiio.geterror()}")
    first = vio.read_plate(folder / "plate" / "p.0001.exr")
    resampled = folder / "roto_resampled.exr"
    if not _resampled(oiio.ImageBuf(str(roto_path)), plate_size).write(str(resampled), oiio.HALF):
        raise RuntimeError(f"cannot write the bench roto: {oiio.geterror()}")
    mask = vio.read_roto(resampled, tuple(first.size))
    rotos = {}
    for name, m in (("roto", mask), ("dilated", cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)))):
        rotos[name] = folder / f"{name}.0001.exr"
        vio.write_alpha(rotos[name], m.astype(np.float32), first.info)
    def path_of(p: object) -> str:  # final paths: a $ in one is the path's own
        return escape_vars(str(p))

    d = {"plate": path_of(folder / "plate" / "p.####.exr"), "frames": f"1-{len(order)}",
         "keyframes": {1: path_of(rotos["roto"])}, "out": path_of(folder / "out" / "a.####.exr"),
         "colorspace": shot.colorspace, "working_size": shot.working_size, "memory": shot.memory,
         "top_k": shot.top_k, "model": path_of(shot.model), "device": shot.device}
    path = folder / "shot.yaml"
    path.write_text(yaml.safe_dump(d))
    return path, rotos["dilated"]


def _bench_env(threads: int | None) -> dict[str, str]:
    """The renders' environment: this one, ``threads`` as OMP_NUM_THREADS, and no cache size cap (a cap of the
    caller's evicted what the bench measures, and it reported a cache half its size and misses, QA)."""
    env = dict(os.environ)
    env.pop("VOM_CACHE_MAX_GB", None)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def bench_cache(shot: Shot, *, plate_size: tuple[int, int] | None = None, length: int | None = None,
                repeat: int = 3, threads: int | None = None, worker: bool = False) -> dict[str, Any]:
    """Cold render vs a re-render after only the roto changed, through ``vom render``; minimum of ``repeat``.
    ``worker``: also with a ``vom worker`` running (``out["worker"]``: the same numbers)."""
    env = _bench_env(threads)
    env.pop("VOM_WORKER_SOCKET", None)
    modes = ("process", "worker") if worker else ("process",)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        m: {"cold": [], "roto_changed": [], "start": []} for m in modes}
    with tempfile.TemporaryDirectory(prefix="vom-bench-cache-") as tmp, contextlib.ExitStack() as stack:
        shot_file, dilated = make_bench_shot(shot, Path(tmp) / "shot", plate_size=plate_size, length=length)
        made = Shot.from_yaml(shot_file)
        pid = stack.enter_context(_worker(env, Path(tmp) / "worker")) if worker else None
        for i in range(repeat):
            for mode in modes:  # interleaved: both see the same load
                w = pid if mode == "worker" else None
                cache = str(Path(tmp) / f"cache{i}_{mode}")
                flags = {"cache": escape_vars(cache)}  # as flags read paths: a $ of the temporary folder is $$
                runs[mode]["cold"].append(_render(shot_file, env, w, **flags))
                if i == 0 and mode == "process":  # what one render leaves (the re-render adds its own entries)
                    files = list(Path(cache).rglob("*.safetensors"))
                    kinds: dict[str, int] = {}
                    for p in files:
                        kind = "keys" if p.parent.name == "keys" else p.name.split(".")[1]
                        kinds[kind] = kinds.get(kind, 0) + p.stat().st_size
                flags["roto"] = f"{escape_vars(str(dilated))}@1"
                runs[mode]["roto_changed"].append(_render(shot_file, env, w, **flags))
                runs[mode]["start"].append(_render(shot_file, env, w, **flags))
        from vom_plugin import io as vio

        size = vio.read_plate(vio.open_sequence(made.plate, [1]).path(1)).size
        n = len(_frames(made))

    from vom_plugin.engine.frames import geometry

    geo = geometry(size[0], size[1], made.working_size)  # a small plate is enlarged 2x at most (QA: "960" at 320)
    out: dict[str, Any] = {"frames": n, "plate_size": list(size), "working_size": made.working_size,
                           "network_size": list(geo.size), "repeat": repeat,
                           "load_average_1min": os.getloadavg()[0]}
    out.update(_summarise(runs["process"], n))
    if worker:
        out["worker"] = _summarise(runs["worker"], n)
    out["cache_mb_per_frame"] = round(sum(kinds.values()) / max(n, 1) / 1e6, 3)
    out["cache_mb_per_frame_without_states"] = round(sum(v for k, v in kinds.items() if k != "state")
                                                     / max(n, 1) / 1e6, 3)
    out["cache_mb_per_frame_by_kind"] = {k: round(v / max(n, 1) / 1e6, 3) for k, v in sorted(kinds.items())}
    return out


def _summarise(runs: dict[str, list[dict[str, Any]]], frames: int) -> dict[str, Any]:
    """Minimum over the repeats of each kind of render, the speed-ups, the best runs' timings; and a frame's
    wall seconds beyond what a render with nothing to compute takes (process start, model load, reading and
    writing the frames), cold and re-rendered: the speed-up a longer shot tends to."""
    out: dict[str, Any] = {}
    for kind in runs:
        for key in ("wall_s", "cpu_s", "render_s"):
            out[f"{kind}_{key}"] = round(min(r[key] for r in runs[kind]), 3)
    for kind in ("cold", "roto_changed"):
        out[f"{kind}_frame_s"] = round(max(out[f"{kind}_wall_s"] - out["start_wall_s"], 0.0) / max(frames, 1), 4)
    out["speedup_per_frame"] = round(out["cold_frame_s"] / max(out["roto_changed_frame_s"], 1e-9), 2)
    out["speedup"] = round(out["cold_wall_s"] / max(out["roto_changed_wall_s"], 1e-9), 2)
    out["speedup_cpu"] = round(out["cold_cpu_s"] / max(out["roto_changed_cpu_s"], 1e-9), 2)
    out["speedup_in_render"] = round(out["cold_render_s"] / max(out["roto_changed_render_s"], 1e-9), 2)
    out["cold_timings"] = min(runs["cold"], key=lambda r: r["wall_s"])["timings"]
    out["roto_changed_timings"] = min(runs["roto_changed"], key=lambda r: r["wall_s"])["timings"]
    out["roto_changed_cache"] = runs["roto_changed"][0]["cache"]
    out["walls"] = {k: [round(r["wall_s"], 2) for r in v] for k, v in runs.items()}
    return out


def _frames(shot: Shot) -> list[int]:
    from vom_plugin import io as vio

    return list(vio.open_sequence(shot.plate, shot.frames).frames)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """"864x480" -> (864, 480); None stays None."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--plate-size {text!r}: expected WIDTHxHEIGHT, e.g. 864x480") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise InputError(f"--plate-size {text!r}: each side must be 16-8192 pixels")
    return w, h


def run_cache_bench(*, config: str = "lite", model: str = "default", shot_file: str | None = None,
                    device: str = "auto", threads: int | None = None, plate_size: str | None = None,
                    length: int | None = None, repeat: int = 3, worker: bool = False) -> dict[str, Any]:
    """``vom bench --cache``: bench_cache on a shot file (default: the shipped demo shot).

    ``model`` "random" uses seeded random weights of ``config``; else a weights name or path (default: the
    shipped weights, which the published numbers use).
    """
    with _bench_shot(config=config, model=model, shot_file=shot_file, device=device, length=length,
                     repeat=repeat, plate_size=plate_size) as (shot, label, shot_path, size):
        result = bench_cache(shot, plate_size=size, length=length, repeat=repeat, threads=threads, worker=worker)
    result.update({"shot": str(shot_path), "model": label, "device": device,
                   "threads": threads or "torch's default", "openmp_wait": openmp_wait()})
    return result


def openmp_wait() -> str:
    """How the renders' OpenMP threads wait, as they inherit it from this process (``vom_plugin`` chose it from
    the load average when it was imported, unless the user set it): it moves re-render times by 10-40%."""
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        if name in os.environ:
            return f"{name}={os.environ[name]}"
    return "libgomp's default"


@contextlib.contextmanager
def _bench_shot(*, config: str, model: str, shot_file: str | None, device: str, length: int | None, repeat: int,
                plate_size: str | None) -> Iterator[tuple[Shot, str, Path, tuple[int, int] | None]]:
    """The shot a cache or objects bench renders, its weights' label, its file and the plate size, after
    checking the common flags; ``model`` "random" writes seeded random weights of ``config`` for the block."""
    from vom_plugin.locations import demo_dir

    if repeat < 1:
        raise InputError(f"--repeat {repeat}: expected at least 1")
    if length is not None and length < 2:
        raise InputError(f"--length {length}: expected at least 2 frames")
    size = parse_size(plate_size)
    shot_path = Path(shot_file) if shot_file else demo_dir() / "shot.yaml"
    if model not in (*MODEL_ALIASES, "random"):
        # a path from this folder, as `vom render --model` reads it ($SHOW, ~user; not from the shot file's), checked
        # before any render: a bad one was each render's exit 2 raised as a RuntimeError (a traceback)
        from vom_plugin.engine.shot import absolute, expand_user, expand_vars

        model = absolute(expand_user(expand_vars(model, "--model"), "--model"))
    if model != "random":
        from vom_plugin.engine.weights import weights_path
        from vom_plugin.engine.weights_header import read_weights_metadata

        read_weights_metadata(weights_path(model))
    with tempfile.TemporaryDirectory(prefix="vom-bench-model-") as tmp:
        label = model
        if model == "random":
            import torch

            from vom_plugin.engine.weights import save_weights
            from vom_plugin.model import build_model

            torch.manual_seed(0)
            model = str(Path(tmp) / f"{config}.safetensors")
            save_weights(build_model(config), model)
            label = f"{config} (random weights)"
        # a final path (or a shipped name), which from_yaml would expand: a temporary folder's $ is its own
        yield Shot.from_yaml(shot_path, model=escape_vars(model), device=device), label, shot_path, size


def _format_rows(r: dict[str, Any], load: float) -> list[str]:
    return [
        "                           wall s   CPU s   in render()",
        f"  cold cache               {r['cold_wall_s']:7.2f} {r['cold_cpu_s']:7.2f} {r['cold_render_s']:9.2f}"
        f"   {r['cold_timings']}",
        f"  only the roto changed    {r['roto_changed_wall_s']:7.2f} {r['roto_changed_cpu_s']:7.2f} "
        f"{r['roto_changed_render_s']:9.2f}   {r['roto_changed_timings']}",
        f"  nothing to compute       {r['start_wall_s']:7.2f} {r['start_cpu_s']:7.2f} {r['start_render_s']:9.2f}"
        f"   (process start, model load, reading cached steps, writing the EXRs)",
        f"  speed-up                 {r['speedup']:7.2f}x{r['speedup_cpu']:7.2f}x{r['speedup_in_render']:9.2f}x"
        f"   (load average {load:.1f}; walls {r['walls']})",
        f"  a frame beyond the render with nothing to compute: cold {r['cold_frame_s']:.3f} s, re-render "
        f"{r['roto_changed_frame_s']:.3f} s ({r['speedup_per_frame']:.2f}x, what a longer shot tends to)",
    ]


def format_cache_bench(r: dict[str, Any]) -> str:
    w, h = r["plate_size"]
    rc = r["roto_changed_cache"]
    by_kind = ", ".join(f"{k} {v:.2f}" for k, v in r["cache_mb_per_frame_by_kind"].items())
    lines = [
        f"cache bench: {r['shot']} ({r['frames']} frames, {w}x{h}, working size {r['working_size']}: the network "
        f"at {'x'.join(map(str, r['network_size']))}), model "
        f"{r['model']}, device {r['device']}, threads {r['threads']} ({r['openmp_wait']}); each a `vom render` "
        f"process, min of {r['repeat']}",
        *_format_rows(r, r["load_average_1min"]),
        f"  cache after the cold render {r['cache_mb_per_frame']:.2f} MB a frame ({by_kind}; "
        f"{r['cache_mb_per_frame_without_states']:.2f} without memory states, which are saved every "
        f"VOM_STATE_INTERVAL_S and where a render stops short of a pass's end, not per frame)",
        f"  re-render: key features "
        f"{rc['keys_hit']} hits, {rc['keys_miss']} misses; memory matches {rc['affinity_hit']} hits, "
        f"{rc['affinity_miss']} misses",
    ]
    if "worker" in r:
        lines += ["with a `vom worker` running (torch and the weights loaded once; CPU s = the `vom render` process "
                  "+ the worker's during the render; in render() = in the worker)",
                  *_format_rows(r["worker"], r["load_average_1min"])]
    return "\n".join(lines)


# -- vom bench --objects: N objects in one render against N renders of one --------------------------------

def _object_rotos(folder: Path, n: int) -> list[Path]:
    """N different rotos of the bench shot's object at frame 1 (its roto dilated by 0, 4, 8, ... px): distinct
    objects for the cache (same-roto objects would share their steps' entries)."""
    import cv2

    from vom_plugin import io as vio

    first = vio.read_plate(folder / "plate" / "p.0001.exr")
    mask = vio.read_roto(folder / "roto.0001.exr", tuple(first.size)).astype(np.uint8)
    paths = []
    for i in range(n):
        m = cv2.dilate(mask, np.ones((1 + 8 * i, 1 + 8 * i), np.uint8)) if i else mask
        paths.append(folder / f"object{i}.0001.exr")
        vio.write_alpha(paths[-1], m.astype(np.float32), first.info)
    return paths


def bench_objects(shot: Shot, n: int, *, plate_size: tuple[int, int] | None = None, length: int | None = None,
                  repeat: int = 1, threads: int | None = None) -> dict[str, Any]:
    """``n`` objects in one ``vom render`` against ``n`` renders of one object each, every render on an empty
    cache; the minimum of ``repeat`` of each."""
    env = _bench_env(threads)
    runs: dict[str, list[dict[str, Any]]] = {"together": [], "separate": [], "one": []}
    with tempfile.TemporaryDirectory(prefix="vom-bench-objects-") as tmp:
        shot_file, _ = make_bench_shot(shot, Path(tmp) / "shot", plate_size=plate_size, length=length)
        rotos = _object_rotos(Path(tmp) / "shot", n)
        made = Shot.from_yaml(shot_file)
        for i in range(repeat):
            names = [f"object{j}={escape_vars(str(p))}@1" for j, p in enumerate(rotos)]
            cmd_rotos = [x for name in names for x in ("--roto", name)]
            # named rotos over the bench shot's one unnamed object: into files of their own (shot.from_yaml)
            # (paths as flags read them: a $ of the temporary folder's own is written $$)
            folder = escape_vars(str(Path(tmp) / f"t{i}"))
            runs["together"].append(_render_args(shot_file, env, ["--cache", folder, *cmd_rotos,
                                                                  "--out", f"{folder}/a.####.exr", "--no-worker"]))
            separate = [_render_args(shot_file, env, ["--cache", escape_vars(str(Path(tmp) / f"s{i}_{j}")),
                                                      "--roto", f"{escape_vars(str(p))}@1",
                                                      "--no-worker"])
                        for j, p in enumerate(rotos)]
            runs["one"].append(separate[0])
            runs["separate"].append({k: sum(r[k] for r in separate) for k in ("wall_s", "cpu_s", "render_s")}
                                    | {"timings": separate[0]["timings"], "cache": separate[0]["cache"]})
        n_frames = len(_frames(made))
    out: dict[str, Any] = {"objects": n, "frames": n_frames, "working_size": made.working_size, "repeat": repeat,
                           "load_average_1min": os.getloadavg()[0]}
    for kind, rs in runs.items():
        for key in ("wall_s", "cpu_s", "render_s"):
            out[f"{kind}_{key}"] = round(min(r[key] for r in rs), 3)
    for key in ("wall_s", "cpu_s", "render_s"):
        out[f"together_vs_one_{key}"] = round(out[f"together_{key}"] / max(out[f"one_{key}"], 1e-9), 2)
        out[f"together_vs_separate_{key}"] = round(out[f"together_{key}"] / max(out[f"separate_{key}"], 1e-9), 2)
    out["together_cache"] = runs["together"][0]["cache"]
    out["together_timings"] = min(runs["together"], key=lambda r: r["wall_s"])["timings"]
    out["one_timings"] = min(runs["one"], key=lambda r: r["wall_s"])["timings"]
    return out


def _render_args(shot_file: Path, env: dict[str, str], args: list[str], worker: int | None = None
                 ) -> dict[str, Any]:
    """One ``vom render`` process with these flags (repeatable: several --roto); wall and CPU seconds (with
    the CPU seconds of the ``worker`` of this pid meanwhile), and its summary event."""
    cmd = [sys.executable, "-m", "vom_plugin.cli", "render", str(shot_file), "--progress", "json", *args]
    c0, w0, t0 = _child_cpu(), _process_cpu(worker), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - t0, _child_cpu() - c0 + _process_cpu(worker) - w0
    if done.returncode == 2:  # the shot or a flag refused (a device this machine lacks): the user's, said as such
        said = [line for line in done.stderr.strip().splitlines() if "error:" in line]
        raise InputError(said[-1].split("error:", 1)[1].strip() if said else done.stderr.strip()[-2000:])
    if done.returncode != 0:
        raise RuntimeError(f"vom render exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    if worker and "did not take this render" in done.stderr:
        raise RuntimeError(f"the bench's vom worker did not take the render: {done.stderr.strip()[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "cpu_s": cpu, "render_s": summary["elapsed"], "cache": summary["cache"],
            "timings": summary["timings"]}


def run_objects_bench(n: int, *, config: str = "lite", model: str = "default", shot_file: str | None = None,
                      device: str = "auto", threads: int | None = None, plate_size: str | None = None,
                      length: int | None = None, repeat: int = 1) -> dict[str, Any]:
    """``vom bench --objects N``: bench_objects on a shot file (default: the shipped demo shot)."""
    if not 1 <= n <= 16:
        raise InputError(f"--objects {n}: expected 1 to 16 objects")
    with _bench_shot(config=config, model=model, shot_file=shot_file, device=device, length=length,
                     repeat=repeat, plate_size=plate_size) as (shot, label, shot_path, size):
        result = bench_objects(shot, n, plate_size=size, length=length, repeat=repeat, threads=threads)
    result.update({"shot": str(shot_path), "model": label, "device": device, "threads": threads or "torch's default",
                   "openmp_wait": openmp_wait()})
    return result


def format_objects_bench(r: dict[str, Any]) -> str:
    n = r["objects"]
    return "\n".join([
        f"objects bench: {r['shot']} ({r['frames']} frames, working size {r['working_size']}), model {r['model']}, "
        f"device {r['device']}, threads {r['threads']} ({r['openmp_wait']}); each a `vom render` process on an "
        f"empty cache, min of {r['repeat']}",
        "                                 wall s   CPU s   in render()",
        f"  {n} objects in one render      {r['together_wall_s']:7.2f} {r['together_cpu_s']:7.2f} "
        f"{r['together_render_s']:9.2f}   {r['together_timings']}",
        f"  1 object                      {r['one_wall_s']:7.2f} {r['one_cpu_s']:7.2f} {r['one_render_s']:9.2f}"
        f"   {r['one_timings']}",
        f"  {n} separate renders (sum)     {r['separate_wall_s']:7.2f} {r['separate_cpu_s']:7.2f} "
        f"{r['separate_render_s']:9.2f}",
        f"  {n} objects / 1 object        {r['together_vs_one_wall_s']:7.2f}x{r['together_vs_one_cpu_s']:7.2f}x"
        f"{r['together_vs_one_render_s']:9.2f}x   (target for 3 objects: at most 2x)",
        f"  {n} objects / {n} renders       {r['together_vs_separate_wall_s']:7.2f}x"
        f"{r['together_vs_separate_cpu_s']:7.2f}x{r['together_vs_separate_render_s']:9.2f}x"
        f"   (load average {r['load_average_1min']:.1f})",
        f"  one render of {n}: key features computed {r['together_cache']['keys_miss']}, steps computed "
        f"{r['together_cache']['steps_computed']}",
    ])
