"""Random scene descriptions for path-traced training clips: seed -> a JSON-able dict, nothing else.

The dict is everything ``blender_scene.py`` needs to build and render one clip, so a clip is reproducible
from its seed (same Blender version) and its content can be read, counted and tested without Blender.
Units are Blender units; the target sits near the origin, about one unit across, the camera looks at it.

Target kinds (what matting has to learn from them):
  fur      a body with particle hair: strands of varying length, density and thickness, soft fringes
  tuft     hair without its emitter: a wisp, a tuft of grass, nearly all partial alpha
  rigid    a primitive shaped by modifiers (bevel, array, screw, displace): hard edges, gaps
  deform   a body bent, twisted and waved over time: non-rigid silhouettes
  glass    transmissive objects: alpha from transmission, with reflections in the colour
  wires    thin structure: poles, hanging cables, wireframe cages and fences, 1-3 px wide
  cloth    a waving sheet with cut-out holes and translucency
  leaves   a branch of leaves: alpha-textured outlines, holes, translucency
Any kind may get fast motion with true motion blur, depth of field, attached thin parts and an occluder
that passes between the camera and the target (rendered as a holdout, so the target's alpha stays exact).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SPEC_VERSION = 1
KINDS = ("fur", "tuft", "rigid", "deform", "glass", "wires", "cloth", "leaves")
KIND_WEIGHTS = (0.22, 0.08, 0.12, 0.12, 0.1, 0.14, 0.1, 0.12)
PRIMITIVES = ("sphere", "cube", "cylinder", "cone", "torus", "icosphere")


def _r(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _colour(rng: np.random.Generator, lo: float = 0.03, hi: float = 0.85) -> list[float]:
    """A linear albedo: a random hue, saturation and value (values stay physically plausible, < 0.9)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(_r(rng, 0, 1), _r(rng, 0, 0.9) ** 1.5, _r(rng, 0.1, 1.0))
    return [lo + (hi - lo) * c ** 2.2 for c in (r, g, b)]


def _texture(rng: np.random.Generator, photos: int) -> dict[str, Any]:
    """A colour source: a photograph (index into the photo list), a procedural pattern, or flat."""
    u = rng.random()
    if photos and u < 0.35:
        return {"type": "photo", "index": int(rng.integers(photos)), "scale": _r(rng, 0.5, 3.0)}
    if u < 0.85:
        return {"type": str(rng.choice(["noise", "voronoi", "wave", "checker", "magic"])),
                "scale": _r(rng, 1.5, 25.0), "detail": _r(rng, 0, 8), "a": _colour(rng), "b": _colour(rng)}
    return {"type": "flat", "a": _colour(rng)}


def _material(rng: np.random.Generator, photos: int, kind: str = "surface") -> dict[str, Any]:
    m: dict[str, Any] = {"kind": kind, "texture": _texture(rng, photos), "roughness": _r(rng, 0.15, 0.95),
                         "metallic": float(rng.random() < 0.12), "specular": _r(rng, 0.2, 0.7)}
    if kind == "glass":
        m.update(ior=_r(rng, 1.3, 1.6), roughness=_r(rng, 0.0, 0.25) ** 2, tint=[_r(rng, 0.7, 1.0) for _ in range(3)],
                 frosted=bool(rng.random() < 0.2))
    if kind in ("cloth", "leaf"):
        m["translucency"] = _r(rng, 0.1, 0.7)
        m["holes"] = {"type": str(rng.choice(["voronoi", "noise", "lace"])), "scale": _r(rng, 2, 14),
                      "threshold": _r(rng, 0.1, 0.45)} if rng.random() < 0.75 else None
    return m


def _hair(rng: np.random.Generator, tuft: bool) -> dict[str, Any]:
    length = _r(rng, 0.03, 0.1) + _r(rng, 0, 0.3) ** 2 * 3 if not tuft else _r(rng, 0.35, 0.8)
    return {
        # Strands cost most of a fur clip's render time: parents x children stays <= 6000.
        "count": int(rng.integers(150, 1000) if not tuft else rng.integers(40, 300)),
        "children": int(rng.choice([0, 2, 4, 6])),
        "length": length,
        # Strand radius in scene units (the object is ~1 unit, ~200 px across): ~0.2-3 px wide strands.
        "radius": _r(rng, 0.0015, 0.012),
        "tip": _r(rng, 0.0, 0.6),
        "random_length": _r(rng, 0.0, 0.8),
        "clump": _r(rng, -0.3, 0.8) if rng.random() < 0.5 else 0.0,
        "kink": str(rng.choice(["NO", "NO", "CURL", "WAVE", "BRAID"])),
        "kink_amp": _r(rng, 0.01, 0.15),
        "roughness": _r(rng, 0.0, 0.12),
        "gravity": _r(rng, -0.5, 0.5),
        "melanin": _r(rng, 0.0, 1.0),
        "redness": _r(rng, 0.0, 1.0),
        "tint": _colour(rng, 0.3, 1.0),
        "seed": int(rng.integers(0, 10 ** 6)),
    }


def _modifiers(rng: np.random.Generator, kind: str) -> list[dict[str, Any]]:
    mods: list[dict[str, Any]] = []
    if kind == "rigid":
        if rng.random() < 0.5:
            mods.append({"type": "BEVEL", "width": _r(rng, 0.01, 0.08), "segments": int(rng.integers(1, 4))})
        if rng.random() < 0.3:
            mods.append({"type": "ARRAY", "count": int(rng.integers(2, 5)), "offset": _r(rng, 1.1, 1.8),
                         "axis": int(rng.integers(0, 3))})
        if rng.random() < 0.3:
            mods.append({"type": "DISPLACE", "strength": _r(rng, 0.05, 0.3), "scale": _r(rng, 0.2, 1.0)})
        if rng.random() < 0.2:
            mods.append({"type": "SOLIDIFY_HOLES", "thickness": _r(rng, 0.02, 0.08)})
    elif kind in ("deform", "fur"):
        mods.append({"type": "SUBSURF", "levels": 2})
        if kind == "deform" or rng.random() < 0.4:
            if rng.random() < 0.6:
                mods.append({"type": "SIMPLE_DEFORM", "method": str(rng.choice(["TWIST", "BEND", "TAPER"])),
                             "angle0": _r(rng, -1.0, 1.0), "angle1": _r(rng, -2.0, 2.0),
                             "axis": str(rng.choice(["X", "Y", "Z"]))})
            if rng.random() < 0.6:
                mods.append({"type": "WAVE", "height": _r(rng, 0.05, 0.25), "width": _r(rng, 0.3, 1.2),
                             "speed": _r(rng, 0.05, 0.4)})
            if rng.random() < 0.5:
                mods.append({"type": "DISPLACE_ANIM", "strength": _r(rng, 0.1, 0.4), "scale": _r(rng, 0.3, 1.5),
                             "drift": [_r(rng, -0.15, 0.15) for _ in range(3)]})
    return mods


def _part(rng: np.random.Generator, kind: str, photos: int) -> dict[str, Any]:
    """One part of the target: geometry + material (+ hair)."""
    p: dict[str, Any] = {"kind": kind, "scale": [_r(rng, 0.6, 1.2) for _ in range(3)]}
    if kind in ("fur", "tuft", "rigid", "deform", "glass"):
        p["primitive"] = str(rng.choice(PRIMITIVES))
        p["modifiers"] = _modifiers(rng, kind)
        p["material"] = _material(rng, photos, "glass" if kind == "glass" else "surface")
    if kind in ("fur", "tuft"):
        p["hair"] = _hair(rng, kind == "tuft")
        p["show_emitter"] = kind == "fur"
        p["scale"] = [s * 0.7 for s in p["scale"]]
    elif kind == "glass":
        p["count"] = int(rng.integers(1, 3))
    elif kind == "wires":
        p["style"] = str(rng.choice(["poles", "cables", "cage", "fence"]))
        p["count"] = int(rng.integers(2, 9))
        p["radius"] = _r(rng, 0.003, 0.03)
        p["material"] = _material(rng, photos)
        p["subdiv"] = int(rng.integers(1, 5))
    elif kind == "cloth":
        p["material"] = _material(rng, photos, "cloth")
        p["wave"] = {"height": _r(rng, 0.05, 0.3), "width": _r(rng, 0.4, 1.5), "speed": _r(rng, 0.05, 0.3)}
        p["bend"] = _r(rng, -1.2, 1.2)
    elif kind == "leaves":
        p["count"] = int(rng.integers(4, 24))
        p["leaf_size"] = _r(rng, 0.15, 0.45)
        p["leaf_aspect"] = _r(rng, 0.25, 0.9)
        p["material"] = _material(rng, photos, "leaf")
        p["stem_material"] = _material(rng, photos)
        p["flutter"] = _r(rng, 0.0, 0.5)
    return p


def _light(rng: np.random.Generator, photos: int) -> dict[str, Any]:
    u = rng.random()
    if u < 0.45:
        return {"type": "sky", "sun_elevation": _r(rng, 0.05, 1.4), "sun_rotation": _r(rng, 0, 2 * math.pi),
                "altitude": _r(rng, 0, 2000), "air": _r(rng, 0.2, 3.0), "dust": _r(rng, 0.0, 4.0),
                "ozone": _r(rng, 0.5, 2.0), "strength": _r(rng, 0.05, 0.4)}
    if u < 0.8 or not photos:
        return {"type": "area", "world": [_r(rng, 0.01, 0.3) * c for c in _colour(rng, 0.3, 1.0)],
                "lights": [{"energy": _r(rng, 50, 800), "size": _r(rng, 0.5, 4.0), "colour": _colour(rng, 0.4, 1.0),
                            "azimuth": _r(rng, 0, 2 * math.pi), "elevation": _r(rng, -0.4, 1.3),
                            "distance": _r(rng, 2.5, 6.0)} for _ in range(int(rng.integers(1, 4)))]}
    # A photograph wrapped around the scene as its environment: its light only (the film is transparent).
    return {"type": "photo_env", "index": int(rng.integers(photos)), "strength": _r(rng, 0.3, 2.0),
            "rotation": _r(rng, 0, 2 * math.pi)}


def _motion(rng: np.random.Generator, frames: int, fast: bool) -> dict[str, Any]:
    """Keyframes of the target: positions in view-plane units (1 ~ frame half-width) and rotations."""
    speed = _r(rng, 0.08, 0.35) if fast else _r(rng, 0.0, 0.05)  # per frame, view units
    ang = _r(rng, 0, 2 * math.pi)
    start = [_r(rng, -0.2, 0.2), _r(rng, -0.2, 0.2)]
    span = speed * (frames - 1)
    # Fast objects start off-centre so they cross the frame rather than leave it.
    start = [start[0] - 0.5 * span * math.cos(ang), start[1] - 0.5 * span * math.sin(ang)]
    end = [start[0] + span * math.cos(ang), start[1] + span * math.sin(ang)]
    mid = [(a + b) / 2 + _r(rng, -0.1, 0.1) for a, b in zip(start, end, strict=True)]
    spin = _r(rng, 0.1, 1.2) if fast and rng.random() < 0.6 else _r(rng, 0.0, 0.15)
    return {"path": [start, mid, end], "depth": [_r(rng, -0.3, 0.3) for _ in range(3)],
            "rot0": [_r(rng, 0, 2 * math.pi) for _ in range(3)],
            "spin": [spin * _r(rng, -1, 1) for _ in range(3)]}


def _occluder(rng: np.random.Generator, frames: int, photos: int) -> dict[str, Any]:
    side = float(rng.choice([-1.0, 1.0]))
    vertical = bool(rng.random() < 0.5)
    return {"shape": str(rng.choice(["pole", "box", "sphere", "plank"])), "material": _material(rng, photos),
            "vertical": vertical, "from": side * _r(rng, 0.9, 1.4), "to": -side * _r(rng, 0.3, 1.4),
            "offset": _r(rng, -0.4, 0.4), "size": _r(rng, 0.08, 0.4), "depth": _r(rng, 0.3, 0.6)}


def clip_spec(seed: int, *, frames: int = 12, size: tuple[int, int] = (256, 256), samples: int = 20,
              photos: int = 0, kind: str | None = None) -> dict[str, Any]:
    """The scene of clip ``seed``. ``photos``: how many photographs the renderer is given (textures,
    environment light); ``kind`` forces a target kind (tests), else it is drawn."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    if frames < 1 or min(size) < 16:
        raise ValueError(f"clip_spec: need frames >= 1 and size >= 16, got frames={frames} size={size}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 15]))
    w = np.asarray(KIND_WEIGHTS) / sum(KIND_WEIGHTS)
    main = kind or str(rng.choice(KINDS, p=w))
    parts = [_part(rng, main, photos)]
    if main in ("rigid", "deform", "glass") and rng.random() < 0.25:
        parts[0]["hair"] = _hair(rng, False)  # fur on a shaped or bending body
        parts[0]["show_emitter"] = True
    if main not in ("wires",) and rng.random() < 0.25:  # antenna, handle, string attached to the object
        att = _part(rng, "wires", photos)
        att["style"] = str(rng.choice(["poles", "cables"]))
        att["count"] = int(rng.integers(1, 4))
        parts.append(att)
    fast = bool(rng.random() < 0.45)
    blur = bool(rng.random() < 0.7)
    focal = _r(rng, 28, 90)
    fill = _r(rng, 0.35, 0.8)  # fraction of the frame height the target spans
    dof = None
    if rng.random() < 0.35:
        dof = {"fstop": _r(rng, 0.7, 4.0), "focus_offset": _r(rng, -0.8, 0.8) if rng.random() < 0.5 else 0.0}
    return {
        "version": SPEC_VERSION,
        "seed": int(seed),
        "frames": int(frames),
        "size": [int(size[0]), int(size[1])],
        "samples": int(samples),
        "main": main,
        "parts": parts,
        "motion": _motion(rng, frames, fast),
        "fast": fast,
        "camera": {"focal": focal, "fill": fill, "dof": dof, "roll": _r(rng, -0.2, 0.2),
                   "motion_blur": {"shutter": _r(rng, 0.3, 1.0)} if blur else None},
        "light": _light(rng, photos),
        "occluder": _occluder(rng, frames, photos) if rng.random() < 0.3 else None,
    }


def features(spec: dict[str, Any]) -> list[str]:
    """Short tags of what a clip holds, for the library's summary (``vom clips info``)."""
    tags = [spec["main"]]
    if any("hair" in p for p in spec["parts"]) and spec["main"] not in ("fur", "tuft"):
        tags.append("hair")
    if len(spec["parts"]) > 1:
        tags.append("attached-wires")
    if spec["fast"]:
        tags.append("fast")
    if spec["camera"]["motion_blur"]:
        tags.append("motion-blur")
    if spec["camera"]["dof"]:
        tags.append("dof")
    if spec["occluder"]:
        tags.append("occluder")
    tags.append(f"light-{spec['light']['type']}")
    return tags
