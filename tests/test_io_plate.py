"""Plate reading (vom_plugin.io.read_plate): channels by name, windows, pixel types, damaged files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_io_support import write_image

from vom_plugin.errors import InputError
from vom_plugin.io import Window, read_info, read_plate
from vom_plugin.io.plate import plate_info, plate_views


def _rgb(h=12, w=16, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    # Values exactly representable in half, so a half file round-trips bit-exactly.
    return (rng.random((h, w, 3)) * 4).astype(np.float16).astype(dtype)


@pytest.mark.parametrize("pixel_type", ["half", "float"])
def test_round_trip_is_exact(tmp_path, pixel_type):
    rgb = _rgb()
    write_image(tmp_path / "p.exr", rgb, pixel_type=pixel_type)
    plate = read_plate(tmp_path / "p.exr")
    assert plate.rgb.dtype == np.float32 and plate.rgb.shape == (12, 16, 3)
    np.testing.assert_array_equal(plate.rgb, rgb)
    assert plate.info.pixel_type == pixel_type
    assert plate.info.size == (16, 12)
    assert plate.data_rgb is plate.rgb  # no copy when the windows coincide


def test_offset_smaller_data_window_is_placed_in_display(tmp_path):
    rgb = _rgb(4, 6)
    write_image(tmp_path / "p.exr", rgb, data_origin=(5, 3), display=(0, 0, 16, 12))
    plate = read_plate(tmp_path / "p.exr")
    assert plate.info.display_window == Window(0, 0, 16, 12)
    assert plate.info.data_window == Window(5, 3, 6, 4)
    assert plate.rgb.shape == (12, 16, 3)
    np.testing.assert_array_equal(plate.rgb[3:7, 5:11], rgb)
    outside = plate.rgb.copy()
    outside[3:7, 5:11] = 0
    assert not outside.any()  # no pixels outside the data window: black
    np.testing.assert_array_equal(plate.data_rgb, rgb)


def test_data_window_partly_outside_display(tmp_path):
    rgb = _rgb(6, 8)
    write_image(tmp_path / "p.exr", rgb, data_origin=(-3, 8), display=(0, 0, 16, 12))
    plate = read_plate(tmp_path / "p.exr")
    np.testing.assert_array_equal(plate.rgb[8:12, 0:5], rgb[0:4, 3:8])
    assert plate.rgb[:8].sum() == 0 and plate.rgb[:, 5:].sum() == 0


@pytest.mark.parametrize("ext", ["png", "jpg", "tif"])
def test_a_print_resolution_is_no_pixel_aspect(tmp_path: Path, ext: str) -> None:
    """A review: OpenImageIO derives a pixel aspect for PNG, JPEG and TIFF from their print resolution (300 x 150 dpi:
    2.0 from a JPEG, 0.49996 from a PNG), which says nothing of the picture; the plate would be stretched for the
    network. Only formats that store a pixel aspect (EXR, DPX) have one."""
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(16, 12, 3, oiio.UINT8)
    spec.attribute("XResolution", 300.0)
    spec.attribute("YResolution", 150.0)
    spec.attribute("ResolutionUnit", "in")
    out = oiio.ImageOutput.create(str(tmp_path / f"p.{ext}"))
    assert out.open(str(tmp_path / f"p.{ext}"), spec) and out.write_image(np.full((12, 16, 3), 128, np.uint8))
    out.close()
    assert read_info(tmp_path / f"p.{ext}").pixel_aspect == 1.0
    assert read_plate(tmp_path / f"p.{ext}").info.pixel_aspect == 1.0


def test_overscan_is_cropped_to_display_and_kept_in_data_rgb(tmp_path):
    rgb = _rgb(16, 20)
    write_image(tmp_path / "p.exr", rgb, data_origin=(-2, -2), display=(0, 0, 16, 12), pixel_aspect=2.0)
    plate = read_plate(tmp_path / "p.exr")
    assert plate.info.has_overscan
    assert plate.info.pixel_aspect == 2.0
    np.testing.assert_array_equal(plate.rgb, rgb[2:14, 2:18])
    np.testing.assert_array_equal(plate.data_rgb, rgb)


def test_display_window_not_at_origin(tmp_path):
    rgb = _rgb(12, 16)
    write_image(tmp_path / "p.exr", rgb, data_origin=(100, 50), display=(100, 50, 16, 12))
    plate = read_plate(tmp_path / "p.exr")
    np.testing.assert_array_equal(plate.rgb, rgb)
    assert plate.info.display_window == Window(100, 50, 16, 12)


def test_nan_and_inf_take_their_finite_neighbours_mean(tmp_path):
    # a dead pixel set to 0 was a black dot the network took for an edge (a speck of alpha in the background)
    rgb = _rgb()
    rgb[0, 0] = [np.nan, np.inf, -np.inf]
    rgb[5, 5, 1] = np.nan
    write_image(tmp_path / "p.exr", rgb, pixel_type="float")
    plate = read_plate(tmp_path / "p.exr")
    assert np.isfinite(plate.rgb).all()
    np.testing.assert_allclose(plate.rgb[0, 0], rgb[:2, :2].reshape(-1, 3)[1:].mean(0), rtol=1e-6)
    np.testing.assert_allclose(plate.rgb[5, 5, 1], np.delete(rgb[4:7, 4:7, 1].reshape(-1), 4).mean(), rtol=1e-6)
    good = np.isfinite(rgb)
    np.testing.assert_array_equal(plate.rgb[good], rgb[good])  # every other value as the file holds it
    # a cluster wider than 8 px keeps 0 at its heart; its rim takes the picture around it
    rgb = np.full((30, 30, 3), 0.5, np.float32)
    rgb[2:28, 2:28] = np.inf
    write_image(tmp_path / "q.exr", rgb, pixel_type="float")
    plate = read_plate(tmp_path / "q.exr")
    assert (plate.rgb[15, 15] == 0).all() and (plate.rgb[3, 3] == 0.5).all()


def test_layers_are_found_by_name(tmp_path):
    beauty, other = _rgb(seed=1), _rgb(seed=2)
    names = ("beauty.R", "beauty.G", "beauty.B", "diffuse.R", "diffuse.G", "diffuse.B", "Z")
    pixels = np.concatenate([beauty, other, np.ones((12, 16, 1), np.float32)], axis=2)
    write_image(tmp_path / "p.exr", pixels, names)
    np.testing.assert_array_equal(read_plate(tmp_path / "p.exr").rgb, beauty)  # beauty is a usual name
    np.testing.assert_array_equal(read_plate(tmp_path / "p.exr", layer="diffuse").rgb, other)
    with pytest.raises(InputError) as err:
        read_plate(tmp_path / "p.exr", layer="specular")
    message = str(err.value)
    assert "p.exr" in message and "'specular'" in message and "beauty" in message and "diffuse" in message


def test_rgba_layer_and_plain_rgb_preferred(tmp_path):
    rgb = _rgb(seed=3)
    alpha = np.ones((12, 16, 1), np.float32)
    write_image(tmp_path / "a.exr", np.concatenate([rgb, alpha], 2), ("rgba.R", "rgba.G", "rgba.B", "rgba.A"))
    np.testing.assert_array_equal(read_plate(tmp_path / "a.exr").rgb, rgb)
    pixels = np.concatenate([rgb, rgb * 2], 2)
    write_image(tmp_path / "b.exr", pixels, ("R", "G", "B", "spec.R", "spec.G", "spec.B"))
    np.testing.assert_array_equal(read_plate(tmp_path / "b.exr").rgb, rgb)
    np.testing.assert_array_equal(read_plate(tmp_path / "b.exr", layer="spec").rgb, rgb * 2)


def test_ambiguous_layers_ask_for_a_layer(tmp_path):
    pixels = np.concatenate([_rgb(), _rgb(seed=5)], 2)
    write_image(tmp_path / "p.exr", pixels, ("left.R", "left.G", "left.B", "right.R", "right.G", "right.B"))
    with pytest.raises(InputError, match=r"p\.exr.*its layers left, right are not a beauty layer"):
        read_plate(tmp_path / "p.exr")


@pytest.mark.parametrize("listed", [("left", "right"), ("right", "left")])
def test_a_stereo_exr_with_every_view_prefixed_reads_its_default_view(tmp_path, listed):
    """A one-part stereo EXR whose views are all prefixed (left.R, right.R) and listed in multiView was refused as
    ambiguous; its default view (the first multiView lists) is the plate, as plate_views says."""
    import OpenImageIO as oiio

    left, right = _rgb(seed=8), _rgb(seed=9)
    write_image(tmp_path / "p.exr", np.concatenate([left, right], 2),
                ("left.R", "left.G", "left.B", "right.R", "right.G", "right.B"),
                attributes={"multiView": (oiio.TypeDesc("string[2]"), listed)})
    plate = read_plate(tmp_path / "p.exr")
    want = left if listed[0] == "left" else right
    np.testing.assert_array_equal(plate.rgb, want.astype(np.float16).astype(np.float32))
    # which eye, said (a frame of the other one among them is refused by the render)
    assert plate.info.picture == f"{listed[0]}.R, {listed[0]}.G, {listed[0]}.B (view {listed[0]!r})"
    assert plate_views(tmp_path / "p.exr") == list(listed)


def test_grey_image_is_replicated(tmp_path):
    grey = _rgb()[:, :, :1]
    write_image(tmp_path / "p.exr", grey, ("Y",))
    plate = read_plate(tmp_path / "p.exr")
    np.testing.assert_array_equal(plate.rgb, np.repeat(grey, 3, axis=2))


@pytest.mark.parametrize("channel", ["Z", "depth", "A", "depth.Z", "N.x"])
def test_a_lone_data_channel_is_not_a_picture(tmp_path, channel):
    write_image(tmp_path / "p.exr", _rgb()[:, :, :1], (channel,))
    with pytest.raises(InputError) as e:
        read_plate(tmp_path / "p.exr")
    message = str(e.value)
    assert "p.exr" in message and f"only channel {channel!r} is not a picture" in message
    assert f"(channels {channel})" in message


@pytest.mark.parametrize(("channels", "said"), [(("R", "G"), "it has R, G but no B"),
                                                 (("R", "B", "A"), "it has R, B but no G"),
                                                 (("diffuse.R", "diffuse.G"), "its layer 'diffuse' has R, G but no B"),
                                                 (("U", "V"), "it has no R, G, B channels")])
def test_a_plate_lacking_some_of_r_g_b_says_which(tmp_path, channels, said):
    """QA: a plate with R and G only was said to have "no R, G, B channels (channels R, G)"."""
    write_image(tmp_path / "p.exr", _rgb()[:, :, :len(channels)], channels)
    with pytest.raises(InputError) as e:
        read_plate(tmp_path / "p.exr")
    assert str(e.value) == (f"plate {tmp_path / 'p.exr'}: cannot tell which channels are the RGB; {said} "
                            f"(channels {', '.join(channels)})")


@pytest.mark.parametrize("channels", [("X", "Y", "Z"), ("Y", "Z"), ("L", "depth")])
def test_y_beside_other_plain_channels_is_not_a_grey_picture(tmp_path, channels):
    """X, Y, Z (CIE XYZ, or an unlayered position / normal pass) was read as a grey Y plate and matted silently."""
    write_image(tmp_path / "p.exr", np.repeat(_rgb()[:, :, :1], len(channels), axis=2), channels)
    with pytest.raises(InputError) as e:
        read_plate(tmp_path / "p.exr")
    message = str(e.value)
    assert "p.exr" in message and "not a grey plate" in message
    listed = message.rsplit("(channels ", 1)[1].rstrip(")").split(", ")
    assert sorted(listed) == sorted(channels)


@pytest.mark.parametrize("channels", [("Y", "A"), ("A", "Y"), ("Y", "depth.Z"), ("Y", "diffuse.R", "diffuse.G")])
def test_y_with_an_alpha_or_other_layers_is_a_grey_picture(tmp_path, channels):
    grey = _rgb()[:, :, :1]
    pixels = np.concatenate([grey * (i + 1) for i in range(len(channels))], axis=2)
    write_image(tmp_path / "p.exr", pixels, channels)
    want = grey * (channels.index("Y") + 1)
    np.testing.assert_array_equal(read_plate(tmp_path / "p.exr").rgb, np.repeat(want, 3, axis=2))


@pytest.mark.parametrize("channel", ["Y", "L", "R", "gray", "rgba.R"])
def test_a_lone_grey_channel_is_a_picture(tmp_path, channel):
    grey = _rgb()[:, :, :1]
    write_image(tmp_path / "p.exr", grey, (channel,))
    np.testing.assert_array_equal(read_plate(tmp_path / "p.exr").rgb, np.repeat(grey, 3, axis=2))


@pytest.mark.parametrize("name, dtype, scale", [("p.png", np.uint8, 255), ("p.tif", np.uint16, 65535)])
def test_integer_pixels_are_normalised(tmp_path, name, dtype, scale):
    values = np.arange(12 * 16 * 3).reshape(12, 16, 3) % 256
    pixels = values.astype(dtype)
    write_image(tmp_path / name, pixels, pixel_type="uint8" if dtype == np.uint8 else "uint16")
    plate = read_plate(tmp_path / name)
    np.testing.assert_allclose(plate.rgb, values / scale, atol=1e-6)


def test_read_info_reads_only_the_header(tmp_path):
    write_image(tmp_path / "p.exr", _rgb(), data_origin=(1, 2), display=(0, 0, 20, 20), pixel_aspect=1.5,
                attributes={"shot:name": "sh010"})
    info = read_info(tmp_path / "p.exr")
    assert info.data_window == Window(1, 2, 16, 12)
    assert info.size == (20, 20) and info.pixel_aspect == 1.5
    assert info.metadata["shot:name"] == "sh010"
    assert info.channels == ("R", "G", "B")


def test_missing_and_damaged_files_name_the_file(tmp_path):
    with pytest.raises(InputError, match=r"plate .*nothere\.exr does not exist"):
        read_plate(tmp_path / "nothere.exr")
    write_image(tmp_path / "full.exr", _rgb(64, 64), pixel_type="float", compression="none")
    data = (tmp_path / "full.exr").read_bytes()
    (tmp_path / "cut.exr").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"plate .*cut\.exr is damaged or truncated"):
        read_plate(tmp_path / "cut.exr")
    (tmp_path / "junk.exr").write_bytes(b"not an exr at all" * 8)
    with pytest.raises(InputError, match=r"plate .*junk\.exr cannot be read as an image"):
        read_plate(tmp_path / "junk.exr")


def test_demo_shot_plate():
    from vom_plugin.locations import demo_dir

    plate = read_plate(demo_dir() / "plate.0001.exr")
    assert plate.rgb.shape == (270, 480, 3) and np.isfinite(plate.rgb).all()
    assert plate.rgb.max() > 0


def test_layer_as_part_of_a_multipart_exr(tmp_path):
    import OpenImageIO as oiio

    first, second = _rgb(seed=7), _rgb(seed=8)
    specs = []
    for name in ("rgba", "diffuse"):
        spec = oiio.ImageSpec(16, 12, 3, "half")
        spec.channelnames = ("R", "G", "B")
        spec.attribute("name", name)
        specs.append(spec)
    path = str(tmp_path / "parts.exr")
    out = oiio.ImageOutput.create(path)
    assert out.open(path, specs)
    out.write_image(first)
    assert out.open(path, specs[1], "AppendSubimage")
    out.write_image(second)
    out.close()
    np.testing.assert_array_equal(read_plate(path).rgb, first)
    np.testing.assert_array_equal(read_plate(path, layer="diffuse").rgb, second)
    with pytest.raises(InputError, match="no layer 'specular'"):
        read_plate(path, layer="specular")


def test_dpx_10_bit_through_the_same_code(tmp_path):
    codes = np.arange(12 * 16 * 3).reshape(12, 16, 3) % 1024
    write_image(tmp_path / "p.dpx", (codes / 1023.0).astype(np.float32), pixel_type="uint16",
                attributes={"oiio:BitsPerSample": 10})
    plate = read_plate(tmp_path / "p.dpx")
    assert plate.rgb.shape == (12, 16, 3)
    np.testing.assert_allclose(plate.rgb, codes / 1023.0, atol=2e-5)  # 10-bit codes, normalised


def test_beauty_found_in_a_later_part_when_the_first_is_an_aov(tmp_path):
    import OpenImageIO as oiio

    depth_spec = oiio.ImageSpec(16, 12, 1, "float")
    depth_spec.channelnames = ("Z",)
    depth_spec.attribute("name", "depth")
    beauty_spec = oiio.ImageSpec(16, 12, 3, "half")
    beauty_spec.channelnames = ("R", "G", "B")
    beauty_spec.attribute("name", "beauty")
    path = str(tmp_path / "aov_first.exr")
    out = oiio.ImageOutput.create(path)
    assert out.open(path, [depth_spec, beauty_spec])
    out.write_image(np.full((12, 16, 1), 100.0, np.float32))
    assert out.open(path, beauty_spec, "AppendSubimage")
    beauty = _rgb(seed=9)
    out.write_image(beauty)
    out.close()
    np.testing.assert_array_equal(read_plate(path).rgb, beauty)  # not the depth replicated as grey


def _multipart(path, parts):
    """parts: [(name, channels, pixels)] as one multi-part EXR."""
    import OpenImageIO as oiio

    specs = []
    for name, channels, px in parts:
        spec = oiio.ImageSpec(px.shape[1], px.shape[0], len(channels), "half")
        spec.channelnames = channels
        spec.attribute("name", name)
        specs.append(spec)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), tuple(specs))
    for i, (_, _, px) in enumerate(parts):
        if i:
            assert out.open(str(path), specs[i], "AppendSubimage")
        assert out.write_image(px.astype(np.float32))
    out.close()


def test_a_beauty_part_wins_over_an_aov_in_the_first_part(tmp_path):
    """Part 0 a diffuse AOV (diffuse.R/G/B), part 1 the beauty: the beauty, as a single-part file would choose."""
    beauty, aov = _rgb(seed=1), _rgb(seed=2)
    _multipart(tmp_path / "p.exr", [("diffuse", ("diffuse.R", "diffuse.G", "diffuse.B"), aov),
                                   ("rgba", ("R", "G", "B"), beauty)])
    np.testing.assert_array_equal(read_plate(tmp_path / "p.exr").rgb, beauty)
    _multipart(tmp_path / "q.exr", [("diffuse", ("diffuse.R", "diffuse.G", "diffuse.B"), aov)])
    np.testing.assert_array_equal(read_plate(tmp_path / "q.exr").rgb, aov)  # the only picture there is


def test_a_multipart_plate_is_chosen_by_its_parts_names_not_their_order(tmp_path):
    """Parts usually hold plain R, G, B, so their names say which is the picture: a diffuse part written first
    was read as the plate, and two AOV parts with no beauty were not refused."""
    beauty, aov = _rgb(seed=5), _rgb(seed=6)
    _multipart(tmp_path / "p.exr", [("diffuse", ("R", "G", "B"), aov), ("beauty", ("R", "G", "B"), beauty)])
    np.testing.assert_array_equal(read_plate(tmp_path / "p.exr").rgb, beauty)
    _multipart(tmp_path / "q.exr", [("diffuse", ("R", "G", "B"), aov), ("specular", ("R", "G", "B"), beauty)])
    with pytest.raises(InputError, match=r"q\.exr: a multi-part EXR whose parts 'diffuse', 'specular' all hold R, "
                                         r"G, B and none of them is named as a beauty .*--subimage diffuse"):
        read_plate(tmp_path / "q.exr")
    with pytest.raises(InputError, match="none of them is named as a beauty"):
        plate_info(tmp_path / "q.exr")  # the header check before a render says it too
    # the beauty part first, AOVs after it: the beauty, as before
    _multipart(tmp_path / "r.exr", [("rgba", ("R", "G", "B"), beauty), ("diffuse", ("R", "G", "B"), aov)])
    np.testing.assert_array_equal(read_plate(tmp_path / "r.exr").rgb, beauty)


def test_a_stereo_exr_reads_its_default_view_and_a_tiff_its_first_page(tmp_path):
    """A stereo EXR (parts left and right, each R, G, B) and a two-page TIFF were read from their first part
    before the part names decided; they still are (the review of that change found them refused)."""
    import OpenImageIO as oiio

    left, right = _rgb(seed=8), _rgb(seed=9)
    def stereo(path: str, first: str, multiview: tuple[str, ...] | None) -> None:
        specs = []
        for name in (first, "right" if first == "left" else "left"):
            spec = oiio.ImageSpec(16, 12, 3, "half")
            spec.channelnames = ("R", "G", "B")
            spec.attribute("name", name)
            spec.attribute("view", name)
            if multiview:
                spec.attribute("multiView", oiio.TypeDesc(f"string[{len(multiview)}]"), multiview)
            specs.append(spec)
        out = oiio.ImageOutput.create(path)
        assert out.open(path, tuple(specs))
        for i, spec in enumerate(specs):
            assert i == 0 or out.open(path, spec, "AppendSubimage")
            assert out.write_image(left if spec.getattribute("view") == "left" else right)
        out.close()

    half = {"left": left.astype(np.float16).astype(np.float32), "right": right.astype(np.float16).astype(np.float32)}
    path = str(tmp_path / "stereo.exr")
    stereo(path, "left", None)  # no multiView: the first part's view
    np.testing.assert_array_equal(read_plate(path).rgb, half["left"])
    stereo(path, "left", ("right", "left"))  # the header names the default view first
    np.testing.assert_array_equal(read_plate(path).rgb, half["right"])
    stereo(path, "right", ("left", "right"))
    np.testing.assert_array_equal(read_plate(path).rgb, half["left"])
    tif = str(tmp_path / "pages.tif")
    out = oiio.ImageOutput.create(tif)
    pages = [oiio.ImageSpec(16, 12, 3, "uint16"), oiio.ImageSpec(16, 12, 3, "uint16")]
    assert out.open(tif, tuple(pages))
    assert out.write_image((left * 65535).astype(np.uint16))
    assert out.open(tif, pages[1], "AppendSubimage") and out.write_image((right * 65535).astype(np.uint16))
    out.close()
    np.testing.assert_allclose(read_plate(tif).rgb, (left * 65535).astype(np.uint16) / 65535, atol=1e-6)


def test_a_webp_plate_reads_as_openimageio_reads_it(tmp_path):
    """A WebP plate was "damaged or truncated: Couldn't decode subimage 0" (QA): probing for parts (a seek to
    subimage 1 and back) left OpenImageIO's WebP reader unable to decode. Formats of one image are not probed."""
    import OpenImageIO as oiio

    codes = (_rgb(seed=3) / 4 * 255).astype(np.uint8)
    write_image(tmp_path / "p.webp", codes, pixel_type="uint8", attributes={"compression": "lossless"})
    expected = oiio.ImageBuf(str(tmp_path / "p.webp")).get_pixels(oiio.FLOAT)
    np.testing.assert_array_equal(read_plate(tmp_path / "p.webp").rgb, expected)
    assert plate_views(tmp_path / "p.webp") == []


def test_luminance_chroma_and_integer_plates_are_refused(tmp_path):
    """Y/RY/BY was read as a grey plate (the colour lost, exit 0), EXR UINT channels as a black one."""
    rgb = _rgb(seed=7)
    y = rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    write_image(tmp_path / "yc.exr", np.stack([y, rgb[..., 0] / y - 1, rgb[..., 2] / y - 1], -1), ("Y", "RY", "BY"))
    with pytest.raises(InputError, match=r"yc\.exr: a luminance/chroma EXR \(Y, RY, BY\).*write the plate as R, G, B "
                                         r"\(its channels: Y, BY, RY\)"):
        read_plate(tmp_path / "yc.exr")
    # what OpenEXR's own luminance/chroma writer makes: RY and BY at half size, which OpenImageIO cannot read
    import OpenEXR

    half = np.zeros((12, 16), np.float16)  # the binding takes full-size arrays and writes every second sample
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                 {"Y": OpenEXR.Channel(y.astype(np.float16)), "RY": OpenEXR.Channel(half, 2, 2),
                  "BY": OpenEXR.Channel(half, 2, 2)}).write(str(tmp_path / "ycsub.exr"))
    with pytest.raises(InputError, match=r"ycsub\.exr is a luminance/chroma EXR with subsampled chroma"):
        read_plate(tmp_path / "ycsub.exr")
    # R, G, B with B alone subsampled was called luminance/chroma (Y, RY, BY) too (QA): the channels as they are
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                 {"R": OpenEXR.Channel(rgb[..., 0].astype(np.float16)), "G": OpenEXR.Channel(rgb[..., 1].astype(
                     np.float16)), "B": OpenEXR.Channel(half, 2, 2)}).write(str(tmp_path / "bsub.exr"))
    with pytest.raises(InputError, match=r"bsub\.exr has subsampled channels \(B at 2x2\), which vom cannot read; "
                                         r"write it with every channel at full size") as e:
        read_plate(tmp_path / "bsub.exr")
    assert "luminance/chroma" not in str(e.value)
    ids = (np.arange(12 * 16 * 3).reshape(12, 16, 3) * 1000).astype(np.uint32)
    write_image(tmp_path / "ids.exr", ids, pixel_type="uint")
    for read in (read_plate, plate_info):
        with pytest.raises(InputError, match=r"ids\.exr: its channels R, G, B are 32-bit integers"):
            read(tmp_path / "ids.exr")


def _mixed(path: Path, formats: list[str], names: list[str]) -> np.ndarray:
    import OpenImageIO as oiio

    px = _rgb(seed=5)
    px = np.concatenate([px, np.ones((*px.shape[:2], len(names) - 3), np.float32)], -1)
    spec = oiio.ImageSpec(px.shape[1], px.shape[0], len(names), oiio.HALF)
    spec.channelnames, spec.channelformats = tuple(names), tuple(oiio.TypeDesc(f) for f in formats)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(px) and out.close()
    return px


def test_the_pixel_type_and_refusals_are_those_of_the_picture_channels(tmp_path):
    """A QA pass: a half RGB beside a float Z (a CG render's usual layout) was taken as a float plate (its rgba
    output written in float, twice the size, where the README says a half plate's stays half); and one 32-bit
    integer channel among R, G, B was said as all three."""
    _mixed(tmp_path / "z.exr", ["half"] * 3 + ["float"], ["R", "G", "B", "Z"])
    _mixed(tmp_path / "id.exr", ["half"] * 3 + ["uint"], ["R", "G", "B", "objectId"])
    for name in ("z.exr", "id.exr"):
        assert plate_info(tmp_path / name).pixel_type == "half"
        assert read_plate(tmp_path / name).info.pixel_type == "half"
    _mixed(tmp_path / "f.exr", ["half", "float", "half"], ["R", "G", "B"])
    assert plate_info(tmp_path / "f.exr").pixel_type == "float"
    _mixed(tmp_path / "b.exr", ["half", "float", "uint"], ["R", "G", "B"])
    with pytest.raises(InputError, match=r"b\.exr: its channel B is a 32-bit integer \("):
        read_plate(tmp_path / "b.exr")


def test_blenders_combined_pass_is_the_beauty_of_a_multilayer_file(tmp_path):
    beauty, diffuse = _rgb(seed=3), _rgb(seed=4)
    names = tuple(f"ViewLayer.{p}.{c}" for p in ("Combined", "DiffCol") for c in "RGB")
    write_image(tmp_path / "b.exr", np.concatenate([beauty, diffuse], -1), names)
    np.testing.assert_array_equal(read_plate(tmp_path / "b.exr").rgb, beauty)
    # two AOVs and no beauty: refused, saying how to make a plate of one (there is no layer setting to point at)
    write_image(tmp_path / "a.exr", np.concatenate([beauty, diffuse], -1),
                tuple(f"{p}.{c}" for p in ("diffuse", "spec") for c in "RGB"))
    with pytest.raises(InputError, match=r"its layers diffuse, spec are not a beauty layer .*oiiotool IN --ch "
                                         r"diffuse\.R,diffuse\.G,diffuse\.B --chnames R,G,B"):
        read_plate(tmp_path / "a.exr")


def test_a_deep_plate_is_refused_naming_it(tmp_path):
    import OpenImageIO as oiio

    flat = write_image(tmp_path / "f.exr", np.concatenate([_rgb(), np.ones((12, 16, 2))], -1).astype(np.float32),
                       ("R", "G", "B", "A", "Z"))
    deep = oiio.ImageBuf()
    assert oiio.ImageBufAlgo.deepen(deep, oiio.ImageBuf(str(flat)))
    assert deep.write(str(tmp_path / "d.exr"))
    with pytest.raises(InputError, match=r"plate .*d\.exr is a deep image .* flatten it first"):
        read_plate(tmp_path / "d.exr")


def test_a_straight_alpha_png_plate_is_read_as_its_file_holds_it(tmp_path):
    """OpenImageIO premultiplies a PNG's RGB by its alpha as it reads (PNG alpha is straight): a plate with a soft
    alpha (Blender's Film > Transparent) reached the network darkened and came out premultiplied as "its own" RGB."""
    import OpenImageIO as oiio

    rgb = np.full((8, 8, 3), 200, np.uint8)
    alpha = np.full((8, 8, 1), 64, np.uint8)
    spec = oiio.ImageSpec(8, 8, 4, oiio.UINT8)
    spec.attribute("oiio:UnassociatedAlpha", 1)  # write the values as they are
    out = oiio.ImageOutput.create(str(tmp_path / "p.png"))
    assert out.open(str(tmp_path / "p.png"), spec) and out.write_image(np.concatenate([rgb, alpha], axis=2))
    out.close()
    plate = read_plate(tmp_path / "p.png")
    np.testing.assert_allclose(plate.rgb, 200 / 255, atol=1e-6)


def test_a_plate_over_the_network_picture_keeps_its_overscan_and_extends_its_edge_where_it_has_none(tmp_path):
    """``Plate.over``: the overscan the frame holds as it is; past it (a frame with less overscan than the
    shot's picture) the frame's edge extended, not a black band; inside the display window, what a cropped
    frame lacks is 0."""
    rgb = _rgb(12, 20)  # data window x -4..15, y 0..11 over a 16x12 display window
    write_image(tmp_path / "p.exr", rgb, data_origin=(-4, 0), display=(0, 0, 16, 12))
    plate = read_plate(tmp_path / "p.exr")
    assert plate.over(Window(0, 0, 16, 12)) is plate.rgb
    got = plate.over(Window(-6, -2, 24, 16))  # 2 more columns left, 4 right, 2 rows above and below
    assert got.shape == (16, 24, 3)
    np.testing.assert_array_equal(got[2:14, 2:22], rgb)
    np.testing.assert_array_equal(got[2:14, 0], rgb[:, 0])  # left of the data window: its edge
    np.testing.assert_array_equal(got[0, 2:22], rgb[0])  # above: the top row
    np.testing.assert_array_equal(got[15, 23], rgb[11, 19])
    write_image(tmp_path / "c.exr", rgb[4:8, 8:12], data_origin=(4, 4), display=(0, 0, 16, 12))  # cropped
    cropped = read_plate(tmp_path / "c.exr").over(Window(-2, 0, 18, 12))
    np.testing.assert_array_equal(cropped[4:8, 6:10], rgb[4:8, 8:12])
    assert not cropped[:, 2:6].any() and not cropped[:4].any()  # the display window's missing pixels: 0
    np.testing.assert_array_equal(cropped[:, 0], cropped[:, 2])  # the overscan: the display's edge column


def test_an_empty_frame_is_said_as_empty(tmp_path):
    """QA: a zero-byte frame (a failed copy) was said in OpenEXR's words ("Unable to read magic and version flags")."""
    (tmp_path / "p.0003.exr").write_bytes(b"")
    with pytest.raises(InputError, match=r"^plate .*p\.0003\.exr is empty \(0 bytes: a failed copy or render\?\)$"):
        read_plate(tmp_path / "p.0003.exr")
