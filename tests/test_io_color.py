"""Plate colour -> network input (vom_plugin.io.to_network / linear_to_network)."""

from __future__ import annotations

import numpy as np
import pytest

from vom_plugin.errors import InputError
from vom_plugin.io import compress_highlights, linear_to_network, to_network


def _srgb(x):
    x = np.asarray(x, np.float64)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _grey(values):
    return np.repeat(np.asarray(values, np.float32)[None, :, None], 3, axis=2)  # (1, N, 3)


def test_lin_rec709_below_the_knee_is_plain_srgb():
    values = [0.0, 0.001, 0.0031308, 0.18, 0.5, 0.79]
    out = to_network(_grey(values), "lin_rec709")
    assert out.dtype == np.float32 and out.shape == (1, 6, 3)
    np.testing.assert_allclose(out[0, :, 0], _srgb(values), atol=2e-4)


def test_highlights_are_compressed_smoothly_below_one():
    values = np.array([0.8, 0.9, 1.0, 2.0, 8.0, 50.0, 1e4], np.float32)
    out = to_network(_grey(values), "lin_rec709")[0, :, 0]
    assert (np.diff(out) > 0).all()  # still ordered: a specular of 50 is not the same as one of 2
    assert out.max() <= 1.0 and out[2] < 1.0
    # Continuous slope at the knee: the compressed curve's derivative there is 1.
    knee = np.array([0.8, 0.8 + 1e-3], np.float32)
    slope = np.diff(compress_highlights(knee.copy())) / 1e-3
    assert slope[0] == pytest.approx(1.0, abs=1e-2)


def test_nan_inf_and_negatives_become_zero_and_input_is_untouched():
    rgb = _grey([0.18, 0.18, 0.18, 0.18])
    rgb[0, 0] = [np.nan, np.inf, -np.inf]
    rgb[0, 1, 0] = -1.0
    before = rgb.copy()
    out = to_network(rgb, "ACEScg")
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])
    assert out[0, 1, 0] == 0
    np.testing.assert_array_equal(rgb[0, 1:], before[0, 1:])  # caller's array not modified


def test_acescg_is_converted_to_rec709_gamut():
    # Neutral greys stay neutral (same white after adaptation); pure AP1 green is out of the Rec.709 gamut:
    # after the matrix its red and blue go negative and are clamped.
    grey = to_network(_grey([0.18]), "ACEScg")[0, 0]
    assert np.ptp(grey) < 2e-3 and grey[0] == pytest.approx(_srgb(0.18), abs=2e-3)
    green = to_network(np.array([[[0.0, 0.5, 0.0]]], np.float32), "ACEScg")[0, 0]
    assert green[1] > 0.7 and green[0] == 0 and green[2] == 0
    # And differs from treating the same numbers as Rec.709.
    colour = np.array([[[0.6, 0.3, 0.1]]], np.float32)
    assert np.abs(to_network(colour, "ACEScg") - to_network(colour, "lin_rec709")).max() > 0.02


def test_raw_passes_through_clipped_and_srgb_is_brought_up_as_its_linear_self():
    rgb = np.array([[[0.25, 0.5, 1.5], [-0.1, np.nan, 0.75]]], np.float32)
    for space, gain in (("raw", 1.0), ("raw", 3.0), ("sRGB", 1.0)):  # as they are, clipped
        np.testing.assert_allclose(to_network(rgb, space, gain=gain), [[[0.25, 0.5, 1.0], [0.0, 0.0, 0.75]]])
    # sRGB brought up: clipped, decoded, then the linear path at that gain (its highlight shoulder included)
    linear = np.array([[[_srgb_inverse(0.25), _srgb_inverse(0.5), 1.0], [0.0, 0.0, _srgb_inverse(0.75)]]], np.float32)
    np.testing.assert_allclose(to_network(rgb, "sRGB", gain=1.5), to_network(linear, "lin_rec709", gain=1.5),
                               atol=2e-4)
    assert 0.25 < to_network(rgb, "sRGB", gain=1.5)[0, 0, 0] < 0.5


def _srgb_inverse(v: float) -> float:
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def test_unknown_colorspace_is_an_input_error():
    with pytest.raises(InputError,
                       match=r"colorspace 'Rec709': expected one of ACEScg, lin_rec709, sRGB, raw, ACES2065-1"):
        to_network(_grey([0.1]), "Rec709")


def test_linear_to_network_is_the_same_transform_for_training_batches():
    rng = np.random.default_rng(0)
    clip = (rng.random((3, 8, 8, 3)) * 3).astype(np.float32)  # [T, H, W, 3] linear composites
    batch = linear_to_network(clip)
    assert batch.shape == clip.shape
    for t in range(3):
        np.testing.assert_allclose(batch[t], to_network(clip[t], "lin_rec709"), atol=1e-6)


def test_fast_path_matches_ocio_applied_directly():
    # to_network tabulates the curve and extracts the gamut matrix; compare with OCIO run on every pixel.
    import PyOpenColorIO as ocio

    from vom_plugin.io.color import CONFIG_URI

    config = ocio.Config.CreateFromFile(CONFIG_URI)
    rng = np.random.default_rng(1)
    rgb = (rng.random((32, 32, 3)) ** 3 * 6).astype(np.float32)  # mostly shadows, some highlights up to 6
    reference = rgb.copy()
    config.getProcessor("ACEScg", "lin_rec709").getDefaultCPUProcessor().applyRGB(reference.reshape(-1, 3))
    compress_highlights(reference)
    config.getProcessor("lin_rec709", "srgb_tx").getDefaultCPUProcessor().applyRGB(reference.reshape(-1, 3))
    np.testing.assert_allclose(to_network(rgb, "ACEScg"), np.clip(reference, 0, 1), atol=5e-4)


def test_curve_table_is_each_value_encoded_alone():
    # The table is built three entries per OCIO pixel from the positive half only; every entry must be what
    # OCIO gives that value alone (R = G = B), negatives, NaN patterns and huge values included.
    import PyOpenColorIO as ocio

    from vom_plugin.io.color import _DROP_BITS, CONFIG_URI, _curve_table

    table = _curve_table()
    assert table.shape == (1 << (32 - _DROP_BITS),) and table.dtype == np.float32
    rng = np.random.default_rng(2)
    index = np.concatenate([rng.integers(0, table.size, 20000), [0, 1, table.size // 2 - 1, table.size // 2,
                                                                 table.size - 1]]).astype(np.uint32)
    with np.errstate(invalid="ignore"):
        values = (index << np.uint32(_DROP_BITS)).view(np.float32).astype(np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=np.finfo(np.float32).max, neginf=0.0)
    reference = compress_highlights(values).astype(np.float32)[:, None].repeat(3, axis=1)
    processor = ocio.Config.CreateFromFile(CONFIG_URI).getProcessor("lin_rec709", "srgb_tx")
    processor.getDefaultCPUProcessor().applyRGB(reference)
    np.testing.assert_array_equal(table[index], np.clip(reference[:, 0], 0, 1))
    assert table[table.size // 2:].max() == table[0] == 0.0  # every negative value encodes as black


def test_a_plates_declared_colour_space_is_heard():
    """An sRGB PNG or a log DPX was read as linear ACEScg (the default) without a word."""
    from vom_plugin.errors import InputError
    from vom_plugin.io import plate_colour_note

    png = {"oiio:ColorSpace": "srgb_rec709_scene"}
    note = plate_colour_note(png, "uint8", "ACEScg", "p.0001.png")
    assert "says its colour space is 'srgb_rec709_scene' (sRGB) and is read as ACEScg" in note
    assert plate_colour_note(png, "uint8", "sRGB", "p.0001.png") is None
    # raw takes the code values as they are, sRGB brings a dark shot up: no longer the same reading (QA)
    assert "(sRGB) and is read as raw (the colorspace setting); if it is sRGB, set colorspace sRGB" in \
        plate_colour_note(png, "uint8", "raw", "p.0001.png")
    assert "holds 16-bit integers" in plate_colour_note({}, "uint16", "lin_rec709", "p.0001.tif")
    # a 10-bit DPX is read as uint16 (QA: it was said to hold 16-bit integers)
    assert "holds 10-bit integers" in plate_colour_note({"oiio:BitsPerSample": 10}, "uint16", "ACEScg", "p.0001.dpx")
    exr = {"colorInteropID": "lin_ap1_scene"}
    assert "(ACEScg) and is read as lin_rec709" in plate_colour_note(exr, "half", "lin_rec709", "p.0001.exr")
    assert plate_colour_note(exr, "half", "ACEScg", "p.0001.exr") is None
    assert plate_colour_note({}, "half", "ACEScg", "p.0001.exr") is None  # an untagged EXR: as set
    with pytest.raises(InputError, match=r"plate p.0001.dpx is log-encoded \(dpx:Transfer Logarithmic\)"):
        plate_colour_note({"dpx:Transfer": "Logarithmic"}, "uint16", "ACEScg", "p.0001.dpx")
    # Nuke's log DPX says "Printing density"; read as raw, a log plate's code values are what the user asked for
    with pytest.raises(InputError, match="log-encoded"):
        plate_colour_note({"dpx:Transfer": "Printing density"}, "uint16", "lin_rec709", "p.0001.dpx")
    assert "read as raw, its code values" in plate_colour_note({"dpx:Transfer": "Logarithmic"}, "uint16", "raw", "x")
    # read as sRGB a log plate is an sRGB picture, brought up where dark, not taken as it is (QA: said "as they are")
    note = plate_colour_note({"dpx:Transfer": "Printing density"}, "uint16", "sRGB", "x")
    assert "read as sRGB, its code values as an sRGB picture's (decoded with sRGB's curve and brought up where the " \
           "shot is dark)" in note and "set colorspace raw" in note
    assert "as they are" not in note.split("raw", 1)[0]
    # a linear DPX: OpenImageIO names it lin_rec709_scene from its transfer alone, which says nothing of primaries
    linear_dpx = {"dpx:Transfer": "Linear", "oiio:ColorSpace": "lin_rec709_scene"}
    assert plate_colour_note(linear_dpx, "uint16", "ACEScg", "p.0001.dpx") is None
    # read as sRGB it was said nothing of, where a float EXR and a log DPX read so are warned of (QA)
    note = plate_colour_note(linear_dpx, "uint16", "sRGB", "p.0001.dpx")
    assert note == ("plate p.0001.dpx says its transfer is linear (dpx:Transfer Linear) and is read as sRGB code "
                    "values (the colorspace setting): decoded with sRGB's curve where the shot is dark; set colorspace "
                    "lin_rec709 or ACEScg if it is linear")
    assert plate_colour_note({"dpx:Transfer": "Linear"}, "uint16", "sRGB", "p.0001.dpx") == note
    assert plate_colour_note(linear_dpx, "uint16", "raw", "p.0001.dpx") is None  # its code values, as asked
    with pytest.raises(InputError, match="log-encoded \\(colour space 'ACEScct'\\)"):
        plate_colour_note({"colorInteropID": "ACEScct"}, "half", "ACEScg", "p.0001.exr")


def test_aces2065_1_plates_are_read_through_ocio_and_said_by_their_headers():
    """An ACES container (AP0, the archival delivery) could not be named: read as ACEScg it came out in other colours
    without a word (QA). ACES2065-1 is a setting, converted by OCIO's own AP0 -> Rec.709 matrix, and re-exposed as
    the other linear spaces are."""
    import PyOpenColorIO as ocio

    from vom_plugin.io import plate_colour_note
    from vom_plugin.io.color import CONFIG_URI, exposure_gain

    rng = np.random.default_rng(3)
    rgb = (rng.random((16, 16, 3)) ** 2 * 0.6).astype(np.float32)
    reference = rgb.copy()
    config = ocio.Config.CreateFromFile(CONFIG_URI)
    config.getProcessor("ACES2065-1", "lin_rec709").getDefaultCPUProcessor().applyRGB(reference.reshape(-1, 3))
    np.testing.assert_allclose(to_network(rgb, "ACES2065-1"), to_network(np.maximum(reference, 0), "lin_rec709"),
                               atol=1e-3)
    assert np.abs(to_network(rgb, "ACES2065-1") - to_network(rgb, "ACEScg")).max() > 0.02
    assert exposure_gain(rgb * 4, "ACES2065-1") == pytest.approx(exposure_gain(rgb, "ACES2065-1") / 4, rel=1e-3)
    container = {"acesImageContainerFlag": 1, "oiio:ColorSpace": "lin_ap0_scene"}  # as OpenImageIO reads one
    assert "'lin_ap0_scene' (ACES2065-1) and is read as ACEScg" in plate_colour_note(container, "half", "ACEScg", "p")
    assert plate_colour_note(container, "half", "ACES2065-1", "p") is None


def test_an_exr_naming_no_colour_space_is_heard_by_its_chromaticities():
    """An EXR with Rec.709 primaries and no colorInteropID was read as the default ACEScg without a word (QA)."""
    from vom_plugin.io import plate_colour_note
    from vom_plugin.io.color import declared_colour

    rec709 = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
    ap1 = (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)
    ap0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)
    note = plate_colour_note({"chromaticities": rec709}, "half", "ACEScg", "p.exr")
    assert "plate p.exr has the chromaticities of Rec.709 (lin_rec709) and is read as ACEScg" in note
    assert plate_colour_note({"chromaticities": rec709}, "half", "lin_rec709", "p.exr") is None
    assert plate_colour_note({"chromaticities": ap1}, "half", "ACEScg", "p.exr") is None
    assert "has the chromaticities of ACES AP0 (ACES2065-1)" in plate_colour_note({"chromaticities": ap0}, "float",
                                                                                  "ACEScg", "p.exr")
    # a name in the header is what it says; primaries of no space vom names say nothing
    assert declared_colour({"colorInteropID": "lin_ap1_scene", "chromaticities": rec709})[0] == "lin_ap1_scene"
    assert declared_colour({"chromaticities": (0.68, 0.32, 0.265, 0.69, 0.15, 0.06, 0.314, 0.351)}) == ("", "")
    assert declared_colour({"chromaticities": "garbled"}) == ("", "")
    # Rec.2020 and P3-D65, which vom does not convert, are named and said (QA: read as ACEScg without a word)
    rec2020 = (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.329)
    note = plate_colour_note({"chromaticities": rec2020}, "float", "ACEScg", "p.exr")
    assert "plate p.exr has the chromaticities of Rec.2020, which vom does not convert, and is read as ACEScg" in note
    assert "has the chromaticities of P3-D65, which vom does not convert" in plate_colour_note(
        {"chromaticities": (0.68, 0.32, 0.265, 0.69, 0.15, 0.06, 0.3127, 0.329)}, "half", "lin_rec709", "p.exr")


def test_a_plate_in_a_colour_space_vom_does_not_convert_is_said_and_hdr_encodings_are_refused():
    """QA: a plate whose header named a space vom does not know (lin_rec2020_scene, g22_rec709_scene, Non-Color) was
    read as the setting without a word, and PQ and HLG, as far from linear as log, were read as scene-linear."""
    from vom_plugin.errors import InputError
    from vom_plugin.io import plate_colour_note

    for name in ("lin_rec2020_scene", "Linear P3-D65", "g24_rec709_display", "lin_arri_wide_gamut_4"):
        note = plate_colour_note({"colorInteropID": name}, "half", "ACEScg", "p.exr")
        assert f"says its colour space is {name!r}, which vom does not convert, and is read as ACEScg" in note, name
    for name in ("scene_linear", "reference"):  # a role: which space depends on the config; says nothing
        assert plate_colour_note({"colorInteropID": name}, "half", "ACEScg", "p.exr") is None
    assert "data, not a picture; read as lin_rec709" in plate_colour_note({"oiio:ColorSpace": "Non-Color"}, "half",
                                                                           "lin_rec709", "p.exr")
    assert plate_colour_note({"oiio:ColorSpace": "Non-Color"}, "half", "raw", "p.exr") is None
    # OCIO's sRGB display encoding is vom's sRGB (the same curve and primaries)
    assert plate_colour_note({"colorInteropID": "srgb_rec709_display"}, "uint8", "sRGB", "p.png") is None
    assert "(sRGB) and is read as ACEScg" in plate_colour_note({"colorInteropID": "srgb_rec709_display"}, "uint8",
                                                               "ACEScg", "p.png")
    # other spellings of vom's spaces are those spaces (review), and a gamma 2.2 texture (a PNG's gAMA) is read as
    # sRGB without a word: no setting is nearer
    for name, vom in (("Linear sRGB", "lin_rec709"), ("sRGB Linear", "lin_rec709"), ("Linear BT.709", "lin_rec709"),
                      ("Linear AP1", "ACEScg"), ("ACEScg (AP1)", "ACEScg"), ("g22_rec709_scene", "sRGB")):
        assert plate_colour_note({"colorInteropID": name}, "half", vom, "p.exr") is None, name
        assert f"({vom}) and is read as raw" in plate_colour_note({"colorInteropID": name}, "half",
                                                                                   "raw", "p.exr"), name
    # log encodings whose names hold no "log" (QA: warned of, then matted as scene-linear)
    for name in ("DaVinci Intermediate", "BMDFilm WideGamut Gen5", "ACESproxy", "Protune Flat", "ADX10",
                 "davinci_intermediate_davinciwg"):
        with pytest.raises(InputError, match=r"is log-encoded"):
            plate_colour_note({"colorInteropID": name}, "half", "ACEScg", "p.exr")
    for name in ("pq_rec2020_display", "hlg_rec2020_display", "Rec.2100-PQ - Display", "ST2084-P3-D65",
                 "SMPTE ST 2084"):
        with pytest.raises(InputError, match=r"is encoded for an HDR display \(PQ or HLG\)"):
            plate_colour_note({"colorInteropID": name}, "half", "ACEScg", "p.exr")
        assert "its code values as they are" in plate_colour_note({"colorInteropID": name}, "half", "raw", "p.exr")


def test_more_log_names_aliases_and_floats_read_as_srgb_are_heard():
    """QA, every space of OCIO's built-in configs run through the note: DaVinci Intermediate by its interop ID and
    RED's Log3G10 by its alias were matted as scene-linear; the ACES configs' aliases aces (ACES2065-1) and none
    (data) were a space vom does not convert; and float EXR plates read as sRGB (values above 1 clipped) said
    nothing, where integers read as linear are warned of."""
    from vom_plugin.errors import InputError
    from vom_plugin.io import plate_colour_note

    for name in ("ocio:davinci_dwg_scene", "davinci_dwg_scene", "rl3g10_rwg", "Log3G10 REDWideGamutRGB"):
        with pytest.raises(InputError, match=r"is log-encoded"):
            plate_colour_note({"colorInteropID": name}, "half", "ACEScg", "p.exr")
    assert plate_colour_note({"oiio:ColorSpace": "aces"}, "half", "ACES2065-1", "p.exr") is None
    assert "(ACES2065-1) and is read as ACEScg" in plate_colour_note({"oiio:ColorSpace": "aces"}, "half", "ACEScg",
                                                                      "p.exr")
    assert plate_colour_note({"oiio:ColorSpace": "none"}, "half", "raw", "p.exr") is None
    for kind, said in (("half", "half-float"), ("float", "32-bit float")):
        note = plate_colour_note({}, kind, "sRGB", "p.exr")
        assert note == (f"plate p.exr holds {said} values, scene-linear as a rule, and is read as sRGB code values "
                        "(the colorspace setting), values above 1 clipped; set colorspace lin_rec709 or ACEScg if it "
                        "is linear")
    assert plate_colour_note({"colorInteropID": "srgb_rec709_scene"}, "half", "sRGB", "p.exr") is None  # said so
    assert plate_colour_note({}, "uint8", "sRGB", "p.png") is None


def test_an_rgba_outputs_tag_is_the_plates_space_never_a_contradicting_one():
    """QA: a plate naming its space in words vom reads ('sRGB - Linear') went out tagged as the setting
    (lin_ap1_scene over Rec.709 values), and one naming a space vom does not read (P3, a log read as raw or sRGB) was
    tagged as the setting too: the tag the plate's own name means, or none."""
    from vom_plugin.io.exr_out import rgb_colour_id

    assert rgb_colour_id({"oiio:ColorSpace": "sRGB - Linear"}, "ACEScg") == "lin_rec709_scene"
    assert rgb_colour_id({"oiio:ColorSpace": "ACES - ACEScg"}, "lin_rec709") == "lin_ap1_scene"
    assert rgb_colour_id({"oiio:ColorSpace": "Linear P3-D65"}, "ACEScg") is None
    assert rgb_colour_id({"oiio:ColorSpace": "Linear P3-D65", "chromaticities": (0.68,) * 8}, "ACEScg") is None
    assert rgb_colour_id({"oiio:ColorSpace": "ARRI LogC3 (EI800)"}, "sRGB") is None
    # as before: the plate's interop ID, the setting's where the plate says nothing (or names a role), a DPX's transfer
    assert rgb_colour_id({"colorInteropID": "lin_rec709_scene"}, "ACEScg") == "lin_rec709_scene"
    assert rgb_colour_id({}, "sRGB") == "srgb_rec709_scene"
    assert rgb_colour_id({"oiio:ColorSpace": "scene_linear"}, "ACEScg") == "lin_ap1_scene"
    assert rgb_colour_id({"oiio:ColorSpace": "KodakLog", "dpx:Transfer": "Logarithmic"}, "raw") is None
    # a DPX whose transfer contradicts the setting: no tag (QA: a linear or log DPX read as sRGB went out sRGB)
    assert rgb_colour_id({"oiio:ColorSpace": "lin_rec709_scene", "dpx:Transfer": "Linear"}, "sRGB") is None
    assert rgb_colour_id({"oiio:ColorSpace": "KodakLog", "dpx:Transfer": "Logarithmic"}, "sRGB") is None
    assert rgb_colour_id({"dpx:Transfer": "Linear"}, "lin_rec709") == "lin_rec709_scene"
    assert rgb_colour_id({"dpx:Transfer": "User defined"}, "sRGB") == "srgb_rec709_scene"


def test_the_network_sees_a_plate_at_one_exposure_whatever_its_exposure():
    """A plate 5 stops under was matted worse (validation shots at 3% of their exposure: score 22.75 against 17.10;
    a speck in a dark plate's corner) and a normal one better at a lower exposure (session 36): the network sees
    each shot scaled so that the 99th percentile of one frame's luminance is EXPOSURE_P99."""
    from vom_plugin.io.color import EXPOSURE_P99, _apply, _processor, exposure_gain

    rng = np.random.default_rng(3)
    plate = (rng.random((60, 80, 3)) ** 2 * 1.5).astype(np.float32)
    lum = plate @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    gain = exposure_gain(plate, "lin_rec709")
    assert gain == pytest.approx(EXPOSURE_P99 / np.percentile(lum[::2, ::2], 99), rel=1e-5)
    for k in (0.03, 0.5, 4.0):  # any exposure: the same network input
        dark = plate * np.float32(k)
        assert exposure_gain(dark, "lin_rec709") == pytest.approx(gain / k, rel=1e-4)
        np.testing.assert_allclose(to_network(dark, "lin_rec709", gain=exposure_gain(dark, "lin_rec709")),
                                   to_network(plate, "lin_rec709", gain=gain), atol=2e-3)
    assert exposure_gain(plate, "ACEScg") > 0
    # raw is taken as it is; a dark sRGB picture is decoded and brought up as its linear self (it was fed as it was:
    # QA), a bright one is taken as it is (brought down, its clipped highlights turned grey: model card, session 47);
    # a black frame or a blown-out one is bounded
    assert exposure_gain(plate, "raw") == 1.0
    for k, lifted in ((0.05, True), (1.0, False)):
        shown = np.clip(plate * np.float32(k), 0, 1)
        coded = shown.copy()
        _apply(_processor("lin_rec709", "srgb_tx"), coded)
        linear_gain = exposure_gain(shown, "lin_rec709")
        assert (linear_gain > 1) == lifted
        assert exposure_gain(coded, "sRGB") == (pytest.approx(linear_gain, rel=1e-3) if lifted else 1.0)
        if lifted:
            np.testing.assert_allclose(to_network(coded, "sRGB", gain=exposure_gain(coded, "sRGB")),
                                       to_network(shown, "lin_rec709", gain=linear_gain), atol=2e-3)
        else:
            np.testing.assert_array_equal(to_network(coded, "sRGB", gain=exposure_gain(coded, "sRGB")),
                                          np.clip(coded, 0, 1))
        np.testing.assert_array_equal(to_network(coded, "raw", gain=linear_gain), np.clip(coded, 0, 1))
    assert exposure_gain(np.zeros((8, 8, 3), np.float32), "lin_rec709") == 64.0
    assert exposure_gain(np.full((8, 8, 3), 1e4, np.float32), "lin_rec709") == pytest.approx(EXPOSURE_P99 / 1e4)
    assert exposure_gain(np.full((8, 8, 3), 1e9, np.float32), "lin_rec709") == 2.0 ** -20
    np.testing.assert_array_equal(to_network(plate, "lin_rec709"), to_network(plate, "lin_rec709", gain=1.0))
