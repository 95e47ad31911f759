"""The per-shot cache store: round trips, fingerprints, LRU cap, clear/info, and the frames helpers."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vom_plugin.cli import main
from vom_plugin.commands._args import human_size
from vom_plugin.engine import cache as vc
from vom_plugin.engine import frames as fr
from vom_plugin.errors import InputError

Store = Callable[..., vc.ShotCache]


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """``vc.ShotCache(root, plate, ...)`` for a plate that is not on disk: its first frame (which names the
    shot's folder) is a small file of its own, outside the cache."""
    frames = tmp_path_factory.mktemp("first_frames")

    def make(root: Path, plate: str, **kw: object) -> vc.ShotCache:
        first = frames / f"{vc.digest(plate)}.exr"
        first.write_text(plate)
        return vc.ShotCache(root, plate, first_frame=first, **kw)  # type: ignore[arg-type]

    return make


def K(name: str) -> str:
    """A cache address as the runner makes them (entries are recognised by name: 32 hex digits)."""
    return vc.digest(name)


def _aged_shots(store: Store, cache: Path, plates: tuple[str, ...],
                entries: int) -> tuple[dict[str, vc.ShotCache], dict[str, int]]:
    """Shots of ``plates`` in ``cache`` with ``entries`` key entries each, the first used longest ago (an hour
    apart): (the shots by plate, the bytes of each)."""
    shots = {}
    for i, plate in enumerate(plates):
        s = shots[plate] = store(cache, plate, max_bytes=1 << 30)
        s.prepare()
        for n in range(entries):
            s.put_keys(n, K(f"{plate}{n}"), {"k": torch.arange(64 * 1024, dtype=torch.float32) * (i + n)})
        for p in s.dir.rglob("*.safetensors"):
            os.utime(p, (time.time() - (len(plates) - i) * 3600,) * 2)
    return shots, {plate: sum(p.stat().st_size for p in s.dir.rglob("*.safetensors")) for plate, s in shots.items()}


def test_round_trip_is_exact_and_a_few_key_entries_per_frame(store: Store, tmp_path: Path) -> None:
    c = store(tmp_path, "/shots/sh010/plate/sh010.####.exr", max_bytes=1 << 30)
    c.prepare()
    assert c.id.startswith("plate_sh010-") and c.dir.is_dir()
    t = {"k16": torch.randn(1, 8, 4, 6), "k8": torch.randn(1, 4, 8, 12).half()}
    assert c.get_keys(1001, K("aa")) is None
    c.put_keys(1001, K("aa"), t)
    got = c.get_keys(1001, K("aa"))
    assert got is not None and set(got) == {"k16", "k8"}
    assert torch.equal(got["k16"], t["k16"]) and got["k8"].dtype == torch.float16
    # another setting's entry stays (a QA pass: two working sizes or thread counts in one cache deleted each
    # other's, every re-render a miss); beyond KEYS_PER_FRAME the least recently used goes (an old plate's)
    keys = c.dir / "keys"
    c.put_keys(1001, K("bb"), t)
    assert c.get_keys(1001, K("aa")) is not None and c.get_keys(1001, K("bb")) is not None
    now = time.time()
    for age, name in ((300, "aa"), (200, "bb")):
        os.utime(next(keys.glob(f"1001.{K(name)}.*")), (now - age, now - age))
    c.put_keys(1002, K("aa"), t)  # another frame's entries are not this frame's count
    c.put_keys(1001, K("cc"), t)
    assert vc.KEYS_PER_FRAME == 3 and len(list(keys.glob("1001.*"))) == 3
    c.put_keys(1001, K("dd"), t)
    assert c.get_keys(1001, K("aa")) is None  # the oldest
    assert all(c.get_keys(1001, K(n)) is not None for n in ("bb", "cc", "dd")) and c.get_keys(1002, K("aa"))
    c.put_state(K("s1"), {"bank": torch.arange(5.0)})
    assert c.has_state(K("s1")) and torch.equal(c.get_state(K("s1"))["bank"], torch.arange(5.0))
    c.drop_state(K("s1"))
    assert not c.has_state(K("s1"))
    assert not list(c.dir.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_compressed_entries_are_exact_smaller_and_bounded(tmp_path: Path) -> None:
    import json

    from safetensors.torch import load, save

    from vom_plugin.engine.cache_entry import BadEntry, decode, encode, read_header, tensor_digest

    address = "steps/x.alpha.safetensors"
    alpha = torch.zeros(272, 480)
    alpha[100:200, 150:300] = 1.0
    alpha[99, 150:300] = torch.linspace(0, 1, 150)  # a soft edge: the bits must come back exactly
    noise = torch.randn(64, 64)  # incompressible: stored as it is
    data = encode(address, {"alpha": alpha, "noise": noise, "idx": torch.arange(6).to(torch.int16)})
    assert len(data) < alpha.numel() * 4 / 10 + noise.numel() * 4 + 4096
    got = decode(address, data)
    assert torch.equal(got["alpha"], alpha) and got["alpha"].dtype == torch.float32
    assert torch.equal(got["noise"], noise) and torch.equal(got["idx"], torch.arange(6).to(torch.int16))
    meta = read_header(data)["__metadata__"]
    assert set(json.loads(meta["zstd"])) == {"alpha"}
    stored = load(data)

    def forged(spec: list, tensors: dict = stored) -> bytes:
        """An entry whose description says ``spec`` for alpha, with a digest to match (a forger who knows the
        format, or a vom with a bug): only the decoder's own checks stand in the way."""
        description = json.dumps({"alpha": spec}, sort_keys=True)
        return save(tensors, metadata={**meta, "zstd": description,
                                       "digest": tensor_digest(address, tensors, description)})

    # the description is part of the digest: changed alone, the entry is a miss
    with pytest.raises(BadEntry, match="digest"):
        decode(address, save(stored, metadata={**meta, "zstd": json.dumps({"alpha": ["float32", [480, 272]]})}))
    # a description that claims more (or fewer) bytes than the data holds is a bad entry, not an allocation
    for spec in (["float32", [272, 481]], ["float32", [1 << 20, 1 << 20]], ["float32", [10]],
                 ["float32", [272, 480], "delta"], ["uint8", [272, 480 * 4], "sideways"]):
        with pytest.raises(BadEntry, match="alpha"):
            decode(address, forged(spec))
    # damaged compressed bytes behind a matching digest do not decompress (or not to the size described)
    damaged = dict(stored, alpha=stored["alpha"].clone())
    damaged["alpha"][4:12] = 0xFF  # the frame header: its sizes
    with pytest.raises(BadEntry, match="alpha"):
        decode(address, forged(["float32", [272, 480]], damaged))


def test_code_images_compress_as_differences_exactly(store: Store, tmp_path: Path) -> None:
    """A keys entry's 8-bit feature codes are stored as differences along rows: smaller, and bit-exact back."""
    import json

    from vom_plugin.engine.cache_entry import decode, encode, read_header

    g = torch.Generator().manual_seed(3)
    # smooth maps with noise and wrap-around (0 next to 255): what rounding a ReLU feature map gives
    base = torch.nn.functional.interpolate(torch.rand(1, 8, 9, 16, generator=g), size=(68, 120), mode="bilinear")
    codes = (base * 255 + torch.randint(-3, 4, base.shape, generator=g)).remainder(256).to(torch.uint8)
    codes[0, 0, :, ::2] = 255
    codes[0, 0, :, 1::2] = 0
    plain = encode("keys/1.x.safetensors", {"f8": codes})
    data = encode("keys/1.x.safetensors", {"f8": codes}, delta=["f8"])
    assert torch.equal(decode("keys/1.x.safetensors", data)["f8"], codes)
    assert json.loads(read_header(data)["__metadata__"]["zstd"]) == {"f8": ["uint8", [1, 8, 68, 120], "delta"]}
    assert len(data) < 0.8 * len(plain)
    c = store(tmp_path, "/p/a.####.exr", max_bytes=1 << 30)
    c.prepare()
    c.put_keys(7, K("k"), {"f8": codes, "f8_scale": torch.ones(1, 8, 1, 1)})
    got = c.get_keys(7, K("k"))
    assert got is not None and torch.equal(got["f8"], codes) and torch.equal(got["f8_scale"], torch.ones(1, 8, 1, 1))
    entry = next((c.dir / "keys").iterdir()).read_bytes()
    assert json.loads(read_header(entry)["__metadata__"]["zstd"])["f8"][2] == "delta"


def test_damaged_entry_is_a_miss(store: Store, tmp_path: Path) -> None:
    c = store(tmp_path, "/p/a.####.exr", max_bytes=1 << 30)
    c.prepare()
    c.put_alpha(K("x"), {"alpha": torch.ones(4, 4)})
    p = c.dir / "steps" / f"{K('x')}.alpha.safetensors"
    p.write_bytes(p.read_bytes()[:20])
    assert c.get_alpha(K("x")) is None and not p.exists()


def test_fingerprint_sees_content_and_mtime(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(os.urandom(300_000))
    fp = vc.file_fingerprint(f)
    assert vc.file_fingerprint(f) == fp
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF  # same size; put the mtime back: the tail hash must still see it
    st = f.stat()
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert vc.file_fingerprint(f) != fp
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert vc.file_fingerprint(f) != vc.file_fingerprint(f, full=True)  # different hashing, sanity
    # a roto (hashed whole) is its bytes alone: one re-exported with the same picture is the same roto, and its
    # steps hit (QA: every one missed); another byte is another roto
    roto = tmp_path / "r.exr"
    roto.write_bytes(b"x" * 1000)
    whole = vc.file_fingerprint(roto, full=True)
    os.utime(roto, ns=(1, 2))
    assert vc.file_fingerprint(roto, full=True) == whole
    roto.write_bytes(b"x" * 999 + b"y")
    assert vc.file_fingerprint(roto, full=True) != whole


def test_eviction_takes_the_least_recently_used_shot_first_and_a_shots_chains_from_their_end(
        store: Store, tmp_path: Path) -> None:
    """Whole shots go least recently used first; within a shot its most recently used entries go first: a pass goes
    on from a memory state only with every prediction before it on disk, so a chain cut from its end keeps what a
    state below the cut needs. Oldest first took a chain's first steps and kept the hundreds after them, unusable
    (a QA pass: a 400-frame shot re-rendered all 400 steps with 1157 of its entries still on disk)."""
    blob = {"x": torch.zeros(25_000)}  # ~100 kB each
    old = store(tmp_path, "/p/old.####.exr", max_bytes=1 << 40)
    new = store(tmp_path, "/p/new.####.exr", max_bytes=1 << 40)

    def put(c, name: str, age: float) -> Path:
        c.prepare()
        c.put_alpha(K(name), blob)
        p = c.dir / "steps" / f"{K(name)}.alpha.safetensors"
        os.utime(p, (time.time() - age, time.time() - age))
        return p

    olds = [put(old, f"o{i}", 300 - i) for i in range(3)]
    chain = [put(new, f"s{i}", 100 - i) for i in range(4)]  # steps 0..3, written (and read) in order
    size = chain[0].stat().st_size
    freed, gone = vc.evict(tmp_path, max_bytes=4 * size)  # the older shot goes, newest entry first
    assert freed == 3 * size and gone == [str(p) for p in reversed(olds)]
    assert all(p.exists() for p in chain)
    freed, gone = vc.evict(tmp_path, max_bytes=2 * size)  # then the chain from its end: steps 0 and 1 stay
    assert gone == [str(chain[3]), str(chain[2])] and chain[0].exists() and chain[1].exists()
    assert new.get_alpha(K("s0")) is not None and new.get_alpha(K("s1")) is not None


def test_an_entry_larger_than_the_cap_is_not_written_and_evicts_nothing(store: Store, tmp_path: Path) -> None:
    """QA: a memory state of 19 MB saved under a 7 MB cap that both shots' entries fitted had the other shot's
    entries evicted for it, then went itself; nothing came back. An entry the cap can never hold is not written,
    and counted as one the cap did not take."""
    other = store(tmp_path, "/p/other.####.exr", max_bytes=1 << 40)
    other.prepare()
    other.put_alpha(K("o"), {"x": torch.zeros(25_000)})
    kept = other.dir / "steps" / f"{K('o')}.alpha.safetensors"
    size = kept.stat().st_size
    c = store(tmp_path, "/p/this.####.exr", max_bytes=3 * size)
    c.prepare()
    c.put_state(K("big"), {"bank": torch.randn(100_000)})  # ~400 kB: past the cap whatever is evicted
    assert not c.has_state(K("big")) and c.evicted_own == 1 and kept.exists()
    c.put_alpha(K("small"), {"x": torch.zeros(25_000)})  # one that fits is written as before
    assert c.get_alpha(K("small")) is not None and kept.exists()
    # a pass's next memory state not taken: the one before it stays, the chain's only resume point (review)
    import types

    from vom_plugin.engine.step_cache import StepCache

    assert c.put_state(K("s1"), {"bank": torch.zeros(10)})
    StepCache._put_state_then_drop(types.SimpleNamespace(store=c), K("s2"), {"bank": torch.randn(100_000)},
                                   [K("s1")])
    assert c.has_state(K("s1")) and not c.has_state(K("s2"))
    StepCache._put_state_then_drop(types.SimpleNamespace(store=c), K("s3"), {"bank": torch.zeros(10)}, [K("s1")])
    assert c.has_state(K("s3")) and not c.has_state(K("s1"))  # written: the one before it goes


def test_cache_cli_info_and_clear(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = store(tmp_path, "/p/sh020/plate.####.exr", max_bytes=1 << 30)
    c.prepare()
    for name in ("new", "four", "six"):
        c.put_alpha(K(name), {"a": torch.ones(100)})
    entry = {name: c.dir / "steps" / f"{K(name)}.alpha.safetensors" for name in ("new", "four", "six")}
    os.utime(entry["four"], (time.time() - 4 * 86400,) * 2)  # the age either side of --older-than 5
    os.utime(entry["six"], (time.time() - 6 * 86400,) * 2)
    assert main(["cache", "info", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 shot," in out and "/p/sh020/plate.####.exr" in out and "3 entries" in out
    # the age is the shot's (its newest entry): a shot in use keeps every entry (QA: a nightly clear took the key
    # features and matches a roto tweak reuses from a shot re-rendered that day, whose re-render read steps only)
    assert main(["cache", "clear", "--cache", str(tmp_path), "--older-than", "5"]) == 0
    assert "cleared 0 entries not used for 5 days" in capsys.readouterr().out
    assert entry["six"].exists() and entry["four"].exists() and entry["new"].exists()
    entry["new"].unlink()  # now last used 4 days ago: kept at 5 days, cleared whole at 3
    assert main(["cache", "clear", "--cache", str(tmp_path), "--older-than", "5"]) == 0
    assert entry["six"].exists() and entry["four"].exists()
    assert main(["cache", "clear", "--cache", str(tmp_path), "--older-than", "3"]) == 0
    assert "cleared 2 entries not used for 3 days" in capsys.readouterr().out
    assert not entry["six"].exists() and not entry["four"].exists()
    c.prepare()
    assert main(["cache", "clear", "--cache", str(tmp_path)]) == 0
    assert not c.dir.exists()
    assert main(["cache", "clear", "--cache", str(tmp_path), "--older-than", "-1"]) == 2


def test_cache_clear_of_one_shot_by_id_or_plate(store: Store, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A QA pass: a cache shared by several shots could be cleared by age only; one shot's entries (a plate
    re-rendered upstream, a shot handed over) took every shot's with them."""
    caches = {}
    for name in ("sh010", "sh020", "sh030"):
        c = caches[name] = store(tmp_path, f"/p/{name}/plate.####.exr", max_bytes=1 << 30)
        c.prepare()
        c.put_alpha(K(name), {"a": torch.ones(100)})
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["cache", "clear", "--cache", str(tmp_path), "--shot", caches["sh010"].dir.name,
                 "--shot", "/p/sh020/plate.####.exr"]) == 0
    out = capsys.readouterr().out
    assert "cleared 2 entries" in out and "/p/sh010/plate.####.exr" in out and "/p/sh020/plate.####.exr" in out
    assert "left alone" not in out  # the files beside the shots are not this clear's business
    assert not caches["sh010"].dir.exists() and not caches["sh020"].dir.exists() and caches["sh030"].dir.exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert main(["cache", "clear", "--cache", str(tmp_path), "--shot", "/p/sh030/plate.####.exr",
                 "--shot", "/p/sh099/plate.####.exr"]) == 2
    assert "--shot /p/sh099/plate.####.exr: the cache" in capsys.readouterr().err
    assert caches["sh030"].dir.exists()  # nothing was cleared: one shot named is not in the cache
    assert main(["cache", "info", "--cache", str(tmp_path), "--shot", "x"]) == 2
    # a plate named with a .. after a link, as a render read it (review: the render used the shot, the clear did not
    # find it, the .. taken as text)
    (tmp_path / "plates" / "sub").mkdir(parents=True)
    (tmp_path / "sl").symlink_to(tmp_path / "plates" / "sub")
    linked = store(tmp_path / "c2", str(tmp_path / "plates" / "p.####.exr"), max_bytes=1 << 30)
    linked.prepare()
    linked.put_alpha(K("linked"), {"a": torch.ones(100)})
    capsys.readouterr()
    assert main(["cache", "clear", "--cache", str(tmp_path / "c2"), "--shot", str(tmp_path / "sl" / ".." / "p.####.exr")
                 ]) == 0, capsys.readouterr().err
    assert not linked.dir.exists()


def test_unwritable_cache_is_unavailable(store: Store, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(vc.CacheUnavailable, match=r"cache folder .* cannot be made \(Not a directory\)"):
        store(blocker / "cache", "/p/a.####.exr").prepare()


def test_a_shot_folder_cleared_as_a_render_starts_is_claimed_again(store: Store, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a `vom cache clear` between the shot folder's claim and the write probe removed the empty folder; the
    probe failed and the render ran without the cache, told to pass another --cache. The probe is under the lock
    now, and a folder removed all the same is claimed again."""
    import uuid as uuid_mod

    cache = store(tmp_path / "cache", "/p/a.####.exr")
    real, cleared = uuid_mod.uuid4, []

    def clearing() -> uuid_mod.UUID:  # the first name asked once claimed: the shot's folder goes, as a clear takes it
        if not cleared and (cache.dir / "steps").is_dir():
            cleared.append(1)
            shutil.rmtree(cache.dir)
        return real()
    monkeypatch.setattr(vc.uuid, "uuid4", clearing)
    cache.prepare()
    assert cleared and (cache.dir / "steps").is_dir() and not list((cache.dir / "steps").iterdir())
    assert (cache.dir / vc.SHOT_MARKER).is_file()


def test_max_bytes_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOM_CACHE_MAX_GB", "0.5")
    assert vc.max_bytes_from_env() == 2**29
    monkeypatch.setenv("VOM_CACHE_MAX_GB", "lots")
    with pytest.raises(InputError, match="VOM_CACHE_MAX_GB 'lots'"):
        vc.max_bytes_from_env()
    # 1e300 GiB overflowed to infinity in bytes (exit 1, "please report"); 1e-12 GiB was a cap of 0 bytes
    for value in ("1e300", "1e-12"):
        monkeypatch.setenv("VOM_CACHE_MAX_GB", value)
        with pytest.raises(InputError, match=f"VOM_CACHE_MAX_GB '{value}': expected a number of GiB from 1 byte"):
            vc.max_bytes_from_env()


def test_cache_info_skips_a_shot_folder_cleared_while_it_is_listed(store: Store, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`vom cache info` on a shared cache while someone clears it: a folder emptied and removed after it was listed
    crashed it (FileNotFoundError, exit 1)."""
    cache = store(tmp_path / "c", "/p/a.####.exr")
    cache.prepare()
    [shot] = vc._shot_dirs(tmp_path / "c")
    real = vc._entries

    def entries_then_gone(folder: Path, **kw: object) -> object:
        found = list(real(folder, **kw))
        shutil.rmtree(folder)  # cleared between the listing and the stat
        return iter(found)

    monkeypatch.setattr(vc, "_entries", entries_then_gone)
    assert vc.cache_info(tmp_path / "c") == []


def test_working_geometry_and_round_trip() -> None:
    geo = fr.geometry(1920, 1080, 960)
    assert geo.size == (960, 540) and geo.padded == (960, 544) and geo.pad == (0, 4)
    small = fr.geometry(96, 64, 960)  # enlarged, by MAX_UPSCALE at most
    assert fr.MAX_UPSCALE == 2.0 and small.size == (192, 128) and small.padded == (192, 128)
    assert fr.geometry(700, 400, 960).size == (960, 549)  # up to the working size when that is nearer
    assert not fr.geometry(960, 540, 960).scaled and fr.geometry(1920, 1080, 960).size == (960, 540)
    rng = np.random.default_rng(0)
    display = rng.random((64, 100, 3), dtype=np.float32)
    g = fr.geometry(100, 64, 100)  # the plate is the working size: not resized
    x = fr.image_to_working(display, g)
    assert x.shape == (64, 112, 3) and x.flags.c_contiguous  # channels-last for the network, no copy
    assert np.array_equal(x[:, 100:], np.repeat(x[:, 99:100], 12, axis=1))  # edge-replicated pad
    assert np.array_equal(x[:, :100], np.clip(display, 0, 1))
    assert not np.shares_memory(x, display)  # the caller's frame (a worker's memo holds it) is not written
    alpha = rng.random((64, 112), dtype=np.float32)
    assert np.array_equal(fr.alpha_to_plate(alpha, g, display), alpha[:, :100])  # unscaled: a pure crop


def test_an_enlarged_plate_and_its_alpha_on_the_way_back() -> None:
    h, w = 40, 60
    geo = fr.geometry(w, h, 120)  # 2x: 120x80, padded 128x80
    assert geo.size == (120, 80) and geo.padded == (128, 80)
    display = np.zeros((h, w, 3), np.float32)
    display[:, 23:] = 1.0  # a vertical edge
    x = fr.image_to_working(display, geo)
    assert x.shape == (80, 128, 3) and np.array_equal(x[:, 46:120], np.ones((80, 74, 3), np.float32))
    assert not x[:, :46].any()  # the area filter at 2x repeats each pixel: the edge stays where it was
    roto = np.zeros((h, w), np.float32)
    roto[10:30, 20:40] = 1
    assert np.array_equal(fr.mask_to_working(roto, geo)[0, :, :120], np.kron(roto, np.ones((2, 2))))
    # the network's alpha at working size comes back at the plate's size, on the plate's own edge
    working = np.zeros((80, 128), np.float32)
    working[:, 46:] = 1.0
    back = fr.alpha_to_plate(working, geo, display)
    assert back.shape == (h, w) and np.abs(back - display[..., 0]).max() < 0.02


def test_guided_upsampling_follows_the_full_res_edge() -> None:
    # A vertical edge at x = 101 (not on the low-res grid): bilinear zoom smears it, the guide keeps it sharp.
    h, w = 64, 256
    display = np.zeros((h, w, 3), np.float32)
    display[:, 101:] = 1.0
    geo = fr.geometry(w, h, 128)
    import cv2

    truth = display[..., 0]
    # what a network at working size would ideally predict: the edge's coverage of each low-res pixel
    lr_alpha = cv2.resize(truth, geo.size, interpolation=cv2.INTER_AREA)  # 128x32: no padding needed
    up = fr.alpha_to_plate(lr_alpha, geo, display)
    assert up.shape == (h, w)
    bilinear = cv2.resize(lr_alpha[: geo.size[1], : geo.size[0]], (w, h), interpolation=cv2.INTER_LINEAR)
    assert np.abs(up - truth).mean() < 0.1 * np.abs(bilinear - truth).mean()
    assert up.min() >= 0 and up.max() <= 1


def test_a_shot_folder_cleared_as_a_render_begins_is_made_again_by_its_next_write(store: Store,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A QA pass: `vom cache clear --older-than 7` removed the empty folder of a render that had just started; its
    first write failed and the cache was off for the rest of the render (no resume, no re-render speed-up)."""
    c = store(tmp_path, "/p/sh040/plate.####.exr", max_bytes=1 << 30)
    c.prepare()
    assert main(["cache", "clear", "--cache", str(tmp_path), "--older-than", "7"]) == 0
    assert "shot folder removed" in capsys.readouterr().out and not c.dir.exists()
    c.put_alpha(K("a"), {"a": torch.ones(3)})
    assert torch.equal(c.get_alpha(K("a"))["a"], torch.ones(3))
    assert vc._is_shot_dir(c.dir)  # its shot.json again: clear and info know it as vom's
    c.put_keys(1, K("k"), {"f": torch.ones(2)})
    assert c.get_keys(1, K("k")) is not None


def test_cache_info_json_names_the_folder_absolute_and_refusals_say_the_value_as_given(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: `vom cache info --cache c --json` said "root": "c" where every other JSON output names absolute
    paths; `--older-than -1` was echoed as -1.0."""
    (tmp_path / "c").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["cache", "info", "--cache", "c", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["root"] == str(tmp_path / "c")
    assert main(["cache", "clear", "--cache", "c", "--older-than", "-1"]) == 2
    assert "--older-than -1: expected a number of days >= 0" in capsys.readouterr().err
    # as typed, not as a float reads it (QA: 1e400 was refused as "--older-than inf")
    for typed in ("1e400", "-1e400", "NaN", "two", "1e-400x"):
        assert main(["cache", "clear", "--cache", "c", f"--older-than={typed}"]) == 2
        assert f"vom cache: error: --older-than {typed}: expected a number of days >= 0\n" in capsys.readouterr().err
    assert main(["cache", "clear", "--cache", "c", "--older-than", "1e1"]) == 0
    assert "not used for 10 days" in capsys.readouterr().out


def test_what_vom_makes_in_a_shared_cache_is_shared_as_the_root_is(tmp_path: Path, store: Store) -> None:
    """A team's cache root (group-writable): a member with umask 077 made a lock and a shot folder nobody else could
    open, which turned every other member's render uncached for good (QA). The lock and the folders vom makes take
    the root's group permissions where they have its group; never the others' (a world-writable root: anyone could
    forge entries), nor on a file of another group (review); a private root keeps them private."""
    import stat

    for root_mode, gid, folder_mode, file_mode in ((0o775, None, 0o770, 0o660), (0o777, None, 0o770, 0o660),
                                                   (0o775, 4242, 0o700, 0o600), (0o700, None, 0o700, 0o600)):
        root = tmp_path / f"cache_{root_mode:o}_{gid}"
        root.mkdir()
        root.chmod(root_mode)
        if gid is not None:  # a root of another group than the files this user makes (not setgid)
            os.chown(root, -1, gid)
        old = os.umask(0o077)
        try:
            s = store(root, f"/show/sh010/plate_{root_mode:o}_{gid}.####.exr")
            s.prepare()
            # entries too: a member's umask 077 made them private, so a chunk on a teammate's worker could not
            # continue from the state the chunk before it saved (QA)
            s.put_keys(1, K("k"), {"f": torch.ones(2)})
        finally:
            os.umask(old)
        assert stat.S_IMODE((root / vc.LOCK_NAME).stat().st_mode) == file_mode, root
        [entry] = (s.dir / "keys").iterdir()
        assert stat.S_IMODE(entry.stat().st_mode) == file_mode, entry
        for folder in (s.dir, s.dir / "keys", s.dir / "steps"):
            assert stat.S_IMODE(folder.stat().st_mode) == folder_mode, folder
        assert stat.S_IMODE((s.dir / vc.SHOT_MARKER).stat().st_mode) == file_mode
        assert [p.name for p in root.iterdir() if p.name.endswith(".tmp")] == []
    # a lock and folders this user made private before (an older vom): shared when next used
    root = tmp_path / "cache_775_None"
    again = store(root, "/show/sh010/plate_775_None.####.exr")
    (root / vc.LOCK_NAME).chmod(0o600)
    again.dir.chmod(0o700)
    again.prepare()
    assert stat.S_IMODE((root / vc.LOCK_NAME).stat().st_mode) == 0o660
    assert stat.S_IMODE(again.dir.stat().st_mode) == 0o770


def test_a_shot_folder_that_cannot_be_written_is_named(tmp_path: Path, store: Store, monkeypatch) -> None:
    """The warning named the cache root, which was writable, where a teammate's shot folder (umask 022) was not
    (QA)."""
    import builtins

    s = store(tmp_path / "cache", "/show/sh010/plate.####.exr")
    real_open = builtins.open

    def refused(path: Any, mode: str = "r", *a: Any, **k: Any) -> Any:
        if ".probe." in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", refused)
    s.prepare()  # what it holds is read (a teammate's entries), none written
    assert re.match(r"^cache folder '.*/sh010_plate-[0-9a-f]+/steps' cannot be written \(Permission denied\)",
                    s.read_only), s.read_only


def test_the_keys_folder_is_listed_once_a_render_not_at_every_write(tmp_path: Path, store: Store,
                                                                    monkeypatch) -> None:
    """Each key write listed the whole keys folder to tidy its frame's entries: 4 ms a write at 5000 frames,
    quadratic in a shot's length (QA)."""
    c = store(tmp_path, "/shots/sh010/plate/sh010.####.exr", max_bytes=1 << 30)
    c.prepare()
    listed: list[object] = []
    real = os.scandir
    monkeypatch.setattr(vc.os, "scandir", lambda p=".": listed.append(p) or real(p))
    t = {"k16": torch.randn(1, 8, 4, 6)}
    for f in range(1, 11):
        c.put_keys(f, K(f"a{f}"), t)
    assert len([p for p in listed if str(p).endswith("keys")]) == 1
    assert all(c.get_keys(f, K(f"a{f}")) is not None for f in range(1, 11))


def test_a_lock_is_made_where_hard_links_are_not_and_a_killed_makers_temporary_is_cleared(
        tmp_path: Path, store: Store, monkeypatch) -> None:
    """The lock is made by a temporary linked into place; a file system without hard links (FAT, some SMB and FUSE
    mounts) turned every render uncached (review): it is made in place there. A temporary a killed process left
    is vom's: `vom cache clear` removes it instead of listing it as the user's."""
    import errno

    def no_links(*a: Any, **k: Any) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    s = store(tmp_path / "cache", "/show/sh010/plate.####.exr")
    with monkeypatch.context() as m:
        m.setattr(os, "link", no_links)
        s.prepare()
    assert (tmp_path / "cache" / vc.LOCK_NAME).is_file()
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")] == []
    left = tmp_path / "cache" / f"{vc.LOCK_NAME}.{'0' * 32}.tmp"
    left.write_bytes(b"")
    # a user's file named alike (something in it), and a temporary as young as a live maker's: left (QA: a user's
    # file of that name was deleted whatever it held)
    users = tmp_path / "cache" / f"{vc.LOCK_NAME}.{'1' * 32}.tmp"
    users.write_text("my notes")
    young = tmp_path / "cache" / f"{vc.LOCK_NAME}.{'2' * 32}.tmp"
    young.write_bytes(b"")
    old = time.time() - 2 * 3600
    for p in (left, users):
        os.utime(p, (old, old))
    report = vc.clear(tmp_path / "cache")
    assert not left.exists() and users.exists() and young.exists() and report.temporaries == 1
    assert sorted(report.left_alone) == sorted([str(users), str(young)])


def test_clear_says_the_temporaries_it_removes_apart_from_the_entries(tmp_path: Path, store: Store) -> None:
    """A QA pass: `vom cache info` said 15 entries and `vom cache clear` "cleared 16 entries": a killed writer's
    temporary was counted as an entry."""
    s = store(tmp_path / "cache", "/show/sh010/plate.####.exr")
    s.prepare()
    s.put_alpha(K("a"), {"alpha": torch.zeros(4, 4)})
    steps = s.dir / "steps"
    entry = next(p.name for p in steps.iterdir())
    temp = steps / f".{entry}.{'0' * 32}.tmp"
    temp.write_bytes(b"")
    old = time.time() - 2 * 3600
    os.utime(temp, (old, old))
    assert sum(sh.files for sh in vc.cache_info(tmp_path / "cache")) == 1
    report = vc.clear(tmp_path / "cache")
    assert report.files == 1 and report.temporaries == 1 and not temp.exists()


def test_a_write_marks_an_eviction_due_at_once(tmp_path: Path, store: Store) -> None:
    """A render killed (SIGKILL, OOM) before its end left what it wrote over the cap with no mark (review): the
    first write after an eviction marks it; an eviction takes the mark away."""
    s = store(tmp_path / "cache", "/show/sh010/plate.####.exr", max_bytes=1 << 30)
    s.prepare()
    assert not s.evict_due
    s.put_alpha(K("a"), {"alpha": torch.zeros(4, 4)})
    assert (tmp_path / "cache" / vc.DIRTY_NAME).exists()
    fresh = store(tmp_path / "cache", "/show/sh010/plate.####.exr", max_bytes=1 << 30)  # the next render's
    assert fresh.evict_due and not fresh.wrote_since_evict
    fresh.evict()
    assert not (tmp_path / "cache" / vc.DIRTY_NAME).exists() and not fresh.evict_due


def test_clear_of_a_users_folder_named_as_the_cache_leaves_it_as_it_was(tmp_path: Path, store: Store) -> None:
    """A folder of the user's given as --cache: `vom cache clear` removed vom's shot folders but left its lock and
    dirty marker among the user's files (QA); with nothing of the cache left they go too. A clear that leaves a shot
    keeps them."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    one, two = store(folder, "/show/sh010/plate.####.exr"), store(folder, "/show/sh020/plate.####.exr")
    for c in (one, two):
        c.prepare()
        c.put_alpha(K(str(c.dir)), {"a": torch.ones(8)})
    assert (folder / vc.LOCK_NAME).is_file() and (folder / vc.DIRTY_NAME).is_file()  # written, not yet evicted
    vc.clear(folder, shots=[one.dir.name])  # a shot left: the cache is still one
    assert (folder / vc.LOCK_NAME).is_file() and two.dir.is_dir()
    report = vc.clear(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert report.left_alone == [str(folder / "notes.txt")]
    # a cache folder of vom's alone keeps its lock: an older vom waiting on it could not tell it was removed (review)
    own = store(tmp_path / "cache", "/show/sh030/plate.####.exr")
    own.prepare()
    own.put_alpha(K("x"), {"a": torch.ones(8)})
    vc.clear(tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [vc.LOCK_NAME]


def test_a_lock_removed_while_waited_on_is_not_held_beside_the_new_one(tmp_path: Path) -> None:
    """A clear that empties the cache removes its lock while holding it: a process waiting on the old file must then
    lock the one at the path, or it and a process that made the new file both hold "the" lock."""
    import fcntl
    import threading

    cache = tmp_path / "cache"
    cache.mkdir()
    inside = threading.Event()

    def waiter() -> None:
        with vc._root_lock(cache):
            inside.set()

    with vc._root_lock(cache):
        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        time.sleep(0.3)  # the waiter has opened the old file and polls it
        os.unlink(cache / vc.LOCK_NAME)
        new = os.open(cache / vc.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)  # another process's lock, made anew
        fcntl.flock(new, fcntl.LOCK_EX)
    try:
        assert not inside.wait(0.5), "the waiter holds the removed file's lock beside the new one's holder"
    finally:
        fcntl.flock(new, fcntl.LOCK_UN)
        os.close(new)
    assert inside.wait(5)
    thread.join(5)


def test_a_killed_writers_temporary_is_shown_by_info_and_gone_at_the_next_eviction(
        tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    """A state's temporary a SIGKILL left (50-65 MB) outlived later renders, under the cap, and `vom cache info`
    never counted it (95 MiB said, 158 MB on disk: QA). Info names it; the next eviction removes it, cap or not; a
    live writer's (young) stays."""
    s = store(tmp_path / "cache", "/show/sh010/plate.####.exr", max_bytes=1 << 30)
    s.prepare()
    s.put_alpha(K("a"), {"alpha": torch.zeros(4, 4)})
    steps = s.dir / "steps"
    entry = next(p.name for p in steps.iterdir())
    dead, live = steps / f".{entry}.{'0' * 32}.tmp", steps / f".{entry}.{'1' * 32}.tmp"
    begun = s.dir.joinpath("steps", entry).read_bytes()  # an entry as a writer wrote it, its header marked
    for p in (dead, live):
        p.write_bytes(begun)
    old = time.time() - 2 * 3600
    os.utime(dead, (old, old))
    (stats,) = vc.cache_info(tmp_path / "cache")
    assert (stats.files, stats.temporaries, stats.temporary_bytes) == (1, 1, len(begun))
    assert main(["cache", "info", "--cache", str(tmp_path / "cache")]) == 0
    assert "and 1 temporary of writers killed over an hour ago (" in capsys.readouterr().out
    assert main(["cache", "info", "--cache", str(tmp_path / "cache"), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)  # the total is the shots' summed, as before; temporaries apart
    assert said["bytes"] == sum(sh["bytes"] for sh in said["shots"]) and said["temporary_bytes"] == len(begun)
    assert s.evict() == len(begun) and not dead.exists() and live.exists()
    assert (steps / entry).exists() and s.evicted_own == 0  # no entry of the shot's went: nothing to warn of


def test_writing_entries_keeps_no_type_per_entry_and_the_files_are_safetensors() -> None:
    """QA: safetensors.torch.save made a ctypes array type for each byte length it wrote and kept it for good; the
    compressed blobs are each of another length, so a vom worker or a host rendering in a loop grew by ~6.5 kB for
    every entry written. The entries are written here, in safetensors' own format, which safetensors reads back."""
    import ctypes

    import torch
    from safetensors.torch import load

    from vom_plugin.engine import cache_entry

    g = torch.Generator().manual_seed(0)
    cache_entry.encode("a", {"alpha": torch.rand(1, 1, 8, 8, generator=g).half()})
    before = len(ctypes._pointer_type_cache)  # type: ignore[attr-defined]
    for _ in range(200):
        mask = torch.rand(1, 1, 135, 240, generator=g) > 0.5 + 0.4 * torch.rand(1, generator=g)
        cache_entry.encode("a", {"alpha": mask.half()})
    assert len(ctypes._pointer_type_cache) - before < 5  # type: ignore[attr-defined]
    tensors = {"w": torch.rand(3, 5, generator=g), "idx": torch.arange(7), "q": torch.randint(0, 255, (4, 4),
               dtype=torch.uint8, generator=g), "none": torch.zeros(0), "flags": torch.tensor([True, False]),
               "h": torch.rand(2, 3, generator=g).half()}
    data = cache_entry.encode("addr", tensors, compress=False)
    read = load(data)
    assert sorted(read) == sorted(tensors) and all(torch.equal(read[k], tensors[k]) for k in tensors)
    back = cache_entry.decode("addr", cache_entry.encode("addr", tensors))
    assert all(torch.equal(back[k], tensors[k]) for k in tensors)
    # each tensor starts on a multiple of its element size (the widest first, as safetensors lays them out)
    import json
    import struct

    n = struct.unpack("<Q", data[:8])[0]
    assert n % 8 == 0
    header = json.loads(data[8 : 8 + n])
    for name, t in tensors.items():
        assert header[name]["data_offsets"][0] % t.element_size() == 0, name
    # an entry safetensors.torch.save wrote (vom before session 52) reads as it did (review: the digest's order)
    from safetensors.torch import save

    meta = {cache_entry.MARKER: cache_entry.FORMAT, "digest": cache_entry.tensor_digest("addr", tensors),
            "key": cache_entry.key_id()}
    old = cache_entry.decode("addr", save(tensors, metadata=meta))
    assert all(torch.equal(old[k], tensors[k]) for k in tensors)


def test_free_space_of_a_cache_not_made_yet_is_its_disks(tmp_path: Path) -> None:
    """QA: the free space of a cache folder that did not exist yet could not be told (None), so a new cache below
    VOM_CACHE_MIN_FREE_GB was made, with its shot folder, and said only at its first write: the nearest existing
    folder's disk is asked."""
    import shutil

    got = vc.free_bytes(tmp_path / "no" / "such" / "cache")
    assert got is not None and abs(got - shutil.disk_usage(tmp_path).free) < 64 << 20


def test_a_cache_that_cannot_be_made_says_so_not_that_its_disk_is_full(tmp_path: Path, store: Store,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: `--cache /proc/nocache` (a pseudo file system: 0 blocks, 0 free) and a cache under a read-only folder on a
    disk that reports no room were refused as "the disk holding ... has 0.0000 GiB free: a 0.0 MiB entry would
    leave less than the 1 GiB ...": the wrong reason. The folder that cannot be made or written is said, with the
    system's reason."""
    import shutil
    import subprocess
    import sys

    if os.path.isdir("/proc/self") and shutil.disk_usage("/proc").total == 0:
        assert vc.free_bytes("/proc/nocache") is None  # no disk's free space
        with pytest.raises(vc.CacheUnavailable) as e:
            store(Path("/proc/nocache"), "/p/a.####.exr").prepare()
        assert str(e.value).startswith("cache folder '/proc/nocache' cannot be made (")
        assert "GiB free" not in str(e.value)
    # a full disk, and a folder this user may not write (a process without root's permission overrides): the
    # folder's refusal is said, a new cache is not made, and a cache holding the shot is read for that reason
    from test_attack_cache import unprivileged_prefix

    prefix = unprivileged_prefix()
    first = tmp_path / "first.exr"
    first.write_text("p")
    held = tmp_path / "held"
    vc.ShotCache(held, "/p/a.####.exr", first_frame=first).prepare()
    # a shared root this user may not write, holding the shot's folder, which they may: the disk's room is said
    shared = tmp_path / "shared"
    vc.ShotCache(shared, "/p/a.####.exr", first_frame=first).prepare()
    (tmp_path / "ro").mkdir()
    code = ("import sys\nfrom vom_plugin.engine import cache as vc\nvc.free_bytes = lambda folder: 0\n"
            "for root in sys.argv[2:]:\n    s = vc.ShotCache(root, '/p/a.####.exr', first_frame=sys.argv[1])\n"
            "    try:\n        s.prepare()\n        print('read only:', s.read_only)\n"
            "    except vc.CacheUnavailable as e:\n        print('unavailable:', e)\n")
    folders = [tmp_path / "ro", held, *held.rglob("*")]
    for p in folders:
        if p.is_dir():
            p.chmod(0o555)
    try:
        shared.chmod(0o555)
        for p in shared.rglob("*"):  # (its files too: the unprivileged user writes into the folders as others)
            p.chmod(0o777 if p.is_dir() else 0o666)
        r = subprocess.run([*prefix, sys.executable, "-c", code, str(first), str(tmp_path / "ro" / "cache"), str(held),
                            str(shared)], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    finally:
        for p in [*folders, shared]:
            if p.is_dir():
                p.chmod(0o755)
    assert r.returncode == 0, r.stderr
    made, read, low = r.stdout.splitlines()
    assert low == (f"read only: the disk holding {shared} has 0.0000 GiB free, less than the 1 GiB the cache leaves "
                   f"free for the outputs (VOM_CACHE_MIN_FREE_GB); free space there or pass --cache DIR on another "
                   f"disk"), low
    assert made == (f"unavailable: cache folder '{tmp_path / 'ro' / 'cache'}' cannot be made (Permission denied); "
                    f"pass --cache DIR (or set VOM_CACHE_DIR) to a writable folder")
    assert re.match(rf"read only: cache folder '{re.escape(str(held))}/p_a-[0-9a-f]+/steps' cannot be written "
                    rf"\(Permission denied\)\Z", read), read
    assert not (tmp_path / "ro" / "cache").exists()


def test_the_free_space_floor_is_said_as_a_plain_number_and_without_an_entry_before_one(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: with VOM_CACHE_MIN_FREE_GB=100000 a new cache was refused as "a 0.0 MiB entry would leave less than the
    1e+05 GiB": no entry was being written, and the floor read as a formula."""
    monkeypatch.setattr(vc, "free_bytes", lambda folder: 2**30)
    monkeypatch.setenv("VOM_CACHE_MIN_FREE_GB", "100000")
    with pytest.raises(vc.CacheUnavailable) as e:
        store(tmp_path / "cache", "/p/a.####.exr").prepare()
    assert str(e.value) == (f"the disk holding {tmp_path / 'cache'} has 1.0000 GiB free, less than the 100,000 GiB the "
                            f"cache leaves free for the outputs (VOM_CACHE_MIN_FREE_GB); free space there or pass "
                            f"--cache DIR on another disk")
    monkeypatch.setenv("VOM_CACHE_MIN_FREE_GB", "1.5")
    s = store(tmp_path / "cache", "/p/a.####.exr")
    with pytest.raises(vc.CacheUnavailable, match=r"1\.0000 GiB free: a 2\.0 MiB entry would leave less than the "
                                                  r"1\.5 GiB the cache"):
        s.check_room(2 << 20)


def test_cache_info_says_a_recent_use_in_minutes_or_hours(store: Store, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """QA: `vom cache info` said "used 0.0 days ago" of every shot rendered today."""
    ages = {"/p/a.####.exr": 5, "/p/b.####.exr": 25 * 60, "/p/c.####.exr": 5 * 3600, "/p/d.####.exr": 3 * 86400}
    for plate, age in ages.items():
        c = store(tmp_path, plate)
        c.prepare()
        c.put_alpha(K(plate), {"a": torch.ones(10)})
        path = c.dir / "steps" / f"{K(plate)}.alpha.safetensors"
        os.utime(path, (time.time() - age,) * 2)
    assert main(["cache", "info", "--cache", str(tmp_path)]) == 0
    said = {line.split()[-1]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "used under a minute ago " in said["/p/a.####.exr"]
    assert "used 25 minutes ago " in said["/p/b.####.exr"]
    assert "used 5.0 hours ago " in said["/p/c.####.exr"]
    assert "used 3.0 days ago " in said["/p/d.####.exr"]
    assert len({line.index("/p/") for line in said.values()}) == 1  # the plates still one column


def test_a_cache_over_a_lowered_cap_is_said_and_trimmed_by_clear_to_cap(store: Store, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """QA: a lowered VOM_CACHE_MAX_GB is applied by the next render that writes; meanwhile `vom cache info` said
    "22.4 MiB of 5.1 MiB (VOM_CACHE_MAX_GB)" with no word. It says the cache is over its cap and what brings it
    under; `vom cache clear --to-cap` evicts as that render would, the least recently used shot first."""
    cache = tmp_path / "cache"
    shots, size = _aged_shots(store, cache, ("/p/old.####.exr", "/p/new.####.exr"), 4)
    cap = size["/p/new.####.exr"] + 1000  # the newer shot fits, with both over it
    monkeypatch.setenv("VOM_CACHE_MAX_GB", repr(cap / 2**30))
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    over = sum(size.values()) - cap
    assert (f"  over this cap by {human_size(over)}: the next render that writes to the cache with this cap evicts "
            f"the least recently used entries; `vom cache clear --to-cap` does so now (or --older-than DAYS, --shot ID)"
            f"\n") in capsys.readouterr().out
    for refused, why in ((["info", "--to-cap"], "--to-cap is a clear option"),
                         (["clear", "--to-cap", "--shot", "x"], "--to-cap takes the least recently used entries of "
                                                                "the whole cache, not with --shot")):
        assert main(["cache", *refused, "--cache", str(cache)]) == 2
        assert why in capsys.readouterr().err
    assert main(["cache", "clear", "--to-cap", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"cleared 4 entries beyond the {human_size(cap)} cap of VOM_CACHE_MAX_GB "
                          f"({human_size(size['/p/old.####.exr'])}) from {cache}\n"), out
    assert "/p/old.####.exr" in out and "/p/new.####.exr" not in out
    assert not list((shots["/p/old.####.exr"].dir / "keys").iterdir())
    assert len(list((shots["/p/new.####.exr"].dir / "keys").iterdir())) == 4
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    assert "over the cap" not in capsys.readouterr().out
    assert main(["cache", "clear", "--to-cap", "--cache", str(cache)]) == 0  # under it: nothing goes
    assert capsys.readouterr().out.startswith("cleared 0 entries beyond the")
    assert len(list((shots["/p/new.####.exr"].dir / "keys").iterdir())) == 4
    # the cap is this shell's: unset, the default is no word on the cache's (a farm's 2 TB cache cut to 20 GiB on a
    # hint's advice: second review); said, and --to-cap refused
    monkeypatch.delenv("VOM_CACHE_MAX_GB")
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    assert "(the default cap: VOM_CACHE_MAX_GB is not set here)" in capsys.readouterr().out
    assert main(["cache", "clear", "--to-cap", "--cache", str(cache)]) == 2
    assert "--to-cap: VOM_CACHE_MAX_GB is not set here" in capsys.readouterr().err
    assert len(list((shots["/p/new.####.exr"].dir / "keys").iterdir())) == 4


def test_to_cap_passes_over_an_entry_it_cannot_remove_and_says_each(store: Store, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Second review: the least recently used shot's entries could not be deleted (a teammate's folder, immutable
    files), and the eviction stopped at the first: "cleared 0 entries", nothing else tried, the cache still over."""
    from vom_plugin.engine import cache as vc

    cache = tmp_path / "cache"
    plates = ("/p/locked.####.exr", "/p/mid.####.exr", "/p/new.####.exr")
    shots, size = _aged_shots(store, cache, plates, 2)
    locked = str(shots["/p/locked.####.exr"].dir)
    real_unlink = os.unlink

    def unlink(path: object, *a: object, **k: object) -> None:
        if str(path).startswith(locked):
            raise PermissionError(13, "Permission denied", str(path))
        real_unlink(path, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(vc.os, "unlink", unlink)
    # an eviction left due (a render stopped before its own): done by --to-cap only where the cache ends within the cap
    (cache / vc.DIRTY_NAME).touch()
    monkeypatch.setenv("VOM_CACHE_MAX_GB", repr(1000 / 2**30))  # below what cannot go: still over it
    assert main(["cache", "clear", "--to-cap", "--cache", str(cache)]) == 2
    assert "still" in capsys.readouterr().err and (cache / vc.DIRTY_NAME).exists()
    shots, size = _aged_shots(store, cache, plates, 2)  # what went put back
    monkeypatch.setenv("VOM_CACHE_MAX_GB", repr((size["/p/new.####.exr"] + 1000) / 2**30))
    assert main(["cache", "clear", "--to-cap", "--cache", str(cache)]) == 2
    out, err = capsys.readouterr()
    assert "/p/mid.####.exr" in out  # the next shots went, least recently used first, until within the cap
    assert not list((shots["/p/mid.####.exr"].dir / "keys").iterdir())
    assert "2 entries could not be removed (e.g. " in err and "Permission denied" in err
    assert err.rstrip().endswith("; the others listed above were; the cache is within the cap"), err
    assert not (cache / vc.DIRTY_NAME).exists()
    # a render's own eviction goes past it too, and says the first
    with pytest.raises(PermissionError):
        vc.evict(cache, 0)
    assert not list((shots["/p/new.####.exr"].dir / "keys").iterdir())
