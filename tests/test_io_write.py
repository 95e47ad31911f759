"""Alpha EXR writing (vom_plugin.io.write_alpha), checked with tools nobody here wrote: exrheader (OpenEXR;
Debian's, checked last in a test so the rest runs where it is absent), oiiotool (OpenImageIO's wheel) and the
OpenEXR Python bindings."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from test_io_support import leftovers, tool, write_image

from vom_plugin import __version__
from vom_plugin.errors import InputError
from vom_plugin.io import ImageInfo, Window, exr_out, read_plate, write_alpha
from vom_plugin.io.exr_out import write_exr


def _alpha(h=12, w=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((h, w)).astype(np.float16).astype(np.float32)  # exactly representable in half


def _exr(path):
    f = OpenEXR.File(str(path), separate_channels=True)
    return f.header(), {name: ch.pixels for name, ch in f.channels().items()}


def _box(window):
    (x0, y0), (x1, y1) = window
    return (int(x0), int(y0), int(x1), int(y1))


def test_alpha_is_half_channel_a_zip_and_round_trips_exactly(tmp_path):
    alpha = _alpha()
    path = tmp_path / "alpha.1001.exr"
    write_alpha(path, alpha, ImageInfo.for_size(16, 12))
    info = tool("oiiotool", "--info", "-v", str(path))
    assert "16 x   12, 1 channel, half openexr" in info and "channel list: A" in info
    head, channels = _exr(path)
    assert list(channels) == ["A"] and channels["A"].dtype == np.float16
    assert str(head["compression"]).endswith("ZIP_COMPRESSION")
    assert head["vom:version"] == __version__
    np.testing.assert_array_equal(channels["A"].astype(np.float32), alpha)
    assert leftovers(tmp_path) == []
    header = tool("exrheader", str(path))  # last: skips where Debian's exrheader is absent
    assert "A, 16-bit floating-point" in header
    assert "compression (type compression): zip" in header
    assert "dataWindow (type box2i): (0 0) - (15 11)" in header
    assert "displayWindow (type box2i): (0 0) - (15 11)" in header
    assert f'vom:version (type string): "{__version__}"' in header


def test_plate_windows_pixel_aspect_and_metadata_are_carried(tmp_path):
    rgb = np.zeros((18, 20, 3), np.float32)
    plate_path = write_image(
        tmp_path / "plate.exr", rgb, data_origin=(-2, -3), display=(0, 0, 16, 12), pixel_aspect=2.0,
        attributes={"shot:name": "sh010", "FramesPerSecond": 24.0},
    )
    plate = read_plate(plate_path)
    alpha = _alpha()
    out = tmp_path / "out" / "alpha.1001.exr"  # the folder is created
    write_alpha(out, alpha, plate.info, metadata={"model": "lite", "keyframes": [1001, 1050], "vom/frame": 1001})
    info = tool("oiiotool", "--info", "-v", str(out))
    assert "pixel data origin: x=-2, y=-3" in info and "full/display size: 16 x 12" in info
    head, channels = _exr(out)
    assert _box(head["dataWindow"]) == (-2, -3, 17, 14) and _box(head["displayWindow"]) == (0, 0, 15, 11)
    assert head["pixelAspectRatio"] == 2.0
    data = channels["A"].astype(np.float32)
    assert data.shape == (18, 20)
    # Display window exact; overscan = edge extension of the nearest display pixel.
    np.testing.assert_array_equal(data[3:15, 2:18], alpha)
    np.testing.assert_array_equal(data[0, 2:18], alpha[0])
    np.testing.assert_array_equal(data[3:15, 0], alpha[:, 0])
    assert data[17, 19] == alpha[11, 15] and data[0, 0] == alpha[0, 0]
    header = tool("exrheader", str(out))  # last: skips where Debian's exrheader is absent
    assert "dataWindow (type box2i): (-2 -3) - (17 14)" in header
    assert "displayWindow (type box2i): (0 0) - (15 11)" in header
    assert "pixelAspectRatio (type float): 2" in header
    assert 'shot:name (type string): "sh010"' in header
    assert 'vom:model (type string): "lite"' in header
    assert 'vom:keyframes (type string): "1001,1050"' in header
    assert "vom:frame (type int): 1001" in header


def test_the_plates_capture_date_and_its_utc_offset_are_carried_together(tmp_path):
    """The matte's frame was shot when the plate's was: its capDate and utcOffset; a plate with an offset and no
    date loses the offset (OpenImageIO stamps the write's local time, which the plate's offset does not describe)."""
    rgb = np.zeros((12, 16, 3), np.float32)
    dated = read_plate(write_image(tmp_path / "dated.exr", rgb, attributes={
        "DateTime": "2019:05:06 07:08:09", "utcOffset": 3600.0}))
    undated = dataclasses.replace(ImageInfo.for_size(16, 12), metadata={"utcOffset": 3600.0},
                                  metadata_types={"utcOffset": "float"})  # OpenImageIO's writers always date a file
    write_alpha(tmp_path / "a.exr", _alpha(), dated.info)
    write_alpha(tmp_path / "b.exr", _alpha(), undated)
    head, _ = _exr(tmp_path / "a.exr")
    assert head["capDate"] == "2019:05:06 07:08:09" and head["utcOffset"] == 3600.0
    head, _ = _exr(tmp_path / "b.exr")
    assert "utcOffset" not in head and "capDate" not in head


def test_an_undated_plates_matte_is_undated_and_the_same_bytes_written_twice(tmp_path):
    """OpenImageIO dates an undated file with the time of the write: the matte of a PNG or undated EXR plate
    claimed a capture date, and two writes of the same matte differed in bytes (QA)."""
    plate = ImageInfo.for_size(16, 12)
    write_alpha(tmp_path / "a.exr", _alpha(), plate)
    first = (tmp_path / "a.exr").read_bytes()
    os.utime(tmp_path / "a.exr", (0, 0))
    import time

    time.sleep(1.1)  # capDate has whole seconds
    write_alpha(tmp_path / "a.exr", _alpha(), plate)
    assert (tmp_path / "a.exr").read_bytes() == first
    head, _ = _exr(tmp_path / "a.exr")
    assert "capDate" not in head and "utcOffset" not in head
    write_exr(tmp_path / "v.exr", _alpha(), ("A",))  # vom's own files (validation shots) too
    assert "capDate" not in _exr(tmp_path / "v.exr")[0]


def test_what_describes_the_plates_file_or_channels_is_not_carried(tmp_path):
    """A QA pass: an ACES container plate's acesImageContainerFlag made OpenImageIO refuse every write of its
    matte (ACES channel names, no compression); a plate that is an earlier vom output (a precomp) gave an
    alpha-only matte its vom:output "rgba"; a CG plate's Cryptomatte manifests (for channels the matte does not
    hold) were copied into every frame. The plate's time code still is."""
    ap0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)
    import OpenImageIO as oiio

    plate_path = tmp_path / "aces.exr"
    spec = oiio.ImageSpec(16, 12, 3, oiio.HALF)
    spec.attribute("acesImageContainerFlag", 1)
    spec.attribute("chromaticities", oiio.TypeDesc("float[8]"), ap0)
    spec.attribute("compression", "none")
    spec.attribute("vom:output", "rgba")
    spec.attribute("vom:premultiplied", 0)
    spec.attribute("cryptomatte/0a1b2c3/name", "CryptoObject")
    spec.attribute("cryptomatte/0a1b2c3/manifest", '{"a": "3f800000"}')
    spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), (0x01020304, 0))
    out = oiio.ImageOutput.create(str(plate_path))
    assert out.open(str(plate_path), spec) and out.write_image(np.zeros((12, 16, 3), np.float32)) and out.close()
    plate = read_plate(plate_path)
    assert plate.info.metadata.get("acesImageContainerFlag") == 1
    for output in ("alpha", "rgba"):
        path = tmp_path / f"{output}.exr"
        write_alpha(path, _alpha(), plate.info, output=output, rgb=plate.rgb, metadata={"frame": 1})
        head, _ = _exr(path)
        assert "acesImageContainerFlag" not in head
        assert not [k for k in head if k.startswith("cryptomatte")]
        assert "vom:premultiplied" not in head and head.get("vom:output") is None and head["vom:frame"] == 1
        assert "timeCode" in head


def test_smaller_offset_data_window_writes_only_the_data_window(tmp_path):
    info = ImageInfo(Window(0, 0, 16, 12), Window(5, 3, 6, 4))
    alpha = _alpha()
    write_alpha(tmp_path / "a.exr", alpha, info)
    head, channels = _exr(tmp_path / "a.exr")
    assert _box(head["dataWindow"]) == (5, 3, 10, 6)
    np.testing.assert_array_equal(channels["A"].astype(np.float32), alpha[3:7, 5:11])
    # And vom's reader places it back into the display window where it was (an alpha is no plate: read_plate
    # refuses a lone A channel).
    from vom_plugin.io.reader import open_image, read_channels, to_display

    with open_image(tmp_path / "a.exr", "alpha") as img:
        back = to_display(read_channels(img, [0]), img.info)[:, :, 0]
    np.testing.assert_array_equal(back[3:7, 5:11], alpha[3:7, 5:11])


@pytest.mark.parametrize("compression, exr_name", [("zip", "zip"), ("dwaa", "dwa"), ("piz", "piz"), ("none", "none")])
def test_compressions(tmp_path, compression, exr_name):
    alpha = _alpha(32, 48)
    path = tmp_path / f"a_{compression}.exr"
    write_alpha(path, alpha, ImageInfo.for_size(48, 32), compression=compression)
    assert f'compression: "{compression}"' in tool("oiiotool", "--info", "-v", str(path))
    # Lossless ones keep the alpha exactly; DWA keeps an alpha channel lossless too.
    np.testing.assert_array_equal(_exr(path)[1]["A"].astype(np.float32), alpha)
    assert f"compression (type compression): {exr_name}" in tool("exrheader", str(path))


def test_layer_channel_and_rgba_outputs(tmp_path):
    alpha = _alpha()
    rgb = np.stack([_alpha(seed=s) * 4 for s in (1, 2, 3)], axis=2)
    info = ImageInfo.for_size(16, 12)
    write_alpha(tmp_path / "layer.exr", alpha, info, channel="vom.A")
    _, ch = _exr(tmp_path / "layer.exr")
    assert list(ch) == ["vom.A"] and ch["vom.A"].dtype == np.float16

    write_alpha(tmp_path / "rgba.exr", alpha, info, output="rgba", rgb=rgb)
    _, ch = _exr(tmp_path / "rgba.exr")
    assert sorted(ch) == ["A", "B", "G", "R"] and all(c.dtype == np.float16 for c in ch.values())
    np.testing.assert_array_equal(ch["R"].astype(np.float32), rgb[:, :, 0])  # plate RGB untouched (no compression)
    np.testing.assert_array_equal(ch["A"].astype(np.float32), alpha)

    write_alpha(tmp_path / "pre.exr", alpha, info, output="rgba-premult", rgb=rgb, channel="vom.A")
    _, ch = _exr(tmp_path / "pre.exr")
    assert sorted(ch) == ["vom.A", "vom.B", "vom.G", "vom.R"]
    expected = (rgb[:, :, 1] * alpha).astype(np.float16)
    np.testing.assert_array_equal(ch["vom.G"], expected)
    assert "vom.A, 16-bit floating-point" in tool("exrheader", str(tmp_path / "layer.exr"))


def test_rgba_with_overscan_keeps_the_plates_data_pixels(tmp_path):
    rgb = np.stack([_alpha(18, 20, seed=s) for s in (4, 5, 6)], axis=2)
    plate = read_plate(write_image(tmp_path / "p.exr", rgb, data_origin=(-2, -3), display=(0, 0, 16, 12)))
    write_alpha(tmp_path / "o.exr", np.ones((12, 16), np.float32), plate.info, output="rgba", rgb=plate.data_rgb)
    _, ch = _exr(tmp_path / "o.exr")
    np.testing.assert_array_equal(ch["B"].astype(np.float32), rgb[:, :, 2])


def test_bad_settings_are_input_errors_and_write_nothing(tmp_path):
    info = ImageInfo.for_size(16, 12)
    with pytest.raises(InputError, match=r"channel 'alpha'.*A or <layer>\.A"):
        write_alpha(tmp_path / "a.exr", _alpha(), info, channel="alpha")
    with pytest.raises(InputError, match="compression 'lzw': expected one of zip, dwaa, piz, none"):
        write_alpha(tmp_path / "a.exr", _alpha(), info, compression="lzw")
    with pytest.raises(InputError, match="output 'matte': expected one of alpha, rgba, rgba-premult"):
        write_alpha(tmp_path / "a.exr", _alpha(), info, output="matte")
    with pytest.raises(InputError, match=r"a\.png must end in \.exr"):
        write_alpha(tmp_path / "a.png", _alpha(), info)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_names_it_and_leaves_nothing(tmp_path):
    blocker = tmp_path / "shots"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(InputError) as err:
        write_alpha(blocker / "sh010" / "alpha.1001.exr", _alpha(), ImageInfo.for_size(16, 12))
    assert str(blocker / "sh010") in str(err.value) and "cannot be created" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shots"]


def test_read_only_folder_names_it_and_leaves_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: the folder answers as it would to its user
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **k: False if os.fspath(p) == str(folder) and mode & os.W_OK
                            else real_access(p, mode, **k))
    try:
        with pytest.raises(InputError, match=f"output folder {folder} is not writable"):
            write_alpha(folder / "alpha.1001.exr", _alpha(), ImageInfo.for_size(16, 12))
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_a_failed_write_keeps_the_previous_frame_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "alpha.1001.exr"
    first = _alpha(seed=1)
    write_alpha(path, first, ImageInfo.for_size(16, 12))

    def killed(src, dst):  # the render dies between writing the temp file and renaming it
        raise KeyboardInterrupt

    monkeypatch.setattr(exr_out.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_alpha(path, _alpha(seed=2), ImageInfo.for_size(16, 12))
    monkeypatch.undo()
    assert leftovers(tmp_path) == []
    np.testing.assert_array_equal(_exr(path)[1]["A"].astype(np.float32), first)


def test_a_write_whose_folder_went_away_says_so_not_that_the_disk_is_full(tmp_path, monkeypatch):
    """A QA pass: the output folder replaced by a file while a render ran read "is its disk full or over quota?"."""
    import shutil

    import OpenImageIO as oiio

    folder = tmp_path / "o"
    path = folder / "alpha.1001.exr"
    create = oiio.ImageOutput.create

    class FolderGoesOnClose:
        def __init__(self, name):
            self.real = create(name)

        def __getattr__(self, attr):
            return getattr(self.real, attr)

        def close(self):
            ok = self.real.close()
            shutil.rmtree(folder)
            folder.write_text("someone's file")
            return ok

    monkeypatch.setattr(oiio.ImageOutput, "create", FolderGoesOnClose)
    with pytest.raises(InputError, match=r"could not be written completely") as e:
        write_alpha(path, _alpha(h=12, w=16, seed=2), ImageInfo.for_size(16, 12))
    assert f"its folder {folder} is no longer there." in str(e.value) and "disk" not in str(e.value), str(e.value)
    assert folder.read_text() == "someone's file"


def test_a_file_cut_short_behind_a_reported_success_keeps_the_previous_frame(tmp_path, monkeypatch):
    """A disk or quota that fills while OpenImageIO flushes the file on close: the writer reports success for a
    file cut short. It must never take the frame's name (it did: exit 0 over a good frame)."""
    import OpenImageIO as oiio

    path = tmp_path / "alpha.1001.exr"
    first = _alpha(h=120, w=160, seed=1)
    write_alpha(path, first, ImageInfo.for_size(160, 120))
    create = oiio.ImageOutput.create

    class CutOnClose:  # the real writer, whose last bytes never reach the disk
        def __init__(self, name):
            self.real, self.name = create(name), name

        def __getattr__(self, attr):
            return getattr(self.real, attr)

        def close(self):
            ok = self.real.close()
            size = os.path.getsize(self.name)
            os.truncate(self.name, size - size // 4)
            return ok

    monkeypatch.setattr(oiio.ImageOutput, "create", CutOnClose)
    with pytest.raises(InputError, match=r"alpha\.1001\.exr could not be written completely .*disk full"):
        write_alpha(path, _alpha(h=120, w=160, seed=2), ImageInfo.for_size(160, 120))
    monkeypatch.undo()
    assert leftovers(tmp_path) == []
    np.testing.assert_array_equal(_exr(path)[1]["A"].astype(np.float32), first)


def test_a_write_that_fails_on_a_full_disk_says_how_much_room_is_left(tmp_path, monkeypatch):
    """OpenImageIO's error on a full disk is "Failed to write pixel data ... File output failed": nothing told an
    artist the disk was full (QA). The message now says how much room the disk has, where it is less than the
    frame's pixels; on a disk with room it adds nothing."""
    import shutil
    from collections import namedtuple

    import OpenImageIO as oiio

    path = tmp_path / "alpha.1001.exr"
    create = oiio.ImageOutput.create

    class FailsToWrite:
        def __init__(self, name):
            self.real = create(name)

        def open(self, *a):
            return self.real.open(*a)

        def write_image(self, pixels):
            return False

        def geterror(self):
            return "Failed OpenEXR write: Failed to write pixel data. File output failed."

        def close(self):
            return self.real.close()

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(oiio.ImageOutput, "create", FailsToWrite)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 12_000, 12_000))
    with pytest.raises(InputError, match=r"alpha\.1001\.exr could not be written: Failed OpenEXR write.*; the disk "
                                         r"holding .* has 0\.012 MB free, and the frame's pixels are up to "
                                         r"0\.0768 MB before compression: full\?"):
        write_alpha(path, _alpha(h=120, w=160, seed=2), ImageInfo.for_size(160, 120))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 0, 10**11))
    with pytest.raises(InputError) as e:
        write_alpha(path, _alpha(h=120, w=160, seed=2), ImageInfo.for_size(160, 120))
    assert str(e.value).endswith("File output failed.")
    assert leftovers(tmp_path) == [] and not path.exists()


def test_alpha_of_the_wrong_shape_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match=r"expected \(H, W\) = \(12, 16\)"):
        write_alpha(tmp_path / "a.exr", np.zeros((10, 10), np.float32), ImageInfo.for_size(16, 12))
    assert list(tmp_path.iterdir()) == []


def test_typed_plate_metadata_survives_from_a_tiled_plate(tmp_path):
    # The plate is made by oiiotool: tiled, with a timecode, a rational frame rate and a camera matrix.
    plate_path = tmp_path / "plate.1001.exr"
    tool(
        "oiiotool", "--create", "16x12", "3", "-d", "half",
        "--attrib:type=timecode", "smpte:TimeCode", "01:00:00:05",
        "--attrib:type=rational", "FramesPerSecond", "24/1",
        "--attrib:type=matrix", "worldToCamera", "2,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1",
        "--tile", "8", "8", "-o", str(plate_path),
    )
    plate = read_plate(plate_path)
    out = tmp_path / "alpha.1001.exr"
    write_alpha(out, _alpha(), plate.info)
    header = tool("exrheader", str(out))
    assert "FramesPerSecond (type rational): 24/1" in header
    assert "timeCode (type timecode):" in header and "time 01:00:00:05" in header
    assert "worldToCamera (type m44f):" in header and "(2 0 0 0" in header
    assert 'Software (type string): "vom ' in header  # the plate's Software is not carried over
    assert "tiledimage" not in header  # the plate's file layout is not carried either


def test_a_texture_plate_writes_a_plain_frame(tmp_path):
    """A plate that went through maketx (MIP-mapped, `textureformat`): its texture attributes were carried, the
    writer then expected MIP levels, and every frame failed its read-back check ("is the disk full?")."""
    import OpenImageIO as oiio

    src = tmp_path / "src.exr"
    write_image(src, np.random.default_rng(3).random((12, 16, 3), dtype=np.float32))
    config = oiio.ImageSpec()
    config.attribute("maketx:filtername", "box")
    assert oiio.ImageBufAlgo.make_texture(oiio.MakeTxTexture, str(src), str(tmp_path / "tex.exr"), config), \
        oiio.geterror()
    plate = read_plate(tmp_path / "tex.exr")
    assert plate.info.metadata.get("textureformat") == "Plain Texture"
    out = tmp_path / "alpha.exr"
    write_alpha(out, _alpha(), plate.info)
    inp = oiio.ImageInput.open(str(out))
    assert inp.spec().getattribute("textureformat") is None and not inp.seek_subimage(0, 1)  # one level
    np.testing.assert_array_equal(inp.read_image(oiio.FLOAT)[..., 0], _alpha().astype(np.float16).astype(np.float32))
    inp.close()


def test_alpha_is_clipped_and_nan_free(tmp_path):
    alpha = _alpha()
    alpha[0, :4] = [np.nan, np.inf, -0.5, 1.5]
    write_alpha(tmp_path / "a.exr", alpha, ImageInfo.for_size(16, 12))
    written = _exr(tmp_path / "a.exr")[1]["A"].astype(np.float32)
    np.testing.assert_array_equal(written[0, :4], [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(written[1:], alpha[1:])


def test_write_exr_writes_a_plain_half_exr_atomically(tmp_path):
    """The plain writer of vom's own files (validation shots, benchmark plates): channels named, half floats,
    data window at the origin, no temporary left; a channel count that does not match the names is refused."""
    import OpenImageIO as oiio

    from vom_plugin.io import write_exr

    rgb = np.random.default_rng(0).random((6, 10, 3)).astype(np.float32) * 4.0
    out = write_exr(tmp_path / "p.exr", rgb, ("R", "G", "B"), compression="piz")
    a = write_exr(tmp_path / "a.exr", rgb[..., 0], ("A",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.exr", "p.exr"]
    inp = oiio.ImageInput.open(str(out))
    spec = inp.spec()
    px = inp.read_image(oiio.FLOAT)
    inp.close()
    assert tuple(spec.channelnames) == ("R", "G", "B") and spec.format == oiio.TypeDesc("half")
    assert (spec.x, spec.y, spec.width, spec.height) == (0, 0, 10, 6)
    assert spec.get_string_attribute("compression") == "piz"
    assert np.allclose(px, rgb, rtol=1e-3, atol=1e-3)
    back = oiio.ImageBuf(str(a))
    assert tuple(back.spec().channelnames) == ("A",)
    assert np.allclose(back.get_pixels(oiio.FLOAT)[..., 0], rgb[..., 0], rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="3 channel\\(s\\) of pixels, 1 name"):
        write_exr(tmp_path / "bad.exr", rgb, ("A",))
    assert not (tmp_path / "bad.exr").exists()


def test_a_matte_claims_no_colour_space_and_a_plates_rgb_keeps_its_own(tmp_path):
    """The plate's colorInteropID went into alpha-only files (read back as a colour space of the matte); the RGB of a
    PNG plate (sRGB-encoded) went out untagged in an rgba EXR, which readers take for linear."""
    import OpenImageIO as oiio

    alpha = _alpha()
    tagged = ImageInfo.for_size(16, 12)
    tagged.metadata.update({"colorInteropID": "lin_ap1_scene", "chromaticities": (0.713, 0.293, 0.165, 0.83, 0.128,
                                                                                   0.044, 0.32168, 0.33767)})
    tagged.metadata_types.update({"colorInteropID": "string", "chromaticities": "float[8]"})
    write_alpha(tmp_path / "a.exr", alpha, tagged)
    attrs = {a.name for a in oiio.ImageInput.open(str(tmp_path / "a.exr")).spec().extra_attribs}
    assert "colorInteropID" not in attrs and "chromaticities" not in attrs
    write_alpha(tmp_path / "rgba.exr", alpha, tagged, output="rgba", rgb=np.zeros((12, 16, 3), np.float32))
    assert oiio.ImageInput.open(str(tmp_path / "rgba.exr")).spec().getattribute("colorInteropID") == "lin_ap1_scene"
    png = ImageInfo.for_size(16, 12)
    png.metadata["oiio:ColorSpace"] = "srgb_rec709_scene"
    write_alpha(tmp_path / "png_rgba.exr", alpha, png, output="rgba", rgb=np.zeros((12, 16, 3), np.float32))
    assert oiio.ImageInput.open(str(tmp_path / "png_rgba.exr")).spec().getattribute("colorInteropID") == \
        "srgb_rec709_scene"
    # a plate that says nothing: the RGB is what the render read it as (QA: a 16-bit TIFF read as sRGB wrote its
    # code values into an EXR an EXR reader takes for linear); an alpha alone says nothing of colour
    untagged = ImageInfo.for_size(16, 12)
    for setting, interop in (("sRGB", "srgb_rec709_scene"), ("ACEScg", "lin_ap1_scene"), ("raw", None)):
        write_alpha(tmp_path / "t.exr", alpha, untagged, output="rgba", rgb=np.zeros((12, 16, 3), np.float32),
                    metadata={"vom/colorspace": setting})
        assert oiio.ImageInput.open(str(tmp_path / "t.exr")).spec().getattribute("colorInteropID") == interop
    write_alpha(tmp_path / "t.exr", alpha, untagged, metadata={"vom/colorspace": "sRGB"})
    assert oiio.ImageInput.open(str(tmp_path / "t.exr")).spec().getattribute("colorInteropID") is None
    # a DPX's oiio:ColorSpace is OpenImageIO's reading of its transfer (no primaries): a linear DPX read as ACEScg
    # went out as lin_rec709_scene; OpenImageIO's own labels (KodakLog) are no interop ID a reader can look up;
    # OCIO's names lose their ocio: prefix (QA)
    for said, extra, setting, interop in (("lin_rec709_scene", {"dpx:Transfer": "Linear"}, "ACEScg", "lin_ap1_scene"),
                                          ("KodakLog", {"dpx:Transfer": "Logarithmic"}, "raw", None),
                                          # a linear or log DPX read as sRGB went out srgb_rec709_scene, a tag its
                                          # values contradict (QA): none
                                          ("lin_rec709_scene", {"dpx:Transfer": "Linear"}, "sRGB", None),
                                          ("KodakLog", {"dpx:Transfer": "Logarithmic"}, "sRGB", None),
                                          (None, {"dpx:Transfer": "Printing density"}, "sRGB", None),
                                          (None, {"dpx:Transfer": "Undefined"}, "sRGB", "srgb_rec709_scene"),
                                          ("KodakLog", {}, "raw", None),
                                          ("ocio:acescct_ap1_scene", {}, "raw", "acescct_ap1_scene")):
        info = ImageInfo.for_size(16, 12)
        info.metadata.update({**({"oiio:ColorSpace": said} if said else {}), **extra})
        write_alpha(tmp_path / "t.exr", alpha, info, output="rgba", rgb=np.zeros((12, 16, 3), np.float32),
                    metadata={"vom/colorspace": setting})
        assert oiio.ImageInput.open(str(tmp_path / "t.exr")).spec().getattribute("colorInteropID") == interop, said


def test_premultiplied_rgb_is_the_plate_times_the_alpha_as_written(tmp_path):
    # a float plate keeps float RGB: R / A in the comp must give the plate back, so R is multiplied by the half A
    # the file holds, not by the float alpha before it was rounded (up to 2e-4 off in a QA pass)
    rng = np.random.default_rng(7)
    alpha = rng.random((12, 16)).astype(np.float32)  # not on the half grid
    rgb = rng.random((12, 16, 3)).astype(np.float32) * 3
    info = dataclasses.replace(ImageInfo.for_size(16, 12), pixel_type="float")
    write_alpha(tmp_path / "pre.exr", alpha, info, output="rgba-premult", rgb=rgb)
    _, ch = _exr(tmp_path / "pre.exr")
    assert ch["A"].dtype == np.float16 and ch["R"].dtype == np.float32
    written = ch["A"].astype(np.float32)
    assert not np.array_equal(written, alpha)
    np.testing.assert_array_equal(ch["R"], rgb[:, :, 0] * written)


def test_an_alpha_over_the_network_picture_is_cut_to_the_data_window_and_extended_past_it(tmp_path):
    """A render hands the alpha over its picture (the display window and the overscan it saw): the data window
    is cut from it; where a frame's data window reaches past the picture, its edge goes on; a wrong shape is
    refused naming the window."""
    info = ImageInfo(display_window=Window(0, 0, 16, 12), data_window=Window(-4, -2, 24, 14))
    picture = Window(-3, -2, 22, 14)  # the overscan the keyframes had: one column less on the left
    alpha = np.linspace(0, 1, 14 * 22, dtype=np.float32).reshape(14, 22)
    write_alpha(tmp_path / "a.exr", alpha, info, window=picture, extra={"mask": alpha[::-1].copy()})
    _, channels = _exr(tmp_path / "a.exr")
    data = channels["A"].astype(np.float32)
    assert data.shape == (14, 24)
    half = alpha.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(data[:, 1:23], half)  # x -3..18: the picture itself
    np.testing.assert_array_equal(data[:, 0], half[:, 0])  # x -4: past the picture, its edge
    np.testing.assert_array_equal(data[:, 23], half[:, 21])  # x 19: past it on the right
    np.testing.assert_array_equal(channels["mask"].astype(np.float32)[:, 1:23], half[::-1])
    with pytest.raises(ValueError, match=r"expected \(H, W\) = \(14, 22\) of the window \(-3, -2, 22, 14\)"):
        write_alpha(tmp_path / "b.exr", np.zeros((12, 16), np.float32), info, window=picture)


def test_a_key_code_openexr_refuses_is_not_carried_into_the_matte(tmp_path):
    """A QA pass: a plate whose KeyCode OpenEXR rejects (OpenImageIO reads and writes it) gave mattes that no
    OpenEXR reader opens ("Invalid key code number of perforations per count"). A valid one is carried."""
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(16, 12, 3, oiio.HALF)
    spec.attribute("smpte:KeyCode", oiio.TypeDesc("keycode"), (1, 2, 3, 4, 5, 4, 64))
    out, path = oiio.ImageOutput.create(str(tmp_path / "p.exr")), str(tmp_path / "p.exr")
    assert out.open(path, spec) and out.write_image(np.zeros((12, 16, 3), np.float32)) and out.close()
    info = read_plate(tmp_path / "p.exr").info
    write_alpha(tmp_path / "good.exr", _alpha(), info)
    assert _exr(tmp_path / "good.exr")[0]["keyCode"].perfsPerCount == 64
    bad = dataclasses.replace(info, metadata={**info.metadata, "smpte:KeyCode": (1, 2, 3, 4, 5, 6, 7)})
    write_alpha(tmp_path / "bad.exr", _alpha(), bad)
    header, channels = _exr(tmp_path / "bad.exr")  # OpenEXR opens it
    assert "keyCode" not in header and channels["A"].shape == (12, 16)


def test_typed_attributes_of_the_plate_are_carried(tmp_path):
    """QA: a double camera matrix (worldToCamera M44d), a box (originalDataWindow) and integer vectors were dropped
    from every output: their OpenImageIO type names ("matrixd", "vector2i[2]") read back as an unknown type, which
    set nothing and said nothing."""
    import OpenImageIO as oiio

    from vom_plugin.io.reader import read_info

    cam = np.eye(4, dtype=np.float64)
    cam[3, 0] = 2.5
    px = np.zeros((8, 16), np.float16)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, "worldToCamera": cam,
              "worldToNDC": cam.astype(np.float32)}
    with OpenEXR.File(header, {"R": px, "G": px, "B": px}) as f:
        f.write(str(tmp_path / "cam.exr"))
    spec = oiio.ImageSpec(16, 8, 3, oiio.HALF)
    spec.attribute("originalDataWindow", oiio.TypeDesc(oiio.INT, oiio.VEC2, oiio.NOXFORM, 2), (0, 0, 479, 269))
    spec.attribute("cropOffset", oiio.TypeDesc(oiio.INT, oiio.VEC2), (3, 4))
    out = oiio.ImageOutput.create(str(tmp_path / "box.exr"))
    out.open(str(tmp_path / "box.exr"), spec)
    out.write_image(np.zeros((8, 16, 3), np.float32))
    out.close()
    for plate, want in (("cam.exr", {"worldToCamera": ("matrix", tuple(map(float, cam.flatten())))}),
                        ("box.exr", {"originalDataWindow": ("vector2i[2]", (0, 0, 479, 269)),
                                     "cropOffset": ("vector2i", (3, 4))})):
        write_alpha(tmp_path / f"a_{plate}", np.zeros((8, 16), np.float32), read_info(tmp_path / plate))
        got = {a.name: (str(a.type), a.value) for a in oiio.ImageBuf(str(tmp_path / f"a_{plate}")).spec().extra_attribs}
        for name, (kind, value) in want.items():  # the double matrix at float precision (OpenImageIO sets no double)
            assert got.get(name) == (kind, value), (plate, name, got.get(name))


@pytest.mark.parametrize("rate, want", [(24.0, (24, 1)), (23.976, (24000, 1001)), (29.97, (30000, 1001)),
                                        (25.0, (25, 1)), (59.94, (60000, 1001))])
def test_a_dpx_plates_frame_rate_is_the_mattes(tmp_path, rate, want):
    """QA: a DPX plate's frame rate (dpx:FrameRate: OpenImageIO gives a DPX no FramesPerSecond) was lost."""
    import OpenImageIO as oiio

    from vom_plugin.io.reader import read_info

    spec = oiio.ImageSpec(16, 8, 3, oiio.UINT16)
    spec.attribute("dpx:FrameRate" if rate != 25.0 else "dpx:TemporalFrameRate", rate)  # film or TV header (review)
    out = oiio.ImageOutput.create(str(tmp_path / "p.dpx"))
    out.open(str(tmp_path / "p.dpx"), spec)
    out.write_image(np.zeros((8, 16, 3), np.float32))
    out.close()
    info = read_info(tmp_path / "p.dpx")
    assert "FramesPerSecond" not in info.metadata
    write_alpha(tmp_path / "a.exr", np.zeros((8, 16), np.float32), info)
    assert oiio.ImageBuf(str(tmp_path / "a.exr")).spec().getattribute("FramesPerSecond") == want


def test_a_write_the_file_system_refuses_says_why_when_the_disk_is_not_full(tmp_path: Path) -> None:
    """QA: under a file size limit (or a quota, with the disk far from full) the message was the EXR writer's "File
    output failed", with no reason: the system's own reason is said now, from a probe written after the failure."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import resource
        import numpy as np
        from vom_plugin.errors import InputError
        from vom_plugin.io import ImageInfo, write_alpha
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, resource.RLIM_INFINITY))
        try:
            write_alpha({str(tmp_path / "a.0001.exr")!r}, np.random.rand(512, 512).astype(np.float32),
                        ImageInfo.for_size(512, 512), compression="none")
        except InputError as e:
            print(e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "could not be written" in out.stdout and "File too large" in out.stdout, (out.stdout, out.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no frame, no temporary, no probe left


def test_the_probe_after_a_failed_write_is_the_size_the_writer_reached_and_leaves_nothing(tmp_path: Path) -> None:
    """Review: the probe wrote the frame's pixels' size in memory (twice the half-float file, more than it compressed
    to), so under a limit between the two an unrelated failure was blamed on "File too large"; and it could be left
    behind where the file system failed its close."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import resource
        from pathlib import Path
        from vom_plugin.io import exr_out
        folder = Path({str(tmp_path)!r})
        (folder / "reached").write_bytes(b"x" * 200_000)  # as far as a failed writer got, well under the limit
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, resource.RLIM_INFINITY))
        print(repr(exr_out._space_note(folder, 4_000_000, folder / "reached")))  # pixels: 4 MB in memory
        (folder / "reached").write_bytes(b"x" * 1_400_000)
        print(repr(exr_out._space_note(folder, 4_000_000, folder / "reached")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines() == [
        "''", "'; the file system refuses a file of that size there (File too large)'"], (out.stdout, out.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reached"]
