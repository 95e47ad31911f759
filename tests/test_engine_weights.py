"""save_weights / load_model: fp16 safetensors with the config in metadata; clear errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vom_plugin.engine.weights import load_model, read_weights_metadata, save_weights, weights_path
from vom_plugin.errors import InputError
from vom_plugin.model import build_model


def test_round_trip_keeps_config_and_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("lite")
    path = tmp_path / "w" / "lite.safetensors"
    save_weights(model, path, metadata={"step": 12})
    meta = read_weights_metadata(path)
    assert meta["config"] == "lite" and meta["step"] == "12" and meta["vom_version"]
    assert path.stat().st_size < 16 * 2**20
    loaded = load_model(path)
    assert loaded.config.name == "lite" and not loaded.training
    for k, v in model.state_dict().items():
        w = loaded.state_dict()[k]
        if v.is_floating_point():
            torch.testing.assert_close(w, v.half().float())  # fp16 on disk
        else:
            assert torch.equal(w, v)
    assert list(tmp_path.glob("w/*.tmp")) == []  # no temp file left behind


def test_fp32_option_is_exact(tmp_path: Path) -> None:
    model = build_model("lite")
    save_weights(model, tmp_path / "x.safetensors", fp16=False)
    loaded = load_model(tmp_path / "x.safetensors")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_weights_are_written_readable_by_others_keeping_a_files_own_mode(tmp_path: Path) -> None:
    """A QA pass: `vom train --calibrate --to` wrote 0600 weights (safetensors' mode), which another user's render
    of a shared weights folder could not read; export had its own chmod."""
    import os
    import stat

    from vom_plugin.model import build_model

    model = build_model("lite")
    save_weights(model, tmp_path / "w.safetensors")
    assert stat.S_IMODE(os.stat(tmp_path / "w.safetensors").st_mode) == 0o644
    os.chmod(tmp_path / "w.safetensors", 0o640)  # the owner's choice for a file there before stays
    save_weights(model, tmp_path / "w.safetensors")
    assert stat.S_IMODE(os.stat(tmp_path / "w.safetensors").st_mode) == 0o640


def test_missing_file_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match=r"nope.safetensors' does not exist: expected a \.safetensors file written by "
                                         r"vom$"):
        load_model(tmp_path / "nope.safetensors")
    # a misspelt shipped name: the names said too (QA: 'litee' read as a path in the working folder, and only that)
    with pytest.raises(InputError, match=r"litee' does not exist: expected a \.safetensors file written by vom, or a "
                                         r"shipped model's name \(default, lite\)$"):
        read_weights_metadata(tmp_path / "litee")
    # the names of the files that ship: full is a configuration no weights of which ship (it was named, QA)
    from vom_plugin.locations import weights_path

    with pytest.raises(InputError, match=r"^model 'full': weights file '.*full\.safetensors' does not exist: no "
                                         r"weights of it are installed \(shipped here: default, lite\); or give"):
        read_weights_metadata(weights_path("full"))
    # none installed (an empty VOM_WEIGHTS_DIR): no names listed, and the one asked for as typed (review)
    monkeypatch.setenv("VOM_WEIGHTS_DIR", str(tmp_path / "runs"))
    with pytest.raises(InputError, match=r"litee' does not exist: .*or a shipped model's name$"):
        read_weights_metadata(tmp_path / "litee")
    with pytest.raises(InputError, match=r"^model 'default' or 'lite': weights file .* \(the folder "
                                         r"VOM_WEIGHTS_DIR names\) does not exist: no weights of it are installed "
                                         r"\(shipped here: none"):
        read_weights_metadata(weights_path("default"))
    (tmp_path / "runs").mkdir()
    with pytest.raises(InputError, match=r"runs' is a folder: expected a \.safetensors file"):  # not "does not exist"
        read_weights_metadata(tmp_path / "runs")


def test_not_safetensors_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"hello")
    with pytest.raises(InputError, match="bad.safetensors"):
        load_model(bad)


def test_a_cut_short_or_lengthened_file_is_refused_naming_it(tmp_path: Path) -> None:
    """The header is read without torch (a render checks the file before importing it), and what it says must
    match the file: a copy that did not finish is refused as damaged, not loaded until safetensors fails."""
    from safetensors import safe_open

    path = tmp_path / "w.safetensors"
    save_weights(build_model("lite"), path, metadata={"step": 3})
    with safe_open(str(path), framework="np") as f:
        assert read_weights_metadata(path) == f.metadata()
    data = path.read_bytes()
    for name, cut in (("short", data[: len(data) // 2]), ("long", data + b"\0"), ("header", data[:100])):
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(cut)
        with pytest.raises(InputError, match=f"{name}.safetensors' is not a readable safetensors file"):
            read_weights_metadata(bad)
        with pytest.raises(InputError, match=f"{name}.safetensors"):
            load_model(bad)


def test_wrong_config_in_metadata(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "odd.safetensors"
    save_file({"a": torch.zeros(1)}, str(path), metadata={"config": "huge"})
    with pytest.raises(InputError, match="odd.safetensors.*'huge'"):
        load_model(path)


def test_a_safetensors_file_without_vom_metadata_is_said_to_be_no_vom_weights(tmp_path: Path) -> None:
    """QA: another tool's safetensors file was refused as "names model config None: expected one of lite, lite2,
    full"."""
    from safetensors.torch import save_file

    for metadata in (None, {"format": "pt"}):
        path = tmp_path / "other.safetensors"
        save_file({"a": torch.zeros(1)}, str(path), metadata=metadata)
        with pytest.raises(InputError) as e:
            load_model(path)
        assert str(e.value) == (f"weights file '{path}' has no vom model config in its metadata: it is not vom weights "
                                f"(a safetensors file another tool wrote?); give a file `vom train --export` wrote, or "
                                f"a shipped model's name")


def test_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v for k, v in build_model("lite").state_dict().items() if "decoder" not in k}
    path = tmp_path / "partial.safetensors"
    save_file(state, str(path), metadata={"config": "lite"})
    with pytest.raises(InputError, match="partial.safetensors.*does not fit.*missing: decoder"):
        load_model(path)


def test_names_resolve_to_the_weights_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOM_WEIGHTS_DIR", str(tmp_path))
    assert weights_path("default") == tmp_path / "lite.safetensors"
    assert weights_path("full") == tmp_path / "full.safetensors"
    assert weights_path(str(tmp_path / "a.safetensors")) == tmp_path / "a.safetensors"
    with pytest.raises(InputError, match=r"lite\.safetensors' \(the folder VOM_WEIGHTS_DIR names\) does not exist"):
        load_model("default")


def test_a_training_checkpoint_given_as_weights_is_told_to_export(tmp_path: Path) -> None:
    """`vom render --model run/best.pt` said only "not a readable safetensors file" (QA)."""
    (tmp_path / "best.pt").write_bytes(b"PK\x03\x04 a torch zip")
    with pytest.raises(InputError, match=r"best\.pt' is not a readable safetensors file \(a training checkpoint\? "
                                         r"export its weights: vom train --export .*best\.pt --to WEIGHTS"):
        read_weights_metadata(tmp_path / "best.pt")
    # said as what it is, not as a header length that "does not fit" the size of a read's cap (QA)
    with pytest.raises(InputError, match=r"\(it is a zip archive, as torch saves a checkpoint, not a safetensors "
                                         r"file\)"):
        read_weights_metadata(tmp_path / "best.pt")
    (tmp_path / "w.safetensors").write_bytes((1 << 40).to_bytes(8, "little") + b"{}" * 10)
    with pytest.raises(InputError, match=r"its first 8 bytes give a header length of 1099511627776, which no "):
        read_weights_metadata(tmp_path / "w.safetensors")
    (tmp_path / "w.safetensors").write_bytes((100).to_bytes(8, "little") + b"{}")
    with pytest.raises(InputError, match=r"its header of 100 bytes runs past its end, after 10 bytes"):
        read_weights_metadata(tmp_path / "w.safetensors")
    nested = b"[" * 5000 + b"]" * 5000  # json recurses: a RecursionError, a traceback of `--model` (QA)
    (tmp_path / "w.safetensors").write_bytes(len(nested).to_bytes(8, "little") + nested)
    with pytest.raises(InputError, match=r"w\.safetensors' is not a readable safetensors file \(header nests deeper "):
        read_weights_metadata(tmp_path / "w.safetensors")



def test_weights_and_checkpoints_that_cannot_be_written_are_named_not_an_internal_error(tmp_path, monkeypatch):
    """A full disk under `vom train`'s checkpoint (torch's RuntimeError) or `--export` (safetensors' own
    SafetensorError) was an internal error with a traceback, exit 1 (QA): InputError naming the file, and nothing
    left behind."""
    import safetensors.torch

    from vom_plugin.train import loop as L

    class SafetensorError(Exception):  # safetensors' error type, as its Rust binding names it
        pass

    def full(*a, **k):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(InputError, match=r"w\.safetensors could not be written \(Error while serializing"):
        save_weights(build_model("lite"), tmp_path / "w.safetensors")

    def enforce(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 15147904 vs 15147796")

    monkeypatch.setattr(torch, "save", enforce)
    with pytest.raises(InputError, match=r"last\.pt could not be written \(\[enforce fail"):
        L._atomic_save({"step": 1}, tmp_path / "last.pt")

    def gone(*a, **k):  # the run's folder removed, or its mount gone (review: an internal error again)
        raise RuntimeError("Parent directory /runs/lite does not exist.")

    monkeypatch.setattr(torch, "save", gone)
    with pytest.raises(InputError, match=r"last\.pt could not be written \(Parent directory"):
        L._atomic_save({"step": 1}, tmp_path / "last.pt")

    def bug(*a, **k):  # torch's other errors (a CUDA one) are not the file's: raised as they are
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(torch, "save", bug)
    with pytest.raises(RuntimeError, match="CUDA error"):
        L._atomic_save({"step": 1}, tmp_path / "last.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_shipped_files_lineage_ends_with_the_settings_it_holds() -> None:
    """QA: the shipped file's ``lineage`` ended at session 13 (guided filter radius 8, eps 1e-4, levels 0.02, 0.95)
    while its own settings were session 37's and 47's: an audit of where the weights came from read the wrong ones."""
    path = weights_path("default")
    if not path.exists():
        pytest.skip(f"no shipped weights at {path}")
    meta = read_weights_metadata(path)
    model = load_model(path)
    radius, eps = meta["guided_filter"].split(",")  # as chosen (the tensor holds eps in half precision)
    lo, hi = meta["output_levels"].split(",")
    assert float(radius) == float(model.decoder.guided[0])
    assert float(eps) == pytest.approx(float(model.decoder.guided[1]), rel=0.02)
    assert (float(lo), float(hi)) == pytest.approx(tuple(float(v) for v in model.output_levels), abs=1e-3)
    last = meta["lineage"].rsplit(" -> ", 1)[-1]
    assert f"radius {radius}, eps {eps}" in last and f"output levels {lo}, {hi}" in last, last
    assert f"keyframe bonus {float(model.keyframe_bonus):g}" in last, last
