"""Evaluation: the paper's matting metrics, regions, baselines and the benchmark runner.

``metrics`` holds raw per-frame measures, ``regions`` the whole frame / unknown bands, ``scores`` the
reference scalings over a clip. Heavier pieces (baselines, the runner, plots) are imported from their
modules so ``import vom_plugin.eval`` stays light.
"""

from vom_plugin.eval.regions import REGIONS, region_mask, unknown_band
from vom_plugin.eval.scores import ALL_METRICS, ClipScores, evaluate_clip, gt_flows, mean_over_clips, units

__all__ = ["ALL_METRICS", "REGIONS", "ClipScores", "evaluate_clip", "gt_flows", "mean_over_clips", "region_mask",
           "unknown_band", "units"]
