"""``vom cache info|clear``: what the persistent per-shot cache holds, and emptying it."""

from __future__ import annotations

import argparse
import math
import os
import time

from vom_plugin.commands._args import human_size

HELP = "show or clear the persistent per-shot cache"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("info", "clear"),
                   help="info: one line per shot; clear: delete the entries vom wrote and say which, shot by shot")
    p.add_argument("--cache", metavar="DIR", default=None,
                   help="cache root (default: VOM_CACHE_DIR, else $XDG_CACHE_HOME/vom, ~/.cache/vom)")
    # read in run(), as typed: a float type's value was echoed back (1e400 as "inf", QA)
    p.add_argument("--older-than", metavar="DAYS", default=None,
                   help="with clear: only the shots not used for DAYS days, a shot's last use being its newest "
                        "entry (default: all of vom's entries)")
    p.add_argument("--to-cap", action="store_true",
                   help="with clear: only the least recently used entries beyond VOM_CACHE_MAX_GB, as the next render "
                        "that writes to the cache would evict them (a lowered cap is applied by that render only)")
    p.add_argument("--shot", action="append", metavar="ID|PLATE", default=None,
                   help="with clear: only this shot's entries: its ID as `vom cache info` lists it, or its plate "
                        "pattern (plate.####.exr, as the render was given it); may be given more than once")
    p.add_argument("--json", action="store_true", help="with info: one JSON object")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from vom_plugin.commands._args import flag_path
    from vom_plugin.engine import cache as vc
    from vom_plugin.errors import InputError, one_line
    from vom_plugin.locations import default_cache_dir

    # absolute: a relative --cache was said back as typed ("the cache cache holds...", QA); ~user and $SHOW read as
    # vom render reads its --cache
    root = Path(flag_path(args.cache, "--cache")) if args.cache else default_cache_dir()
    if args.action == "info" and args.older_than is not None:
        raise InputError("--older-than is a clear option (clear only the shots not used for DAYS days)")
    if args.action == "clear" and args.json:
        raise InputError("--json is an info option (clear says what it removed, shot by shot)")
    days = None if args.older_than is None else _days(args.older_than)
    # a mistyped path must not read as an empty cache, cleared (the default folder may not exist yet)
    given = "--cache" if args.cache else "VOM_CACHE_DIR" if os.environ.get("VOM_CACHE_DIR", "").strip() else "cache"
    # a folder named (by --cache or VOM_CACHE_DIR) must be there: a farm's mistyped VOM_CACHE_DIR=/mnt/cahce was
    # "cleared 0 entries", exit 0 (QA); only the default folder may not have been made yet
    if (given != "cache" and not root.is_dir()) or (root.exists() and not root.is_dir()):
        what = ("is not a folder" if root.exists() else "does not exist (no render has used it yet, or is it "
                "mistyped?)" if given == "VOM_CACHE_DIR" else "does not exist")
        raise InputError(f"{given} {root} {what}")
    if args.action == "info" and args.shot:
        raise InputError("--shot is a clear option (info lists every shot)")
    if args.action == "info" and args.to_cap:
        raise InputError("--to-cap is a clear option (clear the least recently used entries beyond VOM_CACHE_MAX_GB)")
    if args.to_cap and (args.shot or days is not None):
        raise InputError(f"--to-cap takes the least recently used entries of the whole cache, not with "
                         f"{'--shot' if args.shot else '--older-than'}")
    # a cap this shell was given, not the default (which is this shell's, not the cache's)
    cap_given = bool(os.environ.get("VOM_CACHE_MAX_GB", "").strip())
    if args.action == "clear":
        if args.to_cap:
            if not cap_given:
                # the default is this shell's, not the cache's: a show cache the farm runs at 2 TB would be cut to
                # 20 GiB on the word of a hint (second review)
                raise InputError(f"--to-cap: VOM_CACHE_MAX_GB is not set here (the default cap, "
                                 f"{human_size(vc.DEFAULT_MAX_BYTES)}, may not be the one the renders sharing this "
                                 f"cache use): set it to the cap to trim to, e.g. VOM_CACHE_MAX_GB=20 vom cache clear "
                                 f"--to-cap")
            cap = vc.max_bytes_from_env()
            report = vc.trim(root, cap)
            which = f" beyond the {human_size(cap)} cap of VOM_CACHE_MAX_GB"
        else:
            shots = _named_shots(root, args.shot) if args.shot else None
            report = vc.clear(root, older_than_days=days, shots=shots)
            # a plain number (":g" said "1e+06 days": review)
            plain = f"{days:.6f}".rstrip("0").rstrip(".") if days is not None else ""
            which = f" not used for {plain} day{'' if days == 1 else 's'}" if days is not None else ""
        temps = (f", and {_count(report.temporaries, 'temporary file', 'temporary files')} of killed writers"
                 if report.temporaries else "")
        print(f"cleared {_count(report.files, 'entry', 'entries')}{which} ({human_size(report.bytes)}){temps} from "
              f"{one_line(root)}")
        for s in report.shots:
            folder = "; shot folder removed" if s.folder_removed else ""
            print(f"  {s.shot_id}: {_count(s.files, 'entry', 'entries')} ({human_size(s.bytes)}){folder}  "
                  f"{one_line(s.plate)}")
        if report.left_alone:
            shown = ", ".join(report.left_alone[:5]) + (" ..." if len(report.left_alone) > 5 else "")
            print(f"left alone: {_count(len(report.left_alone), 'file or folder', 'files or folders')} vom did not "
                  f"write: {shown}")
        if args.to_cap and report.recent:
            # each recent entry is a removed one: its shot folder is among those the report lists
            plate_of = {s.shot_id: s.plate or s.shot_id for s in report.shots}
            plates = sorted({plate_of[Path(p).parent.parent.name] for p in report.recent})
            print(f"note: {_count(len(report.recent), 'entry', 'entries')} removed had been used within the hour "
                  f"({', '.join(one_line(p) for p in plates[:3])}{' ...' if len(plates) > 3 else ''}): a render "
                  f"running now computes them again")
        if report.failed:
            path, why = report.failed[0]
            rest = "; the others listed above were" if report.shots else ""
            over = ""
            if args.to_cap:
                left = sum(s.bytes + s.temporary_bytes for s in vc.cache_info(root))
                over = (f"; the cache is still {human_size(left - cap)} over the cap" if left > cap else
                        "; the cache is within the cap")
            raise InputError(f"{_count(len(report.failed), 'entry', 'entries')} could not be removed (e.g. {path}: "
                             f"{why}){rest}{over}")
        return 0
    shots = vc.cache_info(root)
    entries, temps = sum(s.bytes for s in shots), sum(s.temporary_bytes for s in shots)
    total = entries + temps  # on disk: what a killed writer left too
    cap = vc.max_bytes_from_env()
    if args.json:  # "bytes": the entries', the shots' summed, as before; their temporaries apart (review)
        print(json.dumps({"root": os.path.abspath(root), "bytes": entries, "temporary_bytes": temps, "max_bytes": cap,
                          "shots": [s.__dict__ for s in shots],
                          "unreadable": [str(p) for p in vc.unreadable_shot_folders(root)]}, indent=1))
        return 0
    said = "VOM_CACHE_MAX_GB" if cap_given else "the default cap: VOM_CACHE_MAX_GB is not set here"
    print(f"cache {one_line(root)}: {_count(len(shots), 'shot', 'shots')}, {human_size(total)} of {human_size(cap)} "
          f"({said})")
    if total > cap:  # a lowered cap: applied by the next render that writes (renders that write nothing skip the scan)
        print(f"  over this cap by {human_size(total - cap)}: the next render that writes to the cache with this cap "
              f"evicts the least recently used entries; `vom cache clear --to-cap` does so now (or --older-than DAYS, "
              f"--shot ID)" + ("" if cap_given else
                              "; set VOM_CACHE_MAX_GB to the cap the renders sharing this cache use first"))
    now = time.time()
    width = max((len(s.shot_id) for s in shots), default=0)  # one column whatever each plate's name (QA)
    ages = [_ago(now - s.last_used) for s in shots]
    age_width = max(map(len, ages), default=0)
    for s, age in zip(shots, ages, strict=True):
        print(f"  {s.shot_id:<{width}}  {s.files:6d} {'entry  ' if s.files == 1 else 'entries'}  "
              f"{human_size(s.bytes):>10}  used {age:<{age_width}}  {one_line(s.plate)}")
        if s.temporaries:  # counted in the total: on disk all the same (QA: info said 95 MiB where du said 158 MB)
            print(f"  {'':<{width}}  and {_count(s.temporaries, 'temporary', 'temporaries')} of writers killed over "
                  f"an hour ago ({human_size(s.temporary_bytes)}), removed by the next render that writes to the cache "
                  f"or `vom cache clear`")
    for folder in vc.unreadable_shot_folders(root):
        if not os.access(folder, os.R_OK | os.X_OK):
            print(f"  {folder.name}  not used: this user cannot read it (another user's, mode "
                  f"{folder.stat().st_mode & 0o777:o}); not counted, never cleared by you")
            continue
        print(f"  {folder.name}  not used: its {vc.SHOT_MARKER} is missing or damaged, so vom cannot tell it from a "
              f"folder of yours and leaves it alone (not counted, never cleared); remove {folder} to cache that "
              f"shot again")
    return 0


def _days(text: str) -> float:
    """``--older-than``'s number of days; InputError naming the value as typed for one that is not a finite number
    >= 0 (NaN compares false with every age: "clear what is older than nan days" would clear everything)."""
    from vom_plugin.errors import InputError, one_line

    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not (math.isfinite(days) and days >= 0):
        raise InputError(f"--older-than {one_line(text.strip())}: expected a number of days >= 0")
    return days + 0.0  # -0 is 0 (QA: "not used for -0 days")


def _ago(seconds: float) -> str:
    """How long ago a shot was used, in the unit that says it (QA: every shot of today read "used 0.0 days ago")."""
    if seconds < 60:
        return "under a minute ago"
    if seconds < 3600:
        return _count(int(seconds // 60), "minute ago", "minutes ago")
    if seconds < 86400 - 180:  # (86399 s read "24.0 hours ago")
        return f"{seconds / 3600:.1f} hours ago"
    return f"{seconds / 86400:.1f} days ago"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _named_shots(root: os.PathLike[str], names: list[str]) -> set[str]:
    """The shot folders ``--shot`` names (an ID as `vom cache info` lists it, or a plate pattern: the folder of
    the plate on disk, or the folders recorded for that pattern); InputError for one the cache does not hold,
    before anything is removed."""
    from pathlib import Path

    from vom_plugin.engine import cache as vc
    from vom_plugin.errors import InputError

    held = {s.shot_id: s.plate for s in vc.cache_info(root)}
    out = set()
    for name in names:
        if name in held:
            out.add(name)
            continue
        from vom_plugin.engine.shot import absolute

        plate = Path(absolute(os.path.expanduser(name)))  # as a render reads it (a .. after a link: review)
        # a folder is named from the plate's first frame, not its path (which other machines mount elsewhere);
        # a plate deleted since is found by the pattern its renders recorded
        found = {i for i, p in held.items() if p == str(plate)}
        try:
            found.add(vc.shot_id(str(plate)))
        except (InputError, OSError):
            pass
        if not found & held.keys():
            raise InputError(f"--shot {name}: the cache {root} holds no such shot (neither an ID `vom cache info` "
                             f"lists nor the plate pattern of one); nothing was cleared")
        out |= found & held.keys()
    return out
