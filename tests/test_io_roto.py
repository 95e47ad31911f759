"""Roto masks (vom_plugin.io.read_roto): which channel, binarising, resampling, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from test_io_support import write_image

from vom_plugin.errors import InputError
from vom_plugin.io import read_roto


def _disc(h=24, w=32, r=6.0, cy=12, cx=16):
    yy, xx = np.mgrid[0:h, 0:w]
    return (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).astype(np.float32)


def test_alpha_channel_is_used_and_binarised(tmp_path):
    disc = _disc()
    soft = disc * 0.6  # above the 0.5 threshold: inside
    soft[0, 0] = 0.4  # below: outside
    rgb = np.ones((24, 32, 3), np.float32)  # RGB says nothing: the alpha wins
    write_image(tmp_path / "roto.exr", np.concatenate([rgb, soft[:, :, None]], 2), ("R", "G", "B", "A"))
    mask = read_roto(tmp_path / "roto.exr", (32, 24))
    assert mask.dtype == np.float32 and mask.shape == (24, 32)
    np.testing.assert_array_equal(mask, disc)


def test_luminance_when_there_is_no_alpha(tmp_path):
    disc = _disc()
    write_image(tmp_path / "roto.png", (np.repeat(disc[:, :, None], 3, 2) * 255).astype(np.uint8), pixel_type="uint8")
    np.testing.assert_array_equal(read_roto(tmp_path / "roto.png", (32, 24)), disc)


def test_opaque_alpha_falls_back_to_luminance(tmp_path):
    # A paint program's RGBA PNG: white shape in RGB, alpha 1 everywhere.
    disc = _disc()
    rgba = np.concatenate([np.repeat(disc[:, :, None], 3, 2), np.ones((24, 32, 1), np.float32)], 2)
    write_image(tmp_path / "roto.png", (rgba * 255).astype(np.uint8), ("R", "G", "B", "A"), pixel_type="uint8")
    np.testing.assert_array_equal(read_roto(tmp_path / "roto.png", (32, 24)), disc)


def test_a_grey_png_with_an_opaque_alpha_reads_its_grey(tmp_path):
    """GIMP's and Photoshop's grey exports: Y + A, the shape in Y, A opaque. The opaque alpha was taken as the
    roto: a full-frame matte, exit 0."""
    disc = _disc()
    ya = np.stack([disc, np.ones_like(disc)], 2)
    write_image(tmp_path / "roto.png", (ya * 255).astype(np.uint8), ("Y", "A"), pixel_type="uint8")
    np.testing.assert_array_equal(read_roto(tmp_path / "roto.png", (32, 24)), disc)


def test_a_mask_channel_beside_other_channels_is_the_roto(tmp_path):
    """R, G, B (black) + mask, or Z + mask: the channel named mask holds the shape (it was refused as empty)."""
    disc = _disc()
    zeros = np.zeros_like(disc)
    write_image(tmp_path / "a.exr", np.stack([zeros, zeros, zeros, disc], 2), ("R", "G", "B", "mask"))
    write_image(tmp_path / "b.exr", np.stack([zeros + 5, disc], 2), ("Z", "mask"))
    for name in ("a.exr", "b.exr"):
        np.testing.assert_array_equal(read_roto(tmp_path / name, (32, 24)), disc)


def test_a_roto_covering_the_whole_frame_is_refused(tmp_path):
    write_image(tmp_path / "roto.exr", np.ones((24, 32, 1), np.float32), ("A",))
    with pytest.raises(InputError, match=r"roto .*roto\.exr covers the whole frame: every pixel of its channel A"):
        read_roto(tmp_path / "roto.exr", (32, 24))


def test_named_channel_and_a_wrong_channel_name(tmp_path):
    disc, other = _disc(), _disc(cx=8)
    write_image(tmp_path / "roto.exr", np.stack([disc, other], 2), ("matte.A", "obj2.mask"))
    np.testing.assert_array_equal(read_roto(tmp_path / "roto.exr", (32, 24)), disc)  # the only *.A
    np.testing.assert_array_equal(read_roto(tmp_path / "roto.exr", (32, 24), channel="obj2.mask"), other)
    with pytest.raises(InputError) as err:
        read_roto(tmp_path / "roto.exr", (32, 24), channel="holdout")
    message = str(err.value)
    assert "roto.exr" in message and "'holdout'" in message and "matte.A, obj2.mask" in message


def test_same_aspect_other_size_is_resampled(tmp_path):
    big = _disc(48, 64, r=12, cy=24, cx=32)
    write_image(tmp_path / "roto.exr", big, ("A",))
    mask = read_roto(tmp_path / "roto.exr", (32, 24))
    assert mask.shape == (24, 32)
    # The same disc (radius 6, area ~113) up to its rim: half-pixel centre shifts move a few rim pixels.
    expected = _disc(r=6, cy=11.75, cx=15.75)
    assert np.abs(mask - expected).sum() <= 6 and abs(mask.sum() - np.pi * 36) < 10
    small = read_roto(tmp_path / "roto.exr", (128, 96))
    assert small.shape == (96, 128) and small[48, 64] == 1 and small[0, 0] == 0
    notes: list[str] = []  # a proxy (2x, half) is scaled without a word
    read_roto(tmp_path / "roto.exr", (32, 24), notes=notes)
    assert notes == []
    # a roto a pixel off the plate's size (rendered for another format) was stretched silently (a QA pass)
    write_image(tmp_path / "off.exr", _disc(72, 129, r=20, cy=36, cx=64), ("A",))
    read_roto(tmp_path / "off.exr", (128, 72), notes=notes)
    desqueezed: list[str] = []  # 768x576 over a 720x576 plate of pixel aspect 16/15: as meant, said nothing (review)
    write_image(tmp_path / "pal.exr", _disc(576, 768, r=100, cy=288, cx=384), ("A",))
    read_roto(tmp_path / "pal.exr", (720, 576), pixel_aspect=16 / 15, notes=desqueezed)
    assert desqueezed == []
    assert notes == [f"roto {tmp_path / 'off.exr'} is 129x72, the plate 128x72: stretched to the plate's size; a roto "
                     "a few pixels off the plate's size was made for another format: check that it lines up"]


def test_roto_data_window_is_placed_in_its_display_window(tmp_path):
    patch = np.ones((4, 5), np.float32)
    write_image(tmp_path / "roto.exr", patch, ("A",), data_origin=(10, 6), display=(0, 0, 32, 24))
    mask = read_roto(tmp_path / "roto.exr", (32, 24))
    assert mask.sum() == 20 and mask[6:10, 10:15].all()


def test_other_aspect_is_an_error_naming_the_file(tmp_path):
    write_image(tmp_path / "roto.exr", _disc(32, 32), ("A",))
    with pytest.raises(InputError) as err:
        read_roto(tmp_path / "roto.exr", (32, 24))
    message = str(err.value)
    assert "roto.exr" in message and "32x32" in message and "32x24" in message and "aspect" in message


def test_empty_roto_is_an_error(tmp_path):
    write_image(tmp_path / "roto.exr", np.full((24, 32), 0.3, np.float32), ("A",))
    with pytest.raises(InputError, match=r"roto .*roto\.exr is empty"):
        read_roto(tmp_path / "roto.exr", (32, 24))


def test_an_empty_roto_says_why_where_it_can(tmp_path):
    """A roto drawn at 40% opacity, and one whose pixels lie outside its display window, were only "empty" (QA)."""
    write_image(tmp_path / "faint.exr", _disc() * 0.4, ("A",))
    with pytest.raises(InputError, match=r"faint\.exr is empty: .* over the frame \(its highest value is 0\.4: "
                                         r"drawn at less than full opacity\?\); expected"):
        read_roto(tmp_path / "faint.exr", (32, 24))
    write_image(tmp_path / "off.exr", _disc(), ("A",), data_origin=(100, 0), display=(0, 0, 32, 24))
    with pytest.raises(InputError, match=r"off\.exr is empty: .* \(its pixels lie outside its frame: data window "
                                         r"\(100, 0, 131, 23\), display window \(0, 0, 31, 23\)\)"):
        read_roto(tmp_path / "off.exr", (32, 24))


def test_missing_roto_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"roto .*roto\.1001\.exr does not exist"):
        read_roto(tmp_path / "roto.1001.exr", (32, 24))


def test_demo_shot_roto():
    from vom_plugin.locations import demo_dir

    mask = read_roto(demo_dir() / "roto.0001.exr", (480, 270))
    assert mask.shape == (270, 480) and set(np.unique(mask)) == {0.0, 1.0} and 0 < mask.mean() < 0.5


def test_desqueezed_roto_of_an_anamorphic_plate_is_accepted(tmp_path):
    # Plate 32x24 with pixel aspect 2 is shown 64x24; a roto drawn on that picture is squeezed back.
    write_image(tmp_path / "roto.exr", _disc(24, 64, r=6, cy=12, cx=32), ("A",))
    mask = read_roto(tmp_path / "roto.exr", (32, 24), pixel_aspect=2.0)
    assert mask.shape == (24, 32) and mask[12, 16] == 1 and mask[12, 0] == 0
    with pytest.raises(InputError, match=r"aspect 1\.333\); expected a roto of the plate's aspect$"):
        read_roto(tmp_path / "roto.exr", (32, 24))  # without the pixel aspect it is another aspect
    write_image(tmp_path / "wide.exr", _disc(24, 80, r=6, cy=12, cx=40), ("A",))  # neither: both aspects said (QA)
    with pytest.raises(InputError, match=r"expected a roto of the plate's aspect, or 2\.667, the picture desqueezed "
                                         r"\(pixel aspect 2\)$"):
        read_roto(tmp_path / "wide.exr", (32, 24), pixel_aspect=2.0)


def test_several_layered_alphas_are_refused_naming_them(tmp_path):
    """One alpha per object and no plain A: taking the first would matte another object (it did, silently)."""
    box = np.zeros((12, 16), np.float32)
    box[2:6, 2:6] = 1
    write_image(tmp_path / "r.exr", np.stack([box, box[::-1]], -1), ("dog.A", "hero.A"))
    with pytest.raises(InputError, match=r"r\.exr holds several alphas \(dog\.A, hero\.A\)"):
        read_roto(tmp_path / "r.exr", (16, 12))
    # with a plain A beside them, that is the roto
    write_image(tmp_path / "p.exr", np.stack([box, box[::-1], box], -1), ("dog.A", "hero.A", "A"))
    np.testing.assert_array_equal(read_roto(tmp_path / "p.exr", (16, 12)), box)


def test_a_layered_opaque_alpha_reads_the_luminance_of_its_own_layer(tmp_path):
    """rgba.R/G/B/A with an opaque alpha and the shape in RGB reads as plain R, G, B, A does (it read as the
    whole frame)."""
    shape = np.zeros((12, 16), np.float32)
    shape[3:8, 4:10] = 1
    px = np.stack([shape, shape, shape, np.ones_like(shape)], -1)
    write_image(tmp_path / "plain.exr", px, ("R", "G", "B", "A"))
    write_image(tmp_path / "layer.exr", px, ("rgba.R", "rgba.G", "rgba.B", "rgba.A"))
    np.testing.assert_array_equal(read_roto(tmp_path / "layer.exr", (16, 12)), shape)
    np.testing.assert_array_equal(read_roto(tmp_path / "plain.exr", (16, 12)), shape)


def test_an_autocropped_roto_uses_its_alpha(tmp_path):
    """Black RGB and an alpha that is 1 over a data window cropped to the shape (Nuke's Write with autocrop):
    constant inside the data window, not over the frame."""
    write_image(tmp_path / "r.exr", np.concatenate([np.zeros((4, 5, 3)), np.ones((4, 5, 1))], -1).astype(np.float32),
                ("R", "G", "B", "A"), data_origin=(6, 3), display=(0, 0, 16, 12))
    mask = read_roto(tmp_path / "r.exr", (16, 12))
    assert mask[3:7, 6:11].all() and mask.sum() == 20


@pytest.mark.parametrize(("data", "where"), [
    ((-6, -4, 44, 32), (slice(4, 8), slice(16, 21))),  # overscan: 6 px each side, data window 44x32
    ((8, 4, 16, 16), (slice(4, 8), slice(16, 21))),  # a crop: the data window 16x16 at (8, 4)
])
def test_a_roto_the_size_of_the_plate_data_window_covers_it(tmp_path, data, where):
    """Blender shows an EXR's stored pixels (its data window), so a roto drawn there has that size: it is
    placed over the plate's data window, not stretched over the display window (or refused for its aspect)."""
    from vom_plugin.io import Window, roto_over_data_window

    x, y, w, h = data
    display, data_window = Window(0, 0, 32, 24), Window(x, y, w, h)
    roto = np.zeros((h, w), np.float32)
    roto[4 - y : 8 - y, 16 - x : 21 - x] = 1.0  # display rows 4-7, columns 16-20
    write_image(tmp_path / "roto.exr", roto, ("A",))  # plain windows: (0, 0) to (w, h)
    assert roto_over_data_window(tmp_path / "roto.exr", (display, data_window))
    mask = read_roto(tmp_path / "roto.exr", (32, 24), plate_windows=(display, data_window))
    expected = np.zeros((24, 32), np.float32)
    expected[where] = 1.0
    np.testing.assert_array_equal(mask, expected)
    # a roto of the display window's size stays as it was, and without the plate's windows nothing changes
    write_image(tmp_path / "full.exr", expected, ("A",))
    assert not roto_over_data_window(tmp_path / "full.exr", (display, data_window))
    np.testing.assert_array_equal(read_roto(tmp_path / "full.exr", (32, 24), plate_windows=(display, data_window)),
                                  expected)


def test_a_multipart_roto_is_read_from_the_part_holding_its_alpha(tmp_path):
    """A QA pass: a depth part first made its Z (a 0-1 ramp) the roto, with exit 0: half the frame matted."""
    from test_io_plate import _multipart

    disc = _disc()
    ramp = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (24, 1))[..., None]
    rgba = np.dstack([disc, disc, disc, disc])
    _multipart(tmp_path / "r.exr", [("depth", ("Z",), ramp), ("rgba", ("R", "G", "B", "A"), rgba)])
    assert np.array_equal(read_roto(tmp_path / "r.exr", (32, 24)), disc)
    # the alpha in its own part beside an opaque picture: two parts could be the roto, refused naming them
    opaque = np.dstack([np.full((24, 32), 0.2, np.float32)] * 3 + [np.ones((24, 32), np.float32)])
    _multipart(tmp_path / "m.exr", [("rgba", ("R", "G", "B", "A"), opaque), ("mask", ("mask.a",), disc[..., None])])
    with pytest.raises(InputError, match=r"m\.exr: a multi-part EXR, and its parts 'rgba', 'mask' each hold an "
                                         r"alpha or matte channel \(part 0 'rgba': R, G, B, A; part 1 'mask': "
                                         r"mask\.a\); .*--subimage PART"):
        read_roto(tmp_path / "m.exr", (32, 24))
    # a named channel finds its part
    assert np.array_equal(read_roto(tmp_path / "m.exr", (32, 24), channel="mask.a"), disc)
    # no alpha anywhere: the part with a picture, not the depth before it
    grey = np.dstack([disc, disc, disc])
    _multipart(tmp_path / "g.exr", [("depth", ("Z",), ramp), ("beauty", ("R", "G", "B"), grey)])
    assert np.array_equal(read_roto(tmp_path / "g.exr", (32, 24)), disc)


def test_a_lone_data_channel_is_not_a_roto(tmp_path):
    write_image(tmp_path / "z.exr", _disc(), ("Z",))
    for name in ("Z", "depth.Z", "N.x"):
        write_image(tmp_path / "z.exr", _disc(), (name,))
        with pytest.raises(InputError, match=rf"z\.exr: its only channel '{name}' is a data pass \(depth"):
            read_roto(tmp_path / "z.exr", (32, 24))
    for name in ("Y", "hero", "roto"):  # another lone channel is the drawn shape, as before
        write_image(tmp_path / "y.exr", _disc(), (name,))
        assert np.array_equal(read_roto(tmp_path / "y.exr", (32, 24)), _disc())


def test_a_roto_of_32_bit_integers_is_refused_saying_so_not_empty(tmp_path):
    """A QA pass: a uint32 alpha of whole 1s (OpenImageIO divides it by 2^32 - 1) was refused as "empty"."""
    write_image(tmp_path / "r32.exr", _disc().astype(np.uint32)[..., None], ("A",), pixel_type="uint")
    with pytest.raises(InputError, match=r"r32\.exr: its channel A is a 32-bit integer \(an ID pass\?\)"):
        read_roto(tmp_path / "r32.exr", (32, 24))


def test_a_roto_of_8_bit_codes_is_read_with_a_note_and_nan_is_named_when_empty(tmp_path):
    write_image(tmp_path / "codes.exr", _disc() * 255, ("A",))
    notes: list[str] = []
    assert np.array_equal(read_roto(tmp_path / "codes.exr", (32, 24), notes=notes), _disc())
    assert len(notes) == 1 and "codes.exr: its channel A reaches 255, not 1 (8-bit codes 0-255?)" in notes[0]
    notes.clear()
    read_roto(tmp_path / "codes.exr", (32, 24))  # no list given: nothing to say it to, nothing raised
    write_image(tmp_path / "one.exr", _disc(), ("A",))
    read_roto(tmp_path / "one.exr", (32, 24), notes=notes)
    assert notes == []
    write_image(tmp_path / "plus.exr", _disc() * 2 + 0.3 * (np.roll(_disc(), 1, 1) - _disc()).clip(0), ("A",))
    read_roto(tmp_path / "plus.exr", (32, 24), notes=notes)  # two rotos merged with plus: 2, soft edges, no note
    write_image(tmp_path / "plus_hard.exr", _disc() + np.roll(_disc(), 2, 1), ("A",))  # hard edges: 0, 1, 2
    read_roto(tmp_path / "plus_hard.exr", (32, 24), notes=notes)
    assert notes == []
    nan = np.where(_disc() > 0, np.nan, 0.0).astype(np.float32)
    write_image(tmp_path / "nan.exr", nan, ("A",))
    with pytest.raises(InputError, match=r"nan\.exr is empty: no pixel of its channel A is >= 0\.5 over the frame "
                                         r"\(\d+ of its pixels are NaN or infinite\)"):
        read_roto(tmp_path / "nan.exr", (32, 24))


def test_over_the_network_picture_a_roto_uses_its_own_overscan_else_extends_its_edges(tmp_path):
    """A render's network sees the plate's overscan (``picture``): a roto with pixels there (written with the
    plate's windows) is read there, 0 where it has none; a roto of the display window only says nothing of the
    overscan and is extended outwards from its edges."""
    from vom_plugin.io import Window, picture_window

    display, data = Window(0, 0, 32, 24), Window(-6, -4, 44, 32)
    picture = picture_window(display, [data])
    assert picture == data
    shape = np.zeros((32, 44), np.float32)
    shape[4 + 2 : 4 + 10, 0:10] = 1.0  # rows 2-9 of the display, from 6 px into the left overscan to column 3
    write_image(tmp_path / "own.exr", shape, ("A",), data_origin=(-6, -4), display=(0, 0, 32, 24))
    mask = read_roto(tmp_path / "own.exr", (32, 24), plate_windows=(display, data), picture=picture)
    np.testing.assert_array_equal(mask, shape)
    # the same shape drawn over the display window only: its edge column goes on through the overscan
    write_image(tmp_path / "display.exr", shape[4:28, 6:38], ("A",))
    mask = read_roto(tmp_path / "display.exr", (32, 24), plate_windows=(display, data), picture=picture)
    expected = np.zeros((32, 44), np.float32)
    expected[6:14, 0:10] = 1.0
    np.testing.assert_array_equal(mask, expected)
    # a roto of half the size is resampled over the display window, then extended the same way
    write_image(tmp_path / "half.exr", shape[4:28:2, 6:38:2], ("A",))
    mask = read_roto(tmp_path / "half.exr", (32, 24), plate_windows=(display, data), picture=picture)
    assert mask.shape == (32, 44) and mask[6:14, 0:6].all() and not mask[:6].any() and not mask[14:].any()
    # without a picture (the Python API's arrays), the display window as before
    assert read_roto(tmp_path / "own.exr", (32, 24), plate_windows=(display, data)).shape == (24, 32)


def test_the_picture_takes_in_overscan_up_to_a_quarter_of_the_frame_on_each_side():
    from vom_plugin.io import Window, picture_window

    display = Window(0, 0, 100, 40)
    assert picture_window(display, []) == display
    assert picture_window(display, [Window(10, 5, 50, 20)]) == display  # a cropped data window adds nothing
    assert picture_window(display, [Window(-8, 0, 100, 40), Window(0, -3, 104, 46)]) == Window(-8, -3, 112, 46)
    assert picture_window(display, [Window(-300, -300, 700, 700)]) == Window(-25, -10, 150, 60)
    shifted = Window(1000, 500, 100, 40)  # a display window away from the origin
    assert picture_window(shifted, [Window(990, 500, 120, 40)]) == Window(990, 500, 120, 40)


def test_a_roto_whose_shape_lies_in_its_overscan_only_is_read_and_one_white_over_the_frame_alone_too(tmp_path):
    """An object keyed while it is still in the overscan, about to enter the frame: the roto is not empty (it was
    refused so, looking at the display window alone); one white over the whole display window and black in its
    overscan has a background to learn from."""
    from vom_plugin.io import Window

    display, data = Window(0, 0, 32, 24), Window(-8, 0, 40, 24)
    outside = np.zeros((24, 40), np.float32)
    outside[8:14, 1:6] = 1.0  # x -7..-3: the left overscan only
    write_image(tmp_path / "out.exr", outside, ("A",), data_origin=(-8, 0), display=(0, 0, 32, 24))
    mask = read_roto(tmp_path / "out.exr", (32, 24), plate_windows=(display, data), picture=data)
    np.testing.assert_array_equal(mask, outside)
    with pytest.raises(InputError, match=r"out\.exr is empty: no pixel of its channel A is >= 0\.5 over the frame;"):
        read_roto(tmp_path / "out.exr", (32, 24), plate_windows=(display, data))  # without the overscan: empty
    frame = np.zeros((24, 40), np.float32)
    frame[:, 8:] = 1.0
    write_image(tmp_path / "frame.exr", frame, ("A",), data_origin=(-8, 0), display=(0, 0, 32, 24))
    np.testing.assert_array_equal(read_roto(tmp_path / "frame.exr", (32, 24), plate_windows=(display, data),
                                            picture=data), frame)
    write_image(tmp_path / "all.exr", np.ones((24, 32), np.float32), ("A",))  # display only: extended, all white
    with pytest.raises(InputError, match=r"all\.exr covers the whole frame and its overscan"):
        read_roto(tmp_path / "all.exr", (32, 24), plate_windows=(display, data), picture=data)


def test_a_proxy_roto_with_its_own_overscan_is_scaled_up_over_the_picture(tmp_path):
    """A roto rendered at half resolution with half-resolution windows (a comp in proxy mode): its overscan pixels
    are scaled up with the rest, not dropped for the display edge extended outwards (the QA pass's plate: 912
    overscan pixels set where 316 were inside)."""
    from vom_plugin.io import Window

    display, data = Window(0, 0, 64, 48), Window(-8, -8, 80, 64)
    full = np.zeros((64, 80), np.float32)
    full[16:32, 0:20] = 1.0  # x -8..11, y 8..23: from the left overscan into the frame
    write_image(tmp_path / "proxy.exr", full[::2, ::2], ("A",), data_origin=(-4, -4), display=(0, 0, 32, 24))
    mask = read_roto(tmp_path / "proxy.exr", (64, 48), plate_windows=(display, data), picture=data)
    np.testing.assert_array_equal(mask, full)
    # the same roto without windows of its own overscan (display only) is extended: rows 8-23 to x = -8
    write_image(tmp_path / "plain.exr", full[8:56:2, 8:72:2], ("A",))
    np.testing.assert_array_equal(read_roto(tmp_path / "plain.exr", (64, 48), plate_windows=(display, data),
                                            picture=data), full)
    corner = np.zeros((64, 80), np.float32)
    corner[0:6, 0:6] = 1.0  # a shape in the overscan's corner only: not reached by extending the frame's edges
    corner[30:40, 30:40] = 1.0
    write_image(tmp_path / "corner.exr", corner[::2, ::2], ("A",), data_origin=(-4, -4), display=(0, 0, 32, 24))
    mask = read_roto(tmp_path / "corner.exr", (64, 48), plate_windows=(display, data), picture=data)
    np.testing.assert_array_equal(mask, corner)


def _car() -> np.ndarray:
    """A car across the bottom third of a 32x24 frame, cut by its left and bottom edges."""
    car = np.zeros((24, 32), np.float32)
    car[16:, :24] = 1.0
    return car


def _close_up() -> np.ndarray:
    """A head and shoulders filling a 32x24 frame: shoulders across the bottom and both sides, the head cut by the
    top edge (64% of the frame and 53% of its border; all four edges)."""
    yy, xx = np.mgrid[0:24, 0:32]
    head = (xx - 16) ** 2 / 8.0**2 + (yy - 6) ** 2 / 10.0**2 <= 1
    shoulders = yy >= 12 + np.abs(xx - 16) // 3
    return (head | shoulders).astype(np.float32)


def test_a_roto_that_is_probably_not_what_was_meant_reads_with_a_warning(tmp_path):
    """QA: each of these rendered silently: an inverted roto (the background matted), a picture written without
    its alpha (its luminance taken for the roto), a roto whose NaN or infinite pixels read as outside."""
    disc = _disc()
    cases = {
        "inverted": (1 - disc, ("A",), "covers 85% of the frame and 100% of its border: is it inverted"),
        # an object cut by two edges, inverted (a car across the bottom left: review, the 85% rule missed it)
        "inverted_cut": (1 - _car(), ("A",), "covers 75% of the frame and 71% of its border: is it inverted"),
        # a close-up (head and shoulders): over half the frame, cut by all four edges, about half its border inside
        "close_up": (_close_up(), ("A",), None),
        "picture": (np.repeat((0.2 + 0.5 * np.linspace(0, 1, 32)[None, :] * np.ones((24, 1)) + 0.2 * disc)
                              [:, :, None], 3, 2), ("R", "G", "B"), "lies between 0.05 and 0.95, as a picture's does"),
        "picture_rgb_lower": (np.repeat((0.2 + 0.5 * np.linspace(0, 1, 32)[None, :] * np.ones((24, 1)))[:, :, None],
                                        3, 2), ("r", "g", "b"), "(a Write of RGB only? a premultiplied plate?)"),
        "nan": (np.where(np.arange(32)[None, :] < 3, np.nan, disc).astype(np.float32), ("A",),
                "72 of its pixels are NaN or infinite, read as outside"),
        "clean": (disc, ("A",), None),
    }
    for name, (px, channels, said) in cases.items():
        path = tmp_path / f"{name}.exr"
        write_image(path, px if px.ndim == 3 else px[:, :, None], channels, pixel_type="float")
        notes: list[str] = []
        read_roto(path, (32, 24), notes=notes)
        if said is None:
            assert notes == [], notes
        else:
            assert len(notes) == 1 and notes[0].startswith(f"roto {path}: ") and said in notes[0], (name, notes)


def test_the_picture_warning_reads_the_roto_over_its_frame_not_its_data_window(tmp_path):
    """A review: a motion-blurred roto written with its bounding box as data window (Nuke's Roto node) was said to
    look like a picture, the same pixels over the whole frame were not: judged over the display window."""
    h, w = 48, 96
    xx = np.arange(w, dtype=np.float32)[None, :] * np.ones((h, 1), np.float32)
    blur = np.clip(1 - np.abs(xx - 48) / 24, 0, 1)  # a ramp 48 px wide across the middle: mostly soft
    blur[:, :20] = 0
    blur[:, 76:] = 0
    for name, px, origin in (("full", blur, (0, 0)), ("bbox", blur[:, 24:72], (24, 0))):
        write_image(tmp_path / f"{name}.exr", np.ascontiguousarray(px)[:, :, None], ("A",), pixel_type="float",
                    data_origin=origin, display=(0, 0, w, h))
        notes: list[str] = []
        read_roto(tmp_path / f"{name}.exr", (w, h), notes=notes)
        assert notes == [], (name, notes)


@pytest.mark.parametrize(("alpha", "matte"), [(1.0, "mask.a"), (0.0, "matte"), (1.0, "hero.matte")])
def test_a_constant_alpha_beside_a_matte_channel_reads_the_matte(tmp_path, alpha, matte):
    """Nuke's RotoPaint drawn into the mask layer, written with the plate's rgba (an opaque A): the plate's luminance
    was read as the roto (another object matted, exit 0, QA); the matte channel is the shape."""
    disc, plate = _disc(), np.zeros((24, 32, 3), np.float32)
    plate[2:8, 2:10] = 0.9  # a bright patch elsewhere: what the luminance would have matted
    write_image(tmp_path / "r.exr", np.concatenate([plate, np.full((24, 32, 1), alpha, np.float32), disc[..., None]],
                                                   2), ("R", "G", "B", "A", matte))
    np.testing.assert_array_equal(read_roto(tmp_path / "r.exr", (32, 24)), disc)


def test_a_shape_in_both_the_alpha_and_a_matte_channel_is_refused_naming_them(tmp_path):
    """A plate's own alpha (a CG element's) and the roto in mask.a: the alpha was read, without a word (QA)."""
    box = np.zeros((24, 32), np.float32)
    box[4:12, 18:28] = 1
    write_image(tmp_path / "r.exr", np.stack([box, box, box, box, _disc()], -1), ("R", "G", "B", "A", "mask.a"))
    with pytest.raises(InputError) as e:
        read_roto(tmp_path / "r.exr", (32, 24))
    message = str(e.value)
    assert "r.exr" in message and "its alpha A and its matte channel mask.a hold two shapes" in message
    assert "oiiotool IN --ch mask.a --chnames A -o OUT" in message
    # a matte channel that draws nothing, or the alpha's own shape (a Write of "all" carrying a black or copied mask
    # layer beside a right alpha): the alpha, as before (review: refused)
    for mask in (np.zeros_like(box), np.ones_like(box), box):
        write_image(tmp_path / "s.exr", np.stack([box, box, box, box, mask], -1), ("R", "G", "B", "A", "mask.a"))
        np.testing.assert_array_equal(read_roto(tmp_path / "s.exr", (32, 24)), box)
    # an opaque alpha beside a black matte channel: the picture, as before
    write_image(tmp_path / "o.exr", np.stack([box, box, box, np.ones_like(box), np.zeros_like(box)], -1),
                ("R", "G", "B", "A", "mask.a"))
    np.testing.assert_array_equal(read_roto(tmp_path / "o.exr", (32, 24)), box)


def test_several_alphas_refusal_suggests_only_names_an_object_may_take(tmp_path):
    """"name the object after its layer (mask, rgba)": an object named rgba is refused as a layer the comp uses."""
    box = np.zeros((12, 16), np.float32)
    box[2:6, 2:6] = 1
    write_image(tmp_path / "r.exr", np.stack([box, box[::-1]], -1), ("rgba.A", "hero.A"))
    with pytest.raises(InputError) as e:
        read_roto(tmp_path / "r.exr", (16, 12))
    assert "name the object after its layer (hero: an object reads its own)" in str(e.value)
    write_image(tmp_path / "s.exr", np.stack([box, box[::-1]], -1), ("rgba.A", "alpha.A"))
    with pytest.raises(InputError) as e:
        read_roto(tmp_path / "s.exr", (16, 12))
    assert "name the object" not in str(e.value) and "write the one to use as its own file" in str(e.value)


def test_a_roto_whose_frame_is_the_plates_data_window_origin_and_all_is_placed_there(tmp_path):
    """A roto written with the plate's data window as its display window (overscan at (-8, -6)): it was scaled
    into the display window as a proxy of another size, the shape shifted and shrunk without a word (QA)."""
    from vom_plugin.io import Window, roto_over_data_window

    display, data = Window(0, 0, 32, 24), Window(-8, -6, 48, 36)
    shape = np.zeros((36, 48), np.float32)
    shape[6 + 4 : 6 + 10, 8 + 12 : 8 + 20] = 1  # display rows 4-9, columns 12-19
    write_image(tmp_path / "roto.exr", shape, ("A",), data_origin=(-8, -6), display=(-8, -6, 48, 36))
    assert roto_over_data_window(tmp_path / "roto.exr", (display, data))
    mask = read_roto(tmp_path / "roto.exr", (32, 24), plate_windows=(display, data))
    expected = np.zeros((24, 32), np.float32)
    expected[4:10, 12:20] = 1
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(read_roto(tmp_path / "roto.exr", (32, 24), plate_windows=(display, data),
                                            picture=data), shape)


def _stereo_roto(path, channels, pixels, views=("left", "right")):
    import OpenImageIO as oiio

    return write_image(path, pixels, channels, attributes={"multiView": (oiio.TypeDesc(f"string[{len(views)}]"),
                                                                          views)})


def test_a_stereo_roto_is_read_in_the_plates_view(tmp_path):
    """A one-part stereo roto (A the left eye's, right.A the right eye's) over a plate matted in its view 'right':
    the roto's default view was read, a right-eye plate matted from the left eye's shape without a word (QA). The
    plate's view is read where the roto has it, saying so; a roto without it is refused; over a plate of one view
    its default view is read, said."""
    from vom_plugin.io import roto_layer_of

    left, right = _disc(cx=10), _disc(cx=22)
    path = _stereo_roto(tmp_path / "s.exr", ("A", "right.A"), np.dstack([left, right]))
    notes: list[str] = []
    assert roto_layer_of(path, None, view="right", notes=notes) == "right.A"
    assert notes == [f"roto {path} holds the views left, right: vom reads its view 'right', the view of the plate "
                     f"it mattes (channel right.A)"]
    np.testing.assert_array_equal(read_roto(path, (32, 24), channel="right.A"), right)
    notes = []
    assert roto_layer_of(path, None, view="left", notes=notes) is None  # its plain A, read as any roto's
    assert notes == [f"roto {path} holds the views left, right: vom reads its view 'left', the view of the plate it "
                     f"mattes (channel A)"]
    notes = []
    assert roto_layer_of(path, None, notes=notes) is None
    assert notes == [f"roto {path} holds the views left, right, the plate none: vom reads the roto's default view, "
                     f"'left' (channel A)"]
    np.testing.assert_array_equal(read_roto(path, (32, 24)), left)
    with pytest.raises(InputError, match=rf"roto {path} holds the views left, right and not 'centre', the view vom "
                                         rf"mattes of the plate: a roto drawn for another view"):
        roto_layer_of(path, None, view="centre")
    # every view prefixed (left.A, right.A: refused as several alphas before), an object's layer in a view
    both = _stereo_roto(tmp_path / "p.exr", ("left.A", "right.A", "hero.A", "hero.right.A"),
                        np.dstack([left, right, right, left]))
    assert roto_layer_of(both, None, view="right") == "right.A"
    assert roto_layer_of(both, None) == "left.A"
    assert roto_layer_of(both, "hero", view="right") == "hero.right.A"
    assert roto_layer_of(both, "hero", view="left") == "hero.A"
    # a view without a shape of its own is refused rather than read from another view's
    rgb = _stereo_roto(tmp_path / "rgb.exr", ("A", "right.R", "right.G", "right.B"), np.dstack([left] * 4))
    with pytest.raises(InputError, match=r"holds the views left, right, and its view 'right' has no alpha \(its "
                                         r"channels right\.R, right\.G, right\.B\)"):
        roto_layer_of(rgb, None, view="right")


def test_a_stereo_roto_of_one_part_per_view_is_refused_in_terms_of_views(tmp_path):
    """A multi-part stereo roto (parts left and right, each an A) was refused as a file of parts each holding an
    alpha (QA): its parts are its views, and the refusal says so, naming the one the plate needs."""
    import OpenImageIO as oiio

    from vom_plugin.io import roto_layer_of

    specs = []
    for view in ("left", "right"):
        spec = oiio.ImageSpec(32, 24, 1, "half")
        spec.channelnames = ("A",)
        spec.attribute("name", view)
        spec.attribute("view", view)
        specs.append(spec)
    path = str(tmp_path / "mp.exr")
    out = oiio.ImageOutput.create(path)
    assert out.open(path, tuple(specs))
    assert out.write_image(_disc(cx=10)) and out.open(path, specs[1], "AppendSubimage")
    assert out.write_image(_disc(cx=22)) and out.close()
    with pytest.raises(InputError, match=r"mp\.exr holds the views left, right, each a part of its own \(part 0 "
                                         r"'left': A; part 1 'right': A\): vom reads a stereo roto's views from one "
                                         r"part \(A, right\.A\); write its view 'right', the plate's, as a roto of "
                                         r"its own \(oiiotool mp\.exr --subimage right -o OUT\.exr\)"):
        roto_layer_of(path, None, view="right")
    with pytest.raises(InputError, match=r"write its view 'left', its default one, as a roto of its own \(oiiotool "
                                         r"mp\.exr --subimage left -o OUT\.exr\)"):
        roto_layer_of(path, None)
    with pytest.raises(InputError, match=r"holds the views left, right and not 'centre'"):
        roto_layer_of(path, None, view="centre")


def test_a_one_view_files_view_is_its_view_for_plate_and_roto(tmp_path):
    """OpenEXR's file of one view (a ``view`` attribute, no ``multiView``) counted as no view: a right-eye plate so
    written was matted from a stereo roto's left eye ("the plate none"), exit 0, and a right-eye roto so written was
    read over a plate matted in its view 'left' without a word (review). Its view is the plate's view, and a roto's
    is compared with it; a file naming no view reads as before."""
    from vom_plugin.engine.prepare import plate_view
    from vom_plugin.io import roto_layer_of

    left, right = _disc(cx=10), _disc(cx=22)
    plate = write_image(tmp_path / "right.exr", np.dstack([right] * 3), attributes={"view": "right"})
    assert plate_view(plate) == "right"
    assert plate_view(write_image(tmp_path / "mono.exr", np.dstack([right] * 3))) is None
    stereo = _stereo_roto(tmp_path / "s.exr", ("A", "right.A"), np.dstack([left, right]))
    notes: list[str] = []
    assert roto_layer_of(stereo, None, plate_view(plate), notes) == "right.A"
    assert notes == [f"roto {stereo} holds the views left, right: vom reads its view 'right', the view of the plate "
                     f"it mattes (channel right.A)"]
    # a roto of one view: its view against the plate's
    one = write_image(tmp_path / "r.exr", right, ("A",), attributes={"view": "right"})
    for name in (None, "hero"):
        with pytest.raises(InputError, match=rf"roto {one} is of the view 'right' \(its header's view\), and vom "
                                             rf"mattes the plate's view 'left': a roto drawn for another view; give "
                                             rf"the roto of the view 'left', or render a plate of the view 'right'"):
            roto_layer_of(one, name, "left")
    notes = []
    assert roto_layer_of(one, None, "right", notes) is None and notes == []
    assert roto_layer_of(one, None) is None and notes == []  # over a plate of no view: nothing to compare
    np.testing.assert_array_equal(read_roto(one, (32, 24)), right)
    mono = write_image(tmp_path / "m.exr", left, ("A",))
    assert roto_layer_of(mono, None, "left", notes) is None and roto_layer_of(mono, None, "right", notes) is None
    assert notes == []


def test_a_stereo_roto_view_of_several_layered_alphas_is_refused_as_a_mono_roto_is(tmp_path):
    """A view holding one alpha per object (hero.A, dog.A), read for no object, was refused as a view with 'no
    alpha' (review): refused as a roto of several alphas is, naming them and the view; a view's only layered alpha
    is read, as a roto's is."""
    from vom_plugin.io import roto_layer_of

    shape = _disc()
    path = _stereo_roto(tmp_path / "s.exr", ("hero.A", "dog.A", "hero.right.A", "dog.right.A"),
                        np.dstack([shape] * 4))
    for view, listed in ((None, r"dog\.A, hero\.A"), ("left", r"dog\.A, hero\.A"),
                         ("right", r"dog\.right\.A, hero\.right\.A")):
        with pytest.raises(InputError, match=rf"roto {path} holds the views left, right, and its view "
                                             rf"'{view or 'left'}' holds several alphas \({listed}\) and no plain A: "
                                             r"cannot tell which object it draws; name the object after its layer "
                                             r"\(dog, hero: an object reads its own\), or write the one to use as its "
                                             r"own file"):
            roto_layer_of(path, None, view)
    assert roto_layer_of(path, "dog", "right") == "dog.right.A"
    one = _stereo_roto(tmp_path / "one.exr", ("hero.A", "hero.right.A"), np.dstack([shape] * 2))
    assert roto_layer_of(one, None, "right") == "hero.right.A"
    assert roto_layer_of(one, None, "left") == "hero.A"


def test_a_stereo_roto_whose_channels_read_two_ways_in_a_view_is_refused(tmp_path):
    """A and left.A are both the view 'left''s alpha (OpenEXR reads left.A as the view's A): the unnamed object read
    left.A, one of the two, without a word (review). Refused, naming the channels."""
    from vom_plugin.io import roto_layer_of

    shape = _disc()
    path = _stereo_roto(tmp_path / "s.exr", ("A", "left.A", "right.A", "left.right.A"), np.dstack([shape] * 4))
    for name in (None, "left"):
        with pytest.raises(InputError, match=rf"roto {path} holds the views left, right, and its channels A, left\.A "
                                             r"both read as the channel A of its view 'left': cannot tell which to "
                                             r"read; write it once"):
            roto_layer_of(path, name, "left")
    assert roto_layer_of(path, None, "right") == "right.A"  # the view 'right' is read one way
    assert roto_layer_of(path, "left", "right") == "left.right.A"


def test_the_views_of_a_renders_stereo_rotos_are_said_once(tmp_path):
    """Each keyframe's stereo roto added a note of its own saying the same (review): one note for the render's rotos,
    naming each and the channel read."""
    from vom_plugin.io import roto_layer_of
    from vom_plugin.io.roto import views_notes

    left, right = _disc(cx=10), _disc(cx=22)
    a = _stereo_roto(tmp_path / "a.exr", ("A", "right.A"), np.dstack([left, right]))
    b = _stereo_roto(tmp_path / "b.exr", ("A", "right.A"), np.dstack([left, right]))
    c = _stereo_roto(tmp_path / "c.exr", ("A", "hero.A", "right.A", "hero.right.A"), np.dstack([left, left, right,
                                                                                                  right]))
    reads: list = []
    for path, name in ((a, None), (b, None), (a, None)):
        assert roto_layer_of(path, name, "right", reads=reads) == "right.A"
    assert views_notes(reads) == [f"rotos {a}, {b} hold the views left, right: vom reads their view 'right', the view "
                                  f"of the plate it mattes (channel right.A)"]
    assert roto_layer_of(c, "hero", "right", reads=reads) == "hero.right.A"
    assert views_notes(reads) == [f"rotos {a}, {b}, {c} hold the views left, right: vom reads their view 'right', the "
                                  f"view of the plate it mattes ({a}: channel right.A; {b}: channel right.A; {c}: "
                                  f"channel hero.right.A)"]
