"""Cut a shot's frames into spans that a farm can render independently of each other.

Propagation runs outward from each keyframe: frames before the first keyframe come from a backward pass,
frames after the last from a forward pass, and frames between two keyframes from both passes blended
(engine.schedule). A span needs only its own keyframes, so spans run in parallel; inside a span, the
frame chunks resume from the per-shot cache (the memory state at the chunk's edge), so they are cheapest
in propagation order but correct in any order.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vom_plugin.errors import InputError
from vom_plugin.farm.names import farm_name
from vom_plugin.grammar import default
from vom_plugin.io.sequence import format_frames


@dataclass(frozen=True)
class Span:
    """Frames served by the same keyframes. ``keyframes`` are the passes' origins (1 or 2)."""

    frames: tuple[int, ...]
    keyframes: tuple[int, ...]
    kind: str  # "before" (backward pass), "between" (both, blended), "after" (forward pass)

    @property
    def name(self) -> str:
        return f"frames_{_tag(self.frames[0])}_{_tag(self.frames[-1])}"

    @property
    def description(self) -> str:
        first = self.keyframes[0]
        if self.kind == "between":
            passes = f"between keyframes {first} and {self.keyframes[1]} (both passes, blended)"
        else:
            passes = f"{'backward' if self.kind == 'before' else 'forward'} from keyframe {first}"
        return f"frames {compact_range(self.frames)}: {passes}"


def _tag(frame: int) -> str:
    return str(frame) if frame >= 0 else f"m{-frame}"  # step names must not start with '-'


def steps_of(shot: FarmShot, spans: list[Span]) -> tuple[int, int]:
    """(the propagation steps the spans' tasks compute together, those of the shot rendered as one task), every
    object's passes planned as a render plans them. Where objects have keyframes of their own, a span's task
    propagates each object from that object's keyframes, across other spans' frames (QA: 10 objects keyed on 10
    frames, 10 spans: 430 steps against 109)."""
    from vom_plugin.engine.passes import plan_passes

    on_disk: list[int] = []
    if shot.plate:  # a render propagates through every plate frame on disk (review: a shot on twos counted half)
        from vom_plugin.io import open_sequence

        with contextlib.suppress(InputError, OSError):
            on_disk = list(open_sequence(shot.plate).frames)
    timeline = sorted(set(shot.frames) | set(on_disk) | {k for _, kfs in shot.object_keyframes for k in kfs})

    def steps(frames: list[int]) -> int:
        return sum(len(p.frames) for _, kfs in shot.object_keyframes
                   for p in plan_passes(timeline, sorted(kfs), frames))

    return sum(steps(list(s.frames)) for s in spans), steps(list(shot.frames))


def split_spans(frames: list[int], keyframes: list[int]) -> list[Span]:
    """Partition ``frames`` (each frame in exactly one span) by the keyframes that serve them."""
    if not keyframes:
        raise InputError("keyframes: empty; a shot needs at least one keyframe")
    kfs = sorted(set(keyframes))
    frames = sorted(set(frames))
    spans: list[Span] = []
    before = tuple(f for f in frames if f < kfs[0])
    if before:
        spans.append(Span(before, (kfs[0],), "before"))
    for a, b in zip(kfs, kfs[1:], strict=False):
        between = tuple(f for f in frames if a <= f < b)
        if between:
            spans.append(Span(between, (a, b), "between"))
    after = tuple(f for f in frames if f >= kfs[-1])
    if after:
        spans.append(Span(after, (kfs[-1],), "after"))
    return spans


@dataclass(frozen=True)
class Booking:
    """What each render task of a job asks the farm for (``vom farm --cores/--memory``); None: the farm's default.
    ``cores`` is also the render's thread count (OMP_NUM_THREADS in the task's environment): the task uses what it
    booked, not every core of a node that runs others beside it, and on any size of node the same number of threads
    (a chunk continues the one before it only on as many threads)."""

    cores: int | None = None
    memory_gb: int | None = None

    def thread_env(self) -> dict[str, str]:
        return {"OMP_NUM_THREADS": str(self.cores)} if self.cores else {}


NO_BOOKING = Booking()


def compact_range(frames: tuple[int, ...] | list[int]) -> str:
    """Runs of consecutive frames as ``a-b`` joined by commas: valid for Open Job Description range
    expressions, OpenCue frame ranges and ``vom render --frames``."""
    return format_frames(frames, sep=",")


@dataclass(frozen=True)
class FarmShot:
    """What a farm job needs of a shot file: where it is, its frames and keyframes, where frames go."""

    path: Path
    name: str
    frames: list[int]
    keyframes: list[int]
    out: str
    cache: Path | None = None  # None: each worker's own user cache (chunks cannot resume across workers)
    # why that cache is not used, by the rule a render applies (prepare.cache_among_files); None where it is
    cache_unused: str | None = None
    device: str = field(default_factory=lambda: default("device"))  # cuda: the tasks ask the farm for a GPU
    plate: str = ""  # the plate pattern: `vom farm check` compares each output with its plate frame
    channel: str = field(default_factory=lambda: default("channel"))  # the alpha channel each output must hold
    # every output sequence and the channels each of its files must hold (one sequence holding every object's
    # layers, or one per object); empty: ``out`` with ``channel``
    outputs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # each object's keyframes (None: the one unnamed matte), what an output's vom:keyframes must say
    object_keyframes: tuple[tuple[str | None, tuple[int, ...]], ...] = ()
    # each roto file: (the shot's field, its keyframe, its path), checked with the plate before a job is made
    roto_files: tuple[tuple[str, int, Path], ...] = ()
    # the objects each output sequence holds (one sequence per object: that object's; a shared one: all of them),
    # what its files' vom:keyframes must name; empty: not known (not compared)
    output_objects: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # the output channels that are masks (``mask_channel``): a render writes them hard, 0 or 1
    mask_channels: frozenset[str] = frozenset()
    model: str = field(default_factory=lambda: default("model"))  # the weights (a shipped name or a path)

    @property
    def objects_own_keyframes(self) -> bool:
        """Whether the shot's objects have keyframes of their own (the spans are cut at all of them)."""
        return len({kfs for _, kfs in self.object_keyframes}) > 1

    def output_channels(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return self.outputs or ((self.out, (self.channel,)),)


def logical_cwd() -> Path:
    """The working folder as the user's shell names it (``pwd -L``: $PWD where it is this folder), links kept: a
    shell in /show/x/sh010 (a link to /mnt/nas03/...) is there, not on the NAS path the system's own gives (review)."""
    here = os.getcwd()
    pwd = os.environ.get("PWD", "")
    try:
        if pwd and os.path.isabs(pwd) and os.path.samefile(pwd, here):
            return Path(pwd)
    except OSError:
        pass
    return Path(here)


def load_farm_shot(path: str | os.PathLike[str]) -> FarmShot:
    """Load and validate the shot file (engine.shot.Shot); frames default to the plate's frames on disk."""
    from vom_plugin.engine.shot import Shot
    from vom_plugin.io import open_sequence

    # absolute as given, links kept: a farm node may mount only the studio's link (/show/x -> /mnt/nas03/...), and a
    # versioned link (sh010.yaml -> sh010_v003.yaml) is the user's choice of shot (QA: the job named the target);
    # ".." kept too, for the node's system to take as this one does
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = logical_cwd() / p
    shot = Shot.from_yaml(p)
    frames = list(shot.frames) if shot.frames is not None else list(open_sequence(shot.plate, whole=True).frames)
    # a generic file name (shot.yaml, as the Nuke node writes it) says less than its folder's name: the Output's
    # work folder (sh010_alpha_vom), also for the node's frozen copies in <work>/farm/<time>/ (QA: jobs named
    # after the time)
    named = Path(os.path.normpath(p))  # ("../shot.yaml": named after the folder it is in, not "..": review)
    name = named.stem
    if named.stem in ("shot", "vom") and named.parent.name:
        folder = named.parent.parent.parent if named.parent.parent.name == "farm" and \
            named.parent.parent.parent.name else named.parent
        name = folder.name.removesuffix("_vom") or folder.name
    # with several objects, the spans are cut at every object's keyframes: a task renders all the objects of
    # its frames (the shot file holds them all)
    keyframes = sorted({kf for kfs in shot.rotos().values() for kf in kfs})
    from vom_plugin.engine.prepare import cache_among_files

    return FarmShot(path=p, name=farm_name(name), frames=frames, keyframes=keyframes, out=shot.out,
                    cache=shot.cache, cache_unused=None if shot.cache is None else cache_among_files(shot, shot.cache),
                    device=shot.device, plate=shot.plate, channel=shot.channel,
                    outputs=_outputs(shot), output_objects=_output_objects(shot), mask_channels=_mask_channels(shot),
                    model=shot.model,
                    object_keyframes=tuple((n, tuple(sorted(kfs))) for n, kfs in shot.rotos().items()),
                    roto_files=tuple(("keyframes" if n is None else f"objects.{n}", kf, path)
                                     for n, kfs in shot.rotos().items() for kf, path in sorted(kfs.items())))


def check_plate(shot: FarmShot) -> str | None:
    """InputError, before a job is made, for what every task of it would fail on: a requested frame or a
    keyframe the plate does not have, a roto file that is missing or not an image (``vom render`` says the same,
    on the farm, after submission: every task exited 2). A plate with no frame here (still rendering upstream, the
    job made to wait for it; or not mounted on this machine) is not checked, nor are the rotos then: returns the
    note that says so."""
    from vom_plugin.io import open_sequence
    from vom_plugin.io.sequence import check_pattern

    try:  # a pattern no render can read fails every task, whatever is on disk here (it was a note: QA)
        check_pattern(shot.plate)
    except InputError as e:
        raise InputError(f"{shot.path}: plate: {e}") from None
    try:
        on_disk = open_sequence(shot.plate)
    except InputError as e:
        return f"the plate is not checked against the job's frames here ({e})"
    if on_disk.is_single_file:
        return None
    have = set(on_disk.frames)
    for name, kfs in shot.object_keyframes:
        for kf in kfs:
            if kf not in have:
                field = "keyframes" if name is None else f"objects.{name}"
                raise InputError(f"{shot.path}: {field}: frame {kf} is not a frame of the plate {shot.plate} "
                                 f"(frames on disk: {compact_range(sorted(have))})")
    open_sequence(shot.plate, list(shot.frames))  # lists the requested frames the plate lacks
    # what every render of a span reads, from its keyframe to its frames: a hole in the plate there, or a frame of
    # another size (a slate taken in with the frames on disk), fails the tasks that cross it, as `vom render` says
    from vom_plugin.engine.shot_plate import plate_heads, read_spans
    from vom_plugin.io import plate_info

    first = shot.frames[0]
    keyframes = [sorted(kfs) for _, kfs in shot.object_keyframes]
    try:
        first_info = plate_info(on_disk.path(first))
        heads = plate_heads(shot.plate, on_disk, read_spans(on_disk, list(shot.frames), keyframes), first,
                            first_info, shot.keyframes)
    except InputError as e:
        raise InputError(f"{shot.path}: {e}") from None
    from vom_plugin.engine.shot import Shot

    check_roto_files(shot)
    # their pixels, as a render reads them (QA: a truncated roto, an empty one and one that covers the whole frame
    # passed the headers above, and every task of the job exited 2 on them)
    from vom_plugin.engine.prepare import keyframe_windows, plate_view, read_rotos
    from vom_plugin.engine.shot_plate import shot_picture

    full = Shot.from_yaml(shot.path)
    try:
        read_rotos(full, first_info, keyframe_windows(full, heads), shot_picture(on_disk, heads, first_info, []), [],
                   plate_view(on_disk.path(first)))
    except InputError as e:
        raise InputError(f"{shot.path}: {e}") from None
    return None


def check_out_folders(shot: FarmShot) -> None:
    """InputError, before a job is made, where an output's folder cannot be made because a file stands in its path,
    or where it names the plate's own sequence (every task exited 2 on it). Nothing more is asked of the folders
    here, nor are they made: the farm's storage may be mounted only on the workers (a link to it dangles here) and
    written by another user. Output files that are here are checked as a render checks them: one a render refuses
    (another tool's, locked, or vom's of objects the shot no longer has) failed every task rendering it (QA)."""
    from vom_plugin.io.output_guard import check_not_plate_sequence, existing_problem, nearest_existing
    from vom_plugin.io.sequence import frame_path

    held = dict(shot.output_objects)
    for pattern, _ in shot.output_channels():
        writes = frozenset(held[pattern]) if pattern in held else None
        # what holds whichever user renders (the farm's account may own what the artist cannot read: review), and
        # no plate compared (that hashes plate frames; a task says it)
        refused = [(f, why) for f in shot.frames
                   if (why := existing_problem(frame_path(pattern, f), f, writes, anyone=True))]
        if refused:
            f, why = refused[0]
            more = f" (and {len(refused) - 1} more frame{'s' if len(refused) > 2 else ''})" if len(refused) > 1 else ""
            raise InputError(f"{shot.path}: out: frame {f}{more} {why}; every task rendering "
                             f"{'them' if more else 'it'} would fail (exit 2)")
        try:  # the plate's sequence under another padding: every task refused it (review)
            if shot.plate:
                check_not_plate_sequence(pattern, shot.plate)
        except InputError as e:
            raise InputError(f"{shot.path}: {e}") from None
        probe = nearest_existing(Path(pattern).parent)
        if os.path.isfile(probe):
            raise InputError(f"{shot.path}: out {pattern}: {probe} is a file, so the output folder cannot be made "
                             f"there; every task would fail on it")


def _outputs(shot: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each output pattern of ``shot`` and the channels its files hold (alpha, and mask when written)."""
    from vom_plugin.grammar import object_channel

    out = []
    for name, pattern in shot.out_patterns().items():
        names = list(shot.objects) if (shot.objects is not None and name is None) else [name]
        one = len(names) == 1 and (shot.objects is None or name is not None)  # a single matte: as today
        chans = []
        for n in names:
            key = None if one else n
            chans.append(shot.channel if one else object_channel(shot.channel, key, "A"))
            if shot.mask_channel:
                chans.append(object_channel(shot.channel, key, shot.mask_channel))
        out.append((pattern, tuple(chans)))
    return tuple(out)


def _mask_channels(shot: Any) -> frozenset[str]:
    """The mask channels among ``_outputs``' channels."""
    from vom_plugin.grammar import object_channel

    if not shot.mask_channel:
        return frozenset()
    # one object's file (an {object} sequence, or a single matte) names its mask without the object (review: an
    # {object} sequence's soft masks passed)
    names = [None, *(shot.objects or ())]
    return frozenset(object_channel(shot.channel, n, shot.mask_channel) for n in names)


def _output_objects(shot: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each output pattern of a shot of named objects and the objects its files hold; () for one unnamed matte."""
    if shot.objects is None:
        return ()
    return tuple((pattern, tuple(shot.objects) if name is None else (name,))
                 for name, pattern in shot.out_patterns().items())


def default_vom() -> str:
    """The ``vom`` of the environment running this (farm workers are expected to see the same path)."""
    exe = Path(sys.executable).parent / ("vom.exe" if os.name == "nt" else "vom")
    return str(exe)


class OutputProblem(str):
    """What is wrong with a frame's output (a str: the reason, after the file's name when a shot writes one
    sequence per object), with the file (``path``) and whether it is simply not there (``missing``)."""

    path: Path
    missing: bool
    replaced: bool  # a render replaces the file (vom's earlier output of the frame); else it must be moved away
    paths: tuple[Path, ...]  # every file of the frame it is about (each object's missing one): ``path`` first
    plate: bool  # its plate frame cannot be read: a render of it fails too (exit 2), a requeue alone does not help

    def __new__(cls, text: str, path: Path, missing: bool, replaced: bool = True,
                paths: tuple[Path, ...] = (), plate: bool = False) -> OutputProblem:
        obj = super().__new__(cls, text)
        obj.path, obj.missing, obj.replaced, obj.paths, obj.plate = path, missing, replaced, paths or (path,), plate
        return obj

    def __reduce__(self) -> tuple[Any, ...]:  # pickled and copied with its fields (its __new__ takes them)
        return (type(self), (str(self), self.path, self.missing, self.replaced, self.paths, self.plate))


class _Redelivered(str):
    """``_stamp_problem``'s reason for a frame matted from other bytes than its plate frame's file now."""


def other_objects_note(shot: FarmShot) -> str | None:
    """What a render of the shot warns of an ``{object}`` output: files of an object the shot no longer has beside its
    outputs (an earlier render's), whose mattes were not shared out with this shot's objects: where they overlap,
    the alphas sum above 1 (QA: the render said so in a task's log, and the job's check passed)."""
    from vom_plugin.engine.shot import OBJECT_TOKEN
    from vom_plugin.io import open_sequence
    from vom_plugin.io.output_guard import other_objects_files

    names = [n for n, _ in shot.object_keyframes if n]
    if OBJECT_TOKEN not in shot.out or not names:
        return None
    inputs: list[str | os.PathLike[str]] = [p for _, _, p in shot.roto_files]
    with contextlib.suppress(InputError):
        on_disk = open_sequence(shot.plate)
        inputs += [on_disk.path(f) for f in on_disk.frames]
    found = other_objects_files(shot.out, OBJECT_TOKEN, names, inputs)
    if not found:
        return None
    said = "; ".join(f"{len(files)} of object {name!r} ({files[0]}{', ...' if len(files) > 1 else ''})"
                     for name, files in sorted(found.items()))
    return (f"files of objects this shot does not have are beside its outputs: {said}: an earlier render's, whose "
            f"mattes were not shared out with this shot's objects, so where they overlap the alphas may sum above 1; "
            f"delete them if that object is gone, or render it in this shot")


def check_outputs(shot: FarmShot, notes: list[str] | None = None) -> dict[int, OutputProblem]:
    """Frame -> what is wrong with its output file (missing, not a readable EXR, not the plate's size, no
    alpha channel, not this version of the shot's); empty when every frame is complete. The farm job's last step
    fails on any; a shot whose weights or rotos cannot be read here is an InputError (``check_recipe_inputs``).
    ``notes`` receives what else could not be checked (the recipe, where a keyframe's plate frame cannot be read)."""
    from vom_plugin.io import existing_frame_path, frame_path, open_sequence, read_info
    from vom_plugin.io.verify import output_problem

    if shot.plate:  # a plate moved or not mounted: every task exits 2 on it, which a requeue does not help (QA: a
        try:  # line a frame, "its plate frame cannot be read", then "requeue the tasks"): said once, as a render does
            open_sequence(shot.plate)
        except InputError as e:
            raise InputError(f"{shot.path}: {e}") from None
    check_recipe_inputs(shot)
    problems: dict[int, OutputProblem] = {}
    other = other_objects_note(shot)
    if other and notes is not None:
        notes.append(other)
    many = len(shot.output_channels()) > 1
    recipes, picture = _Once(shot, _recipe, (InputError, OSError, KeyError)), _Once(shot, _picture)
    exposure, colour = _Once(shot, _exposure), _Once(shot, _rgb_colour)
    settings = _Once(shot, _settings)  # read once, for the frames whose recipe differs (each parsed the file again)
    through = _Through(shot)
    objects_of = dict(shot.output_objects)
    redelivered: dict[int, float] = {}  # frames matted from other bytes than their plate frame's now: output time
    exact: set[tuple[int, str]] = set()  # (frame, output pattern) whose vom:through the check compared with the plate
    unstamped: set[int] = set()  # frames that passed but say nothing of the arithmetic that computed them
    for f in shot.frames:
        expected = None
        # every object's missing file is named (QA: a renamed object's files, none on disk, went unsaid behind the
        # first object's stale file, and --json listed no frame as missing), and a file beside them that a render does
        # not replace is said before them: a requeue alone would fail on it again (review)
        gone: list[Path] = []
        found: OutputProblem | None = None
        found_at: float | None = None  # its output's time, where it was matted from a plate frame delivered again
        found_shared = False  # found is _Shared's: stale only through another object's roto
        for pattern, channels in shot.output_channels():
            out = Path(frame_path(pattern, f))
            where = f"{out.name}: " if many else ""
            if not out.is_file():
                gone.append(out)
                continue
            if found is not None and (not found.replaced or (shot.plate and expected is None)):
                continue  # a refusal found, or no plate frame to compare with: the other files' presence only
            if expected is None and shot.plate:
                try:
                    expected = read_info(existing_frame_path(shot.plate, f))
                except InputError as e:
                    found = OutputProblem(f"its plate frame cannot be read to compare with ({e})", out, False,
                                          plate=True)
                    continue
            problem = next((p for c in channels
                            if (p := output_problem(out, expected, c, hard=c in shot.mask_channels))), None)
            if not problem:
                meta = read_info(out).metadata
                problem = _stamp_problem(meta, f, shot, recipes, expected.path if expected is not None else None,
                                         objects_of.get(pattern), picture if shot.plate else None,
                                         exposure if shot.plate else None, Path(out), settings, through)
                if not problem and shot.plate and str(meta.get("vom:output", "alpha")) != "alpha":
                    problem = _colour_problem(meta, colour)
                if not problem and "vom:arithmetic" not in meta:
                    unstamped.add(f)
                if "vom:through" in meta and f in through.compared:  # compared, not skipped (review: a plate
                    exact.add((f, pattern))  # frame unreadable here passed a stale frame)
            if problem:
                replaced = _replaced(out, f, objects_of.get(pattern), shot.plate)
                # the file of the object whose roto changed before another's that shares its pixels (QA)
                rather = found is not None and found.replaced == replaced and found_shared \
                    and not isinstance(problem, _Shared)
                if found is None or (found.replaced and not replaced) or rather:
                    found, found_at = OutputProblem(where + problem, out, False, replaced), None
                    found_shared = isinstance(problem, _Shared)
                    if isinstance(problem, _Redelivered):
                        with contextlib.suppress(OSError):
                            found_at = out.stat().st_mtime
        if found is not None and (not found.replaced or not gone):
            if gone:
                found = OutputProblem(f"{found}; {', '.join(p.name for p in gone)} missing too", found.path, False,
                                      found.replaced, plate=found.plate)
            problems[f] = found
            if found_at is not None:
                redelivered[f] = found_at
        elif gone:
            problems[f] = OutputProblem(f"{', '.join(p.name for p in gone) + ': ' if many else ''}missing", gone[0],
                                        True, paths=tuple(gone))
    if shot.plate:
        _stale_through(shot, problems, redelivered, through, exact)
    if colour.unavailable and notes is not None:
        notes.append(f"rgba outputs' colour tags not compared with the shot's: {colour.unavailable}")
    if recipes.unavailable and notes is not None:
        notes.append(f"outputs not compared with the shot's rotos, settings and weights (vom:recipe): "
                     f"{recipes.unavailable}")
    unstamped -= set(problems)
    if unstamped and notes is not None:  # (QA: such a folder read as wholly this version's)
        from vom_plugin.io import format_frames

        notes.append(f"frame{'s' if len(unstamped) > 1 else ''} {format_frames(sorted(unstamped))} carr"
                     f"{'y' if len(unstamped) > 1 else 'ies'} no vom:arithmetic (vom before session 48 rendered "
                     f"{'them' if len(unstamped) > 1 else 'it'}): not compared with this vom's arithmetic; render "
                     f"again to be sure every frame is this version's")
    if notes is not None:  # a task killed mid-write on another node: its temporary is there until a render
        from vom_plugin.atomic import OTHER_HOST_STALE_S, temporaries_of  # an hour later removes it

        for pattern, _ in shot.output_channels():
            names = [Path(frame_path(pattern, f)).name for f in shot.frames]
            left = temporaries_of(Path(frame_path(pattern, shot.frames[0])).parent, names) if names else []
            if left:
                notes.append(f"{len(left)} temporary file(s) beside the frames (e.g. {left[0]}): a write in progress, "
                             f"or a killed one's (not frames); the next render removes a killed one's once it is "
                             f"{OTHER_HOST_STALE_S / 3600:g} h old (or delete them when no render runs)")
    return problems


def check_recipe_inputs(shot: FarmShot) -> None:
    """InputError, naming the shot file, the field and the file, where the shot's weights or one of its rotos cannot
    be read here (missing, unreadable, not a weights file or not an image): the outputs' ``vom:recipe`` is a digest
    of their contents, so without them no output can be told to be this version of the shot's, and a render of the
    shot fails on them too (QA: the check passed, exit 0, a job that could not be verified, on a stderr warning
    with a raw ``[Errno 2]``)."""
    from vom_plugin.engine.weights_header import read_weights_metadata
    from vom_plugin.locations import weights_path

    why = ("the outputs' recipe (vom:recipe: the shot's rotos, settings and weights) cannot be checked without it, "
           "and a render of the shot fails on it too")
    try:
        read_weights_metadata(weights_path(shot.model))
    except InputError as e:  # its own words name the file (and a shipped model's name: "model 'lite': ...")
        raise InputError(f"{shot.path}: {'' if str(e).startswith('model ') else 'model: '}{e}; {why}") from None
    check_roto_files(shot, f"; {why}")


def check_roto_files(shot: FarmShot, why: str = "") -> None:
    """InputError, naming the shot file, the field and the file (then ``why``), for a roto file that is missing or
    not an image: ``check_plate`` before a job is made, ``check_recipe_inputs`` before outputs are compared."""
    from vom_plugin.engine.shot import check_roto_file
    from vom_plugin.io import read_info

    for field_name, kf, path in shot.roto_files:
        try:
            check_roto_file(field_name, kf, path)
        except InputError as e:
            raise InputError(f"{shot.path}: {e}{why}") from None
        try:
            read_info(path)
        except InputError as e:
            raise InputError(f"{shot.path}: {field_name}: roto file {path} (frame {kf}): {e}{why}") from None


def _replaced(path: Path, frame: int, objects: tuple[str, ...] | None, plate: str = "") -> bool:
    """Whether a render of the frame replaces the file at ``path`` (``output_guard.replace_problem``): the check's
    advice was to move every bad file away, where a requeued task replaces vom's own (QA)."""
    from vom_plugin.io.output_guard import replace_problem

    try:
        locked = not os.stat(path).st_mode & 0o222
    except OSError:
        return False
    return replace_problem(path, frame, locked=locked, objects=frozenset(objects) if objects else None,
                           plate=plate or None) is None


def _stale_through(shot: FarmShot, problems: dict[int, OutputProblem], redelivered: dict[int, float],
                   through: _Through | None = None, exact: set[tuple[int, str]] | frozenset = frozenset()) -> None:
    """The frames matted through a plate frame's earlier picture, added to ``problems``. A pass carries a frame's
    picture in its memory on to the frames it reaches after it, up to the next keyframe (between two keyframes both
    passes are blended: every frame between them; a keyframe's picture is in the memory of its passes); objects are
    aggregated where their alphas overlap, so a frame any object's pass carried it to is stale in every object's
    file. A re-delivered frame left those frames stale with stamps that pass: the check flagged it alone, and after
    its task was requeued passed frames 0.095 off (QA). The plate frames that count are those whose output is of
    other bytes (``redelivered``: frame -> that output's time; also frames outside the checked ones that checked
    frames were matted through); of the frames they reach, those written before the file changed, by its times, or
    all of them where its times are older than its output (a version swapped in by a link or a folder rename).
    Once a changed frame's own output was rendered again, nothing tells a change of its bytes from a touch or a copy
    of the same ones: the first check lists them all. Outputs whose ``vom:through`` was compared (``exact``: (frame,
    pattern)) are not judged by times: their stamp names the bytes they were matted through (QA: frames rendered
    after a version swapped in by a folder link, equal to a cold render of it, failed as rendered before it)."""
    from vom_plugin.io import existing_frame_path, frame_path, open_sequence

    checked = sorted(shot.frames)
    if not checked or not shot.object_keyframes:
        return
    seeds = dict(redelivered)
    with contextlib.suppress(InputError, OSError):  # frames outside the checked ones that checked frames read
        asked = set(checked)
        outside = [p for p in open_sequence(shot.plate).frames
                   if p not in asked and _read_before(p, checked, shot)]
        for p in outside:
            when = _redelivered_output(shot, p, through)
            if when is not None:
                seeds[p] = when
    changed: dict[int, float] = {}
    for p, output_time in seeds.items():
        try:
            st = os.stat(existing_frame_path(shot.plate, p))
        except (OSError, InputError):
            continue
        t = max(st.st_mtime, st.st_ctime)  # a copy that kept the file's times changed its ctime
        changed[p] = t if t > output_time else math.inf  # other bytes under older times: when is not known
    if not changed:
        return
    reached: dict[int, tuple[float, int]] = {}
    for _, kfs in shot.object_keyframes:
        for f, source in _carried(checked, sorted(kfs), changed).items():
            if f not in reached or source[0] > reached[f][0]:
                reached[f] = source
    many = len(shot.output_channels()) > 1
    objects_of = dict(shot.output_objects)
    for f in sorted(reached):
        t, p = reached[f]
        if f in problems:
            continue
        for pattern, _ in shot.output_channels():
            if (f, pattern) in exact:
                continue
            out = Path(frame_path(pattern, f))
            try:
                if os.stat(out).st_mtime >= t:
                    continue
            except OSError:
                continue
            problems[f] = OutputProblem(
                f"{out.name + ': ' if many else ''}matted through plate frame {p}, which was changed or delivered "
                f"again after this frame was rendered (a pass carries a frame's picture on to the frames it reaches "
                f"next, up to a keyframe)", out, False, _replaced(out, f, objects_of.get(pattern), shot.plate))
            break


def _carried(frames: list[int], kfs: list[int], changed: dict[int, float]) -> dict[int, tuple[float, int]]:
    """Frame (of ``frames``) -> the latest (time, plate frame) of ``changed`` whose picture one object's passes from
    ``kfs`` carried to it; its keyframes' own frames are not (each comes from its own forward pass, which starts
    there)."""
    out: dict[int, tuple[float, int]] = {}

    def latest(a: tuple[float, int] | None, p: int) -> tuple[float, int] | None:
        return (changed[p], p) if p in changed and (a is None or changed[p] > a[0]) else a

    def reach(f: int, source: tuple[float, int] | None) -> None:
        if source is not None and f not in kfs:
            out[f] = source

    wanted = set(frames)
    order = sorted(wanted | set(changed))  # the changed frames lie on the way, checked or not
    src = latest(None, kfs[0])  # before the first keyframe, its backward pass: each frame from those after it
    for f in reversed([f for f in order if f < kfs[0]]):
        if f in wanted:
            reach(f, src)
        src = latest(src, f)
    src = latest(None, kfs[-1])  # after the last, its forward pass: each frame from those before it
    for f in [f for f in order if f > kfs[-1]]:
        if f in wanted:
            reach(f, src)
        src = latest(src, f)
    for k1, k2 in zip(kfs, kfs[1:], strict=False):  # between two: both passes, every frame of the span
        inside = [f for f in order if k1 < f < k2]
        ranked = sorted(((changed[p], p) for p in (k1, *inside, k2) if p in changed), reverse=True)[:2]
        for f in inside:
            if f in wanted:
                reach(f, next((r for r in ranked if r[1] != f), None))
    return out


def _read_before(p: int, checked: list[int], shot: FarmShot) -> bool:
    """Whether a pass to some checked frame (``checked`` sorted) reads plate frame ``p`` on its way: as
    ``_carried`` reaches frames from it."""
    import bisect

    for _, kfs in shot.object_keyframes:
        before = [k for k in kfs if k < p]
        after = [k for k in kfs if k > p]
        low = before[-1] + 1 if before else -math.inf
        high = after[0] - 1 if after else math.inf
        if p not in kfs:
            if not before:  # the backward pass of the first keyframe: the frames before p
                high = p
            elif not after:  # the forward pass of the last: the frames after p
                low = p
        i = bisect.bisect_left(checked, low)
        if i < len(checked) and checked[i] <= high:
            return True
    return False


def _redelivered_output(shot: FarmShot, p: int, through: _Through | None = None) -> float | None:
    """The time of frame ``p``'s output (the first sequence's) where it was matted from other bytes than its plate
    frame's file now, else None. ``through``: the check's digests of the plate frames, each file read once."""
    from vom_plugin.io import frame_path, read_info

    out = Path(frame_path(shot.output_channels()[0][0], p))
    try:
        stamp = read_info(out).metadata.get("vom:plate")
        if stamp is None or str(stamp) == (through or _Through(shot)).digest(p):
            return None
        return os.stat(out).st_mtime
    except (InputError, OSError):
        return None


class _Through:
    """The check of outputs' ``vom:through`` against the plate as it is: each plate frame's content digest taken once
    (the outputs' ``vom:plate`` read them too), every object's passes planned once over the frames on disk."""

    def __init__(self, shot: FarmShot) -> None:
        self.shot = shot
        self._passes: list[Any] | None = None
        self._digests: dict[int, str] = {}
        self.compared: set[int] = set()  # the frames whose stamp was recomputed from the plate and compared

    def digest(self, frame: int, path: Path | None = None) -> str:
        """The content digest of plate frame ``frame`` (its file ``path``, else looked up)."""
        from vom_plugin.digest import content_digest
        from vom_plugin.io import existing_frame_path

        if frame not in self._digests:
            self._digests[frame] = content_digest(path or existing_frame_path(self.shot.plate, frame))
        return self._digests[frame]

    def problem(self, frame: int, stamp: str) -> str | None:
        """Why an output of ``frame`` stamped ``stamp`` was matted through other pictures than the plate's now;
        None where it was not, or the plate cannot be read here (its own frame's check says so)."""
        from vom_plugin.engine.file_source import CHANGED_SINCE_READ
        from vom_plugin.engine.schedule import all_passes, frames_through, through_stamp
        from vom_plugin.io import open_sequence

        if stamp == CHANGED_SINCE_READ:
            return ("matted while a plate frame whose picture reaches it was changed or delivered again (vom:through); "
                    "render it again")
        try:
            if self._passes is None:
                timeline = list(open_sequence(self.shot.plate).frames)
                self._passes = all_passes(timeline, [sorted(kfs) for _, kfs in self.shot.object_keyframes])
            frames = frames_through(frame, self._passes)
            now = through_stamp({p: self.digest(p) for p in frames})
        except (InputError, OSError):  # a plate frame this node cannot read: not compared (the times judge it)
            return None
        self.compared.add(frame)
        if now == stamp:
            return None
        return (f"matted through other pictures than plate frames {compact_range(frames)} hold now (vom:through: one "
                f"of them was changed or delivered again after this frame was rendered, or a frame was added to or "
                f"removed from the plate on its way)")


class _Once:
    """What the check compares every output with, computed once when first asked: ``compute(shot)``, or None
    where one of ``errors`` says it cannot be computed here (a keyframe's plate frame not readable on this node: the
    rotos and weights are checked first, ``check_recipe_inputs``), ``unavailable`` saying why; the outputs are then
    not compared on it."""

    def __init__(self, shot: FarmShot, compute: Callable[[FarmShot], Any],
                 errors: tuple[type[Exception], ...] = (InputError, OSError)) -> None:
        self.shot, self._compute, self._errors = shot, compute, errors
        self.unavailable: str | None = None
        self._value: Any = None
        self._tried = False

    def of(self) -> Any:
        if not self._tried:
            self._tried = True
            try:
                self._value = self._compute(self.shot)
            except self._errors as e:  # an OSError as vom says one, not a raw "[Errno 2] ..." (QA)
                from vom_plugin.errors import os_error_text

                self.unavailable = os_error_text(e) if isinstance(e, OSError) else str(e)
        return self._value


def _rgb_colour(farm: FarmShot) -> str:
    """The colorInteropID a render of the shot now gives an rgba output's RGB (``runner``'s ``rgb_colour``: its first
    keyframe's plate frame's), "" for none."""
    from vom_plugin.engine.shot import Shot
    from vom_plugin.engine.shot_plate import first_keyframe
    from vom_plugin.io import RgbColour, existing_frame_path, read_info

    shot = Shot.from_yaml(farm.path)
    meta = read_info(existing_frame_path(farm.plate, first_keyframe(shot))).metadata
    return RgbColour.of(meta, shot.colorspace).interop  # as the render's tag (runner's rgb_colour)


def _colour_problem(meta: dict[str, Any], colour: _Once) -> str | None:
    """Where an rgba output's RGB carries another colour tag than a render of the shot gives it now: a sequence of
    two tags read half the shot as one space and half as another in a reader that trusts them (QA: a vom before
    session 49 named a DPX plate's RGB by OpenImageIO's guess, and a job finished after an upgrade passed)."""
    now = colour.of()
    said = str(meta.get("colorInteropID") or "")
    if now is None or said == now:
        return None
    return (f"its RGB is tagged colorInteropID {said or '(none)'!r}; a render of the shot now tags it "
            f"{now or '(none)'!r}, as its first keyframe's plate frame says (rendered by another vom, or before that "
            f"plate frame was delivered again)")


def _settings(farm: FarmShot) -> dict[str, str]:
    """The shot file's settings an output's header states too (vom:working_size, vom:colorspace; vom:model is a path,
    which another mount spells otherwise: review)."""
    from vom_plugin.engine.shot import Shot

    shot = Shot.from_yaml(farm.path)
    return {name: str(getattr(shot, name)) for name in ("working_size", "colorspace")}


def _settings_stamp_differing(then: str, now: str) -> str | None:
    """The settings two ``vom:settings`` stamps give otherwise, with both values ("top_k 64 (the shot's 30)", the
    weights by their file's digest); "" where none does; None where ``then`` is not one vom writes."""
    import json

    try:
        old, new = json.loads(then), json.loads(now)
    except (ValueError, RecursionError):  # json recurses: a stamp of [[[...]]] was a traceback (QA)
        return None
    if not isinstance(old, dict):
        return None
    said = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        if name == "weights":  # a digest: the file's, not its name (another mount spells the path otherwise)
            from vom_plugin.digest import short_digest

            said.append(f"other weights (a file of digest {short_digest(str(old.get(name)))}; the shot's model is "
                        f"of {short_digest(str(new.get(name)))}: another weights file, or another vom version's "
                        f"default)")
        else:
            said.append(f"{name} {old.get(name, '(not said)')} (the shot's {new.get(name, '(none)')})")
    return ", ".join(said)


def _rotos_read(then: str, now: str, frame: int, shot: FarmShot) -> set[tuple[str, int]] | None:
    """The (object, keyframe) rotos that differ between two ``vom:rotos`` stamps and that the frame's mattes read
    (``schedule.keyframes_read``: the passes serving it and their far keyframes, every object's: an object's alpha is
    shared where another's overlaps it); None where that is not known (a stamp vom does not write, a roto added or
    removed: every frame then)."""
    from vom_plugin.engine.schedule import keyframes_read

    old, new = _roto_entries(then), _roto_entries(now)
    if old is None or new is None or set(old) != set(new):
        return None
    keyframes = {"" if n is None else n: sorted(kfs) for n, kfs in shot.object_keyframes}
    if any(n not in keyframes for n, _ in new):
        return None
    changed = {key for key in new if old[key] != new[key]}
    if not changed:  # the recipe differs, but not by a roto nor a setting it names: not judged here
        return None
    return {(n, kf) for n, kf in changed if kf in keyframes_read(frame, keyframes[n])}


class _Shared(str):
    """``_stamp_problem``'s reason for one object's file that is stale only as another object's matte reads a changed
    roto (the objects share a pixel where they overlap): the file of the object whose roto changed is said first."""


def _settings_differing(meta: dict[str, Any], settings: dict[str, str] | None) -> str:
    """The ``settings`` (``_settings``'s) an output's header states otherwise: "working_size 192 (the shot's 960)",
    "" where those it states agree or the shot's cannot be read."""
    said = [f"{name} {meta[f'vom:{name}']} (the shot's {value})" for name, value in (settings or {}).items()
            if f"vom:{name}" in meta and str(meta[f"vom:{name}"]) != value]
    return ", ".join(said)


def _recipe(farm: FarmShot) -> tuple[str, str, str, dict[str, str]]:
    """The shot's ``vom:recipe``, ``vom:rotos`` and ``vom:settings`` (it reads the rotos and weights, and its
    keyframes' plate headers), and each roto's file by its ``vom:rotos`` name (``object:keyframe``)."""
    from vom_plugin.engine.prepare import keyframe_windows, plate_view
    from vom_plugin.engine.shot import Shot, recipe_stamps, roto_layers
    from vom_plugin.io import existing_frame_path, read_info

    shot = Shot.from_yaml(farm.path)
    keyframes = sorted({kf for kfs in shot.rotos().values() for kf in kfs})
    heads = {kf: read_info(existing_frame_path(farm.plate, kf)) for kf in keyframes}
    windows = keyframe_windows(shot, heads)
    # a stereo roto's layer is the plate's view's, which every frame the render read shares
    view = next((v for kf in keyframes if (v := plate_view(existing_frame_path(farm.plate, kf)))), None)
    files = {f"{'' if n is None else n}:{kf}": str(p) for n, kfs in shot.rotos().items() for kf, p in kfs.items()}
    return (*recipe_stamps(shot, windows, roto_layers(shot, view)), files)


def _roto_entries(stamp: str) -> dict[tuple[str, int], str] | None:
    """A ``vom:rotos`` stamp as {(object, keyframe): digest}, the unnamed object's as ""; None where it is not one vom
    writes (another tool's header, a hand edit: review, the check crashed, exit 1)."""
    import re

    out = {}
    for entry in filter(None, stamp.split(";")):
        m = re.fullmatch(r"(\w*):(-?\d+)=(\w+)", entry)
        if m is None:
            return None
        out[(m.group(1), int(m.group(2)))] = m.group(3)
    return out


def _rotos_changed(then: str, now: str, files: dict[str, str],
                   only: set[tuple[str, int]] | None = None) -> str:
    """How the rotos an output was rendered with (``then``) differ from the shot's (``now``), in words that follow
    "rendered " ("" where none does, or a stamp is not one vom writes: the recipe's words then); ``only``: of these
    (object, keyframe) alone. The digests say which differ, not which is newer: the words hold either way (QA: a
    roto reverted, or the shot pointed at an older file, read "rendered before ... was redrawn")."""
    old, new = _roto_entries(then), _roto_entries(now)
    if old is None or new is None:
        return ""
    said = []
    for name, kf in sorted((set(old) | set(new)) if only is None else only):
        whose = f"object {name}'s" if name else "the shot's"
        path = files.get(f"{name}:{kf}", "?")
        roto = f"object {name}'s roto" if name else "a roto"
        if (name, kf) not in new:
            said.append(f"with {roto} of keyframe {kf}, which the shot no longer has")
        elif (name, kf) not in old:
            said.append(f"without {roto} of keyframe {kf} ({path}), which the shot has now")
        elif old[(name, kf)] != new[(name, kf)]:  # its bytes, its layer, or how it lies over its plate frame
            said.append(f"from another roto than {whose} of keyframe {kf} ({path}, redrawn, replaced or placed "
                        f"differently since, or the shot names another file now)")
    return ", and ".join(said)


def _picture(farm: FarmShot) -> str:
    """The window a render of the shot now shows the network (``shot_plate.shot_picture``: the display window and the
    overscan of the plate frames on disk), as ``vom:picture`` writes it."""
    from vom_plugin.engine.shot_plate import picture_stamp, shot_picture
    from vom_plugin.io import open_sequence, plate_info

    on_disk = open_sequence(farm.plate)
    return picture_stamp(shot_picture(on_disk, {}, plate_info(on_disk.path(farm.frames[0])), []))


def _exposure(farm: FarmShot) -> str:
    """The exposure a render of the shot now gives the network (``shot_plate.shot_exposure_gain``: from the plate frame
    of its first keyframe), as ``vom:exposure_gain`` writes it."""
    from vom_plugin.engine.shot import Shot
    from vom_plugin.engine.shot_plate import gain_stamp, shot_exposure_gain
    from vom_plugin.io import open_sequence

    return gain_stamp(shot_exposure_gain(Shot.from_yaml(farm.path), open_sequence(farm.plate)))


def _recipe_problem(meta: dict[str, Any], frame: int, shot: FarmShot, recipes: _Once,
                    settings: _Once | None) -> str | None:
    """Where an output's ``vom:recipe`` is not the shot's now, why: the settings and rotos that changed, of those
    that decide this frame's pixels; None where none of them does."""
    expected, rotos_now, settings_now, files = recipes.of() or (None, "", "", {})
    if expected is None or str(meta["vom:recipe"]) == expected:
        return None
    # outputs of vom since session 55 say every setting (vom:settings): each one named with both values, and
    # where the settings are the shot's, only the rotos this frame's mattes read count (QA: a redraw at the
    # last keyframe flagged the frames between the first two, which a render left bit-identical)
    named_all = _settings_stamp_differing(str(meta["vom:settings"]), settings_now) \
        if "vom:settings" in meta else None
    read = _rotos_read(str(meta["vom:rotos"]), rotos_now, frame, shot) \
        if named_all == "" and "vom:rotos" in meta else None
    if read is not None:
        if not read:
            return None  # the rotos that changed reach other frames alone
        changed = _rotos_changed(str(meta["vom:rotos"]), rotos_now, files, read)
        it = "that keyframe" if len(read) == 1 else "those keyframes"
        held = {n for n in str(meta.get("vom:objects") or "").split(",") if n}
        if held and not any(n in held for n, _ in read):  # another object's matte shares its pixels
            return _Shared(f"rendered {changed}; this frame's matte of that object depends on {it} (vom:rotos "
                           f"differs: the objects share the pixels where they overlap, so a render writes this "
                           f"file again)")
        return f"rendered {changed}; this frame's matte depends on {it} (vom:rotos differs)"
    changed = _rotos_changed(str(meta["vom:rotos"]), rotos_now, files) if "vom:rotos" in meta else ""
    named = named_all if named_all is not None else \
        _settings_differing(meta, settings.of() if settings is not None else None)
    if changed:  # outputs of vom before session 54 say the recipe alone
        # an object's own file ({object}): the others' rotos reach it, as the objects share each pixel
        names = {n for stamp in (str(meta["vom:rotos"]), rotos_now) for n, _ in _roto_entries(stamp) or {}}
        one_of = "vom:objects" in meta and "," not in str(meta["vom:objects"]) and len(names) > 1
        shared = "; the objects share each pixel, so every object's file of the frame is stale" \
            if one_of else ""
        also = f", and with {named}" if named else ""
        return (f"rendered {changed}{also} (vom:rotos differs: an output of an earlier version of the "
                f"shot{shared})")
    if named:  # the setting itself, where the header says it (QA: "vom:recipe differs" alone)
        return (f"rendered with {named} (vom:recipe differs: an output of an earlier version of the shot, its "
                f"rotos perhaps other too)")
    return ("rendered from other rotos, settings or weights than the shot's (vom:recipe differs: an output "
            "of an earlier version of the shot, or of other weights: another weights file, or another vom "
            "version's default)")


def _stamp_problem(meta: dict[str, Any], frame: int, shot: FarmShot, recipes: _Once | None = None,
                   plate: Path | None = None, objects: tuple[str, ...] | None = None,
                   picture: _Once | None = None, exposure: _Once | None = None, out: Path | None = None,
                   settings: _Once | None = None, through: _Through | None = None) -> str | None:
    """What vom wrote into the file's header that does not fit this frame of this shot: a file vom did not
    write, another frame's, one rendered for other ``objects`` than the file is the output of (another object's
    file copied over it), one rendered from other keyframes (a stale output of an earlier version of the shot),
    which the windows and channels alone would pass, or one matted from other bytes than the ``plate`` frame's
    file now (a plate re-delivered after the render)."""
    if "vom:version" not in meta:
        return "not written by vom (no vom:version attribute)"
    missing = [k for k in ("vom:frame", "vom:keyframes") if k not in meta]
    if missing:  # every render stamps both; vom's io called by other code does not
        return f"not written by a vom render (no {' or '.join(missing)} attribute)"
    if str(meta["vom:frame"]) != str(frame):
        return f"holds frame {meta['vom:frame']}"
    stamped = str(meta.get("vom:plate_sequence") or "")
    if shot.plate and stamped:
        from vom_plugin.io.output_guard import made_from, plate_label, same_plate_sequence, stamped_plate

        # another shot's (QA: said to be an earlier version's); the same plate moved or renamed is not (a render
        # replaces it)
        folder = str(meta.get("vom:plate_folder") or "") or None
        # a host's baked Source, in this Output's work folder beside it, is this Output's
        if not same_plate_sequence(stamped, shot.plate, folder, out, objects or ()) \
                and not made_from(meta, shot.plate, frame):
            return (f"holds vom's matte of another plate ({stamped_plate(meta)}; the shot's is "
                    f"{plate_label(shot.plate, meta)})")
    from vom_plugin.engine.shot import read_keyframes_stamp

    stamp = str(meta["vom:keyframes"])
    want = {n: set(kfs) for n, kfs in shot.object_keyframes}
    try:
        got = read_keyframes_stamp(stamp)
    except ValueError:
        return f"vom:keyframes {stamp!r} is not a list of frames"
    for name in got:
        if name not in want:
            return f"rendered for object {name!r}, which the shot does not have"
    if objects is not None and set(got) != set(objects):
        held = ", ".join(repr(n) for n in got) or "no object"
        return (f"holds the matte of {held}; this sequence is {', '.join(repr(n) for n in objects)}'s (another "
                f"object's file copied or rendered over it)")
    for name, kfs in got.items():
        if kfs != want[name]:
            who = "" if name is None else f" of {name}"
            return (f"rendered from keyframes{who} {','.join(map(str, sorted(kfs)))}; the shot has "
                    f"{','.join(map(str, sorted(want[name])))} (an output of an earlier version of the shot)")
    # the same keyframes, but another roto drawn on one, another working size, colour space or weights: the
    # recipe says so (outputs of vom before session 29 have none: not compared)
    # the arithmetic that computed it: a frame of a vom whose code gives other values for the same inputs (an upgrade
    # mid-show, a farm mid-rollout; outputs of vom before session 48 have none: not compared)
    if "vom:arithmetic" in meta:
        from vom_plugin.engine.resume import PREDICTION_ARITHMETIC

        if str(meta["vom:arithmetic"]) != str(PREDICTION_ARITHMETIC):
            return (f"computed by another vom version's arithmetic (vom:arithmetic {meta['vom:arithmetic']}; this "
                    f"vom's is {PREDICTION_ARITHMETIC}): its pixels differ from what this vom renders")
    if recipes is not None and "vom:recipe" in meta:
        why = _recipe_problem(meta, frame, shot, recipes, settings)
        if why:
            return why
    # the overscan the network saw: a frame matted before plate frames with more overscan were delivered (a job
    # made before the plate's own render finished) saw another picture (outputs before session 38 have none)
    if picture is not None and "vom:picture" in meta:
        now = picture.of()
        if now is not None and str(meta["vom:picture"]) != now:
            return (f"matted over the picture {meta['vom:picture']} (x, y, width, height of the display window and "
                    f"the overscan of the plate frames on disk then); the plate's frames make {now} now (frames with "
                    "other overscan were delivered or removed since it was rendered)")
    # the exposure the network saw, set by the plate frame of the shot's first keyframe: every frame matted before
    # that frame was delivered again saw another one (outputs before session 36 have none: not compared)
    if exposure is not None and "vom:exposure_gain" in meta:
        now = exposure.of()
        if now is not None and str(meta["vom:exposure_gain"]) != now:
            # vom before session 47 took every sRGB plate as it was (gain 1); a dark one is brought up now
            from vom_plugin.engine.shot_plate import gain_stamp

            taken_as_it_was = str(meta.get("vom:colorspace")) == "sRGB" and \
                str(meta["vom:exposure_gain"]) == gain_stamp(1.0)
            older = ", or vom rendered it before it brought up dark sRGB plates" if taken_as_it_was else ""
            return (f"matted at exposure gain {meta['vom:exposure_gain']}; the shot's is {now} now (the plate frame "
                    f"of its first keyframe, which sets it, was changed or delivered again after this frame was "
                    f"rendered{older})")
    # outputs of vom before session 36 say nothing of their plate frame: not compared
    if plate is not None and "vom:plate" in meta:
        from vom_plugin.digest import content_digest
        from vom_plugin.engine.file_source import CHANGED_SINCE_READ

        if str(meta["vom:plate"]) == CHANGED_SINCE_READ:
            return _Redelivered(f"matted from another picture than its plate frame {plate} holds now (the plate "
                                "frame was changed or delivered again while this frame was rendered)")
        now = through.digest(frame, plate) if through is not None else content_digest(plate)
        if str(meta["vom:plate"]) != now:
            return _Redelivered(f"matted from another picture than its plate frame {plate} holds now (the plate was "
                                "changed or delivered again after this frame was rendered)")
    # the pictures of the frames before it on its passes' way (outputs of vom before session 52 have none: the
    # frames they reach are found by the outputs' times, _stale_through)
    if through is not None and plate is not None and "vom:through" in meta:
        return through.problem(frame, str(meta["vom:through"]))
    return None


def span_description(shot: FarmShot, span: Span) -> str:
    """What a span's task renders: its passes, or, where the shot's objects have keyframes of their own, each
    object's passes from them (the spans are cut at all of them: a span's description by the union named passes
    an object does not have, QA)."""
    if shot.objects_own_keyframes:
        each = "; ".join(f"{name}: {', '.join(map(str, kfs))}" for name, kfs in shot.object_keyframes)
        return f"frames {compact_range(span.frames)}: each object propagated from its own keyframes ({each})"
    return span.description


def summary(shot: FarmShot, spans: list[Span]) -> dict[str, Any]:
    return {"shot": str(shot.path), "frames": compact_range(shot.frames), "keyframes": shot.keyframes,
            "spans": [{"name": s.name, "frames": compact_range(s.frames), "keyframes": list(s.keyframes),
                       "kind": "objects' own keyframes" if shot.objects_own_keyframes else s.kind,
                       "description": span_description(shot, s)} for s in spans]}
