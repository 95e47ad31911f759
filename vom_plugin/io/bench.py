"""Timings of the io layer on a synthetic plate: ``python -m vom_plugin.io.bench [--size 1920x1080]``.

Prints the median wall time of reading a half EXR plate (several compressions), the colour transform to
the network input, reading a roto and writing the alpha. Numbers only: no assertion, the machine may be busy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms of this process, all threads): CPU time suffers less from a busy machine."""
    fn()  # warm-up: OCIO processors, OIIO plugin loading, page cache
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) * 1000.0, statistics.median(cpus) * 1000.0


def run(width: int, height: int, repeat: int) -> list[tuple[str, tuple[float, float]]]:
    from vom_plugin.io import ImageInfo, read_plate, read_roto, to_network, write_alpha, write_exr

    rng = np.random.default_rng(0)
    # A smooth gradient plus grain: compresses like a real plate rather than like noise or flat colour.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width, yy / height, 0.5 * (xx + yy) / (width + height)], axis=2) * 2.0
    rgb = (base + rng.normal(0, 0.02, base.shape)).astype(np.float32)
    alpha = np.clip((xx - width / 3) / (width / 3), 0, 1).astype(np.float32)
    rows: list[tuple[str, tuple[float, float]]] = []
    with tempfile.TemporaryDirectory(prefix="vom-io-bench-") as tmp:
        folder = Path(tmp)
        for compression in ("zip", "dwaa", "piz", "none"):
            path = folder / f"plate_{compression}.exr"
            write_exr(path, rgb, ("R", "G", "B"), compression=compression)
            rows.append((f"read_plate half {compression}", _median_ms(lambda p=path: read_plate(p), repeat)))
        plate = read_plate(folder / "plate_zip.exr")
        rows.append(("to_network ACEScg", _median_ms(lambda: to_network(plate.rgb, "ACEScg"), repeat)))
        rows.append(("to_network lin_rec709", _median_ms(lambda: to_network(plate.rgb, "lin_rec709"), repeat)))
        info = ImageInfo.for_size(width, height)
        write_alpha(folder / "roto.exr", (alpha > 0.5).astype(np.float32), info)
        rows.append(("read_roto", _median_ms(lambda: read_roto(folder / "roto.exr", (width, height)), repeat)))
        for compression in ("zip", "dwaa"):
            target = folder / f"alpha_{compression}.exr"
            rows.append(
                (
                    f"write_alpha {compression}",
                    _median_ms(lambda t=target, c=compression: write_alpha(t, alpha, info, compression=c), repeat),
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vom_plugin.io.bench", description=__doc__)
    parser.add_argument("--size", default="1920x1080", help="plate size WIDTHxHEIGHT (default 1920x1080)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (median printed)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    from vom_plugin import import_oiio

    oiio = import_oiio()

    threads = oiio.get_int_attribute("threads")
    print(f"io bench: {width}x{height} RGB half, median of {args.repeat}, OIIO threads {threads}")
    print(f"  {'':<26} {'wall ms':>9} {'cpu ms':>9}")
    for name, (wall, cpu) in run(width, height, args.repeat):
        print(f"  {name:<26} {wall:9.1f} {cpu:9.1f}")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times grow with it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
