"""``vom eval``: score a rendered alpha sequence against ground truth with the paper's metrics."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "eval"
HELP = "score a predicted alpha sequence against ground truth (MAD, MSE, Grad, Conn, dtSSD, ...)"
DESCRIPTION = """Score predicted alphas against ground-truth alphas, frame by frame and on average.

  vom eval --pred out/alpha.####.exr --gt shot/gt.####.exr
  vom eval --pred alpha.%04d.exr --gt gt.%04d.png --frames 1001-1024 --region medium --json

Alphas are read from channel A (or alpha, a single <layer>.A, the only channel, Y, R) of EXR, PNG, TIFF...;
--channel picks the prediction's (hero.A of a render of several objects, which is refused without it).
Regions: whole (the frame; RVM scalings: MAD/MSE x1e3, Grad/Conn /1e3, dtSSD x1e2) or the unknown band of a
trimap dilated from the GT: narrow / medium / wide = 5 / 12 / 20 px (TCVOM scalings). Missing frames,
frames of another size and NaN/Inf predictions are errors that name the frame (exit 2). Predictions outside 0-1
are clipped to it, and so is a ground truth outside 0-1 (with a note); values above 2 or below -1 (a matte of
0-255 codes) are refused. dtSSD and MESSDdt compare adjacent frame
numbers: over the whole frame each with the one before (the first frame counts 0, as RVM's), in a band each with
the one after (the last frame counts 0, as TCVOM's; nothing where the band is empty); a value
not defined for a frame (a neighbour that is not the adjacent frame, an empty band, no solid interior for Core)
shows as "-" (null in JSON), is left out of the mean, and a note on stderr says where."""

# the CLI's list, without importing the eval package (cv2, numpy) to build its parser; a test holds it equal to
# ALL_METRICS
METRIC_CHOICES = ("MAD", "MSE", "Grad", "Conn", "dtSSD", "MESSDdt", "SAD", "SSDA", "Core", "Clear")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pred", required=True, metavar="PATTERN", help="predicted alpha sequence (####, @@@@, %%04d)")
    p.add_argument("--gt", required=True, metavar="PATTERN", help="ground-truth alpha sequence")
    p.add_argument("--frames", metavar="RANGE", help="frames to score, e.g. 1001-1024 (default: every GT frame)")
    p.add_argument("--region", default="whole", choices=("whole", "narrow", "medium", "wide"),
                   help="where to score (default: whole)")
    p.add_argument("--metrics", nargs="+", choices=METRIC_CHOICES, metavar="NAME",
                   help=f"metrics to compute (default: all of {' '.join(METRIC_CHOICES)})")
    p.add_argument("--channel", metavar="NAME", help="the prediction's alpha channel, e.g. hero.A (default: A, "
                   "alpha, or the only <layer>.A)")
    p.add_argument("--gt-channel", metavar="NAME", help="the ground truth's alpha channel (default: --channel's where "
                   "the ground truth has it and it is not a colour channel R, G, B or Y, else as the prediction's "
                   "default)")
    p.add_argument("--json", action="store_true", help="print one JSON object (per-frame and mean)")


def _refuse_gaps(args: argparse.Namespace, frames: list[int]) -> None:
    """Every GT frame is scored by default: a prediction frame between them that the GT lacks is a GT frame missing,
    refused by number as the README promises (it was left out, scored as a clip of fewer frames, without a word).
    Only a hole in the GT's own step counts: a GT on twos is one of every other frame, whatever the prediction's."""
    from vom_plugin.errors import InputError
    from vom_plugin.io import format_frames, open_sequence
    from vom_plugin.io.sequence import is_still

    if is_still(args.pred):  # one file stands for any frame: said when it is read
        return
    try:
        predicted = open_sequence(args.pred, role="").frames
    except InputError:  # no prediction file at all: said when they are read
        return
    have = set(frames)
    if not have & set(predicted):
        # numbered from another start (1-4 against 1001-1004): "no ground truth" then "missing frames" hid that (QA),
        # with another count too (0-4 against 1001-1004, a review); renumbering lines up only as many frames
        how = ("; renumber one" if len(predicted) == len(frames) else
               f" ({len(predicted)} frames against {len(frames)}); check they are of the same shot and frame range")
        raise InputError(f"the prediction {args.pred} is numbered {format_frames(predicted)} and the ground truth "
                         f"{args.gt} {format_frames(frames)}: no frame in common{how}")
    # a hole in the GT's own step (1001, 1003, 1007 on twos lacks 1005): a GT on twos beside a prediction on ones is
    # a GT of every other frame, as hand-made ones are, not a gap (a review)
    step = min((b - a for a, b in zip(frames, frames[1:], strict=False)), default=1)
    missing = [f for f in predicted
               if frames[0] < f < frames[-1] and f not in have and (f - frames[0]) % step == 0]
    if missing:
        raise InputError(f"ground truth {args.gt}: no frame {format_frames(missing)}, where the prediction {args.pred} "
                         f"has one; give --frames to score only the frames both have")
    beyond = [f for f in predicted if f < frames[0] or f > frames[-1]]
    if beyond:  # scored as documented (every GT frame), but a prediction cut short of its ends went unsaid (QA)
        print(f"vom eval: note: prediction frame(s) {format_frames(beyond)} have no ground truth: not scored",
              file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from vom_plugin.eval.clips import read_alpha_sequence
    from vom_plugin.eval.scores import evaluate_clip, units
    from vom_plugin.io import parse_frame_range

    asked = parse_frame_range(args.frames) if args.frames else None
    # the ground truth's channel is --channel's where it has one of that name (hero.A against hero.A)
    frames, gt = read_alpha_sequence(args.gt, asked, role="ground truth", channel=args.gt_channel,
                                     preferred=args.channel, flag="--gt-channel")
    if asked is None:
        _refuse_gaps(args, frames)
    _, pred = read_alpha_sequence(args.pred, frames, role="prediction", size=(gt.shape[2], gt.shape[1]),
                                  channel=args.channel, flag="--channel")
    scores = evaluate_clip(pred, gt, region=args.region, frames=frames, metrics=args.metrics, name=args.pred,
                           gt_name=args.gt)
    for note in scores.notes:
        print(f"vom eval: note: {note}", file=sys.stderr)
    if args.json:
        out = scores.to_dict()
        out.update(pred=args.pred, gt=args.gt)
        print(json.dumps(out, indent=2))
        return 0
    u = units(args.region)
    names = list(scores.mean)
    head = ["frame"] + [f"{m} {u[m]}" for m in names]
    rows = [[str(f)] + [_cell(scores.per_frame[m][i]) for m in names] for i, f in enumerate(frames)]
    rows.append(["mean"] + [_cell(scores.mean[m]) for m in names])
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    print(f"{args.pred} vs {args.gt}: {len(frames)} frame(s), region {args.region}")
    for r in [head] + rows:
        print("  ".join(v.rjust(widths[i]) for i, v in enumerate(r)))
    return 0


def _cell(value: float) -> str:
    return "-" if value != value else f"{value:.4f}"  # NaN: not defined for that frame
