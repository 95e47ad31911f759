"""Per-frame curves of a benchmark clip: MAD and dtSSD for each method (people read curves faster than tables)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from vom_plugin.atomic import atomic_path, check_replaceable
from vom_plugin.eval.runner import ClipResult
from vom_plugin.eval.scores import units

# in the PNG's Software text chunk: a later benchmark knows the plot as one it may replace or remove
PLOT_MARK = "vom benchmark plot"


def is_vom_plot(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a plot a vom benchmark wrote: a regular file ``plot_replaceable`` accepts."""
    p = Path(path)
    try:
        if p.is_symlink() or not p.is_file():
            return False
        with open(p, "rb") as f:
            return plot_replaceable()(f.read(4096))
    except OSError:
        return False


def plot_replaceable() -> Callable[[bytes], bool]:
    """What a plot's path may hold to be written over or removed (``check_replaceable``): a plot vom marked. An
    unmarked Matplotlib PNG of a clip an earlier report listed was taken for one vom wrote before the mark: a user's
    own plot of that name was removed (QA)."""
    return lambda start: PLOT_MARK.encode() in start


def plot_clip(clip: ClipResult, path: str | os.PathLike[str], *, region: str = "whole",
              metrics: Sequence[str] = ("MAD", "dtSSD"), replaceable: Callable[[bytes], bool] | None = None) -> Path:
    """Write a PNG with one panel per metric, one line per method over the clip's frames (atomic write); a file
    at ``path`` must be one ``replaceable`` accepts (default: a plot vom marked)."""
    from vom_plugin.extras import require

    matplotlib = require("matplotlib", "the benchmark's plots (--out)")
    matplotlib.use("Agg")  # no display on farm nodes / CI
    import matplotlib.pyplot as plt

    path = Path(path)
    check_replaceable(path, replaceable or plot_replaceable(), "--out")  # a user's picture of that name
    path.parent.mkdir(parents=True, exist_ok=True)
    u = units(region)
    shown = [m for m in metrics if any(m in s.per_frame for s in clip.scores.values())]
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 2.6 * max(1, len(shown))), sharex=True, squeeze=False)
    for ax, metric in zip(axes[:, 0], shown, strict=True):
        for method, s in clip.scores.items():
            if metric in s.per_frame:
                ax.plot(s.frames, s.per_frame[metric], marker=".", label=f"{method} ({s.mean[metric]:.2f})")
        ax.set_ylabel(f"{metric} {u[metric]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    axes[-1, 0].set_xlabel("frame")
    # frame numbers only: a few frames got ticks at 0.5, 1.5, ... (QA)
    axes[-1, 0].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.suptitle(f"{clip.name}: per-frame error ({region}, {clip.size[0]}x{clip.size[1]}, roto: {clip.roto_source})")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png", metadata={"Software": PLOT_MARK})
    finally:
        plt.close(fig)
    return path
