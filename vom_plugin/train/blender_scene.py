"""Build and render one training clip inside Blender (run by ``train/clips.py``, never imported by vom).

    blender -b --factory-startup --python-exit-code 1 -P blender_scene.py -- JOB.json

JOB.json: {"spec": clip_spec(...), "photos": [png paths], "out": folder, "threads": n}. Writes
``rgba.0001.exr ...`` (the target: premultiplied linear Rec.709 RGBA, half float; the occluder, if any, is a
holdout, so alpha is the target's visible coverage) and, when the spec has an occluder, ``occ.0001.exr ...``
(the occluder alone). Cycles on a transparent film gives exact alpha: coverage integrated over the pixel
filter, the shutter interval and the lens aperture.

Runs on Blender's own Python: stdlib and bpy/mathutils only. Nothing here loads an image that ships with
Blender (studio lights, world HDRIs, matcaps): light comes from a procedural sky, area lights or the
project's own photographs.
"""

from __future__ import annotations

import json
import math
import sys

import bpy
from mathutils import Vector

SENSOR_MM = 36.0


def _args() -> dict:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    if len(argv) != 1:
        raise SystemExit("usage: blender -b --factory-startup -P blender_scene.py -- JOB.json")
    with open(argv[0]) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------- scene set-up

def _reset(spec: dict, threads: int) -> bpy.types.Scene:
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.lights, bpy.data.cameras,
                 bpy.data.curves, bpy.data.particles, bpy.data.textures):
        for block in list(coll):
            coll.remove(block)
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    cy = sc.cycles
    cy.device = "CPU"
    cy.samples = int(spec["samples"])
    cy.use_adaptive_sampling = False  # adaptive sampling stops early on flat alpha: keep coverage unbiased
    cy.use_denoising = False
    cy.seed = int(spec["seed"]) & 0x7FFFFFFF
    cy.use_animated_seed = True  # a new noise pattern each frame, as a real sensor's
    # Few bounces: alpha needs none, and colour only has to look plausible (hair is the costly case).
    cy.max_bounces = 4
    cy.diffuse_bounces = 1
    cy.glossy_bounces = 2
    cy.transmission_bounces = 4
    cy.volume_bounces = 0
    cy.transparent_max_bounces = 24  # layered leaves and cut-out holes
    cy.caustics_reflective = False
    cy.caustics_refractive = False
    cy.sample_clamp_indirect = 8.0
    cy.film_transparent_glass = True  # glass seen against the (absent) background is transparent
    cy.film_transparent_roughness = 0.4
    sc.cycles_curves.shape = "THICK"
    sc.render.film_transparent = True
    sc.render.threads_mode = "FIXED"
    sc.render.threads = max(1, int(threads))
    h, w = spec["size"]
    sc.render.resolution_x, sc.render.resolution_y = int(w), int(h)
    sc.render.resolution_percentage = 100
    sc.render.pixel_aspect_x = sc.render.pixel_aspect_y = 1.0
    sc.frame_start, sc.frame_end = 1, int(spec["frames"])
    sc.view_settings.view_transform = "Standard"
    sc.view_settings.look = "None"
    sc.view_settings.exposure = 0.0
    sc.view_settings.gamma = 1.0
    im = sc.render.image_settings
    im.file_format = "OPEN_EXR"
    im.color_mode = "RGBA"
    im.color_depth = "16"
    im.exr_codec = "ZIP"
    sc.render.use_compositing = False
    sc.render.use_sequencer = False
    mb = spec["camera"]["motion_blur"]
    sc.render.use_motion_blur = bool(mb)
    if mb:
        sc.render.motion_blur_shutter = float(mb["shutter"])
        cy.motion_blur_position = "CENTER"
    return sc


def _nodes(mat: bpy.types.Material):
    mat.use_nodes = True
    nt = mat.node_tree
    for n in list(nt.nodes):
        nt.nodes.remove(n)
    return nt, nt.nodes, nt.links


def _colour_source(nt, tex: dict, photos: list[str]):
    """A node socket giving the material's colour (procedural, photographic or flat)."""
    nodes, links = nt.nodes, nt.links
    kind = tex["type"]
    if kind == "flat":
        rgb = nodes.new("ShaderNodeRGB")
        rgb.outputs[0].default_value = (*tex["a"], 1.0)
        return rgb.outputs[0]
    coord = nodes.new("ShaderNodeTexCoord")
    if kind == "photo":
        mapping = nodes.new("ShaderNodeMapping")
        mapping.inputs["Scale"].default_value = (tex["scale"],) * 3
        links.new(coord.outputs["Object"], mapping.inputs["Vector"])
        node = nodes.new("ShaderNodeTexImage")
        node.image = bpy.data.images.load(photos[tex["index"] % len(photos)], check_existing=True)
        node.image.colorspace_settings.name = "sRGB"
        node.projection = "BOX"
        node.projection_blend = 0.3
        node.extension = "REPEAT"
        links.new(mapping.outputs[0], node.inputs["Vector"])
        return node.outputs["Color"]
    cls = {"noise": "ShaderNodeTexNoise", "voronoi": "ShaderNodeTexVoronoi", "wave": "ShaderNodeTexWave",
           "checker": "ShaderNodeTexChecker", "magic": "ShaderNodeTexMagic"}[kind]
    node = nodes.new(cls)
    links.new(coord.outputs["Object"], node.inputs["Vector"])
    node.inputs["Scale"].default_value = tex["scale"]
    if "Detail" in node.inputs:
        node.inputs["Detail"].default_value = min(tex["detail"], 15.0)
    if kind == "checker":
        node.inputs["Color1"].default_value = (*tex["a"], 1.0)
        node.inputs["Color2"].default_value = (*tex["b"], 1.0)
        return node.outputs["Color"]
    fac = node.outputs["Distance"] if kind == "voronoi" else node.outputs["Fac"]
    mix = nodes.new("ShaderNodeMixRGB")
    mix.inputs["Color1"].default_value = (*tex["a"], 1.0)
    mix.inputs["Color2"].default_value = (*tex["b"], 1.0)
    links.new(fac, mix.inputs["Fac"])
    return mix.outputs["Color"]


def _hole_mask(nt, holes: dict | None, leaf: bool):
    """Socket that is 1 where the surface is cut away (holes, and outside a leaf's outline), else None."""
    nodes, links = nt.nodes, nt.links
    masks = []
    if leaf:  # ellipse in UV space: (2u-1)^2 + (2v-1)^2 > 1 is outside the leaf
        uv = nodes.new("ShaderNodeTexCoord")
        vec = nodes.new("ShaderNodeVectorMath")
        vec.operation = "MULTIPLY_ADD"
        vec.inputs[1].default_value = (2.0, 2.0, 0.0)
        vec.inputs[2].default_value = (-1.0, -1.0, 0.0)
        links.new(uv.outputs["UV"], vec.inputs[0])
        length = nodes.new("ShaderNodeVectorMath")
        length.operation = "LENGTH"
        links.new(vec.outputs[0], length.inputs[0])
        out = nodes.new("ShaderNodeMath")
        out.operation = "GREATER_THAN"
        out.inputs[1].default_value = 1.0
        links.new(length.outputs["Value"], out.inputs[0])
        masks.append(out.outputs[0])
    if holes:
        coord = nodes.new("ShaderNodeTexCoord")
        kind = holes["type"]
        if kind == "voronoi":
            tex = nodes.new("ShaderNodeTexVoronoi")
            value = tex.outputs["Distance"]
        elif kind == "noise":
            tex = nodes.new("ShaderNodeTexNoise")
            tex.inputs["Detail"].default_value = 4.0
            value = tex.outputs["Fac"]
        else:  # lace: thin slits between bands
            tex = nodes.new("ShaderNodeTexWave")
            tex.inputs["Distortion"].default_value = 2.0
            value = tex.outputs["Fac"]
        tex.inputs["Scale"].default_value = holes["scale"]
        links.new(coord.outputs["Object"], tex.inputs["Vector"])
        thr = holes["threshold"] + (0.2 if kind == "noise" else 0.0)
        cmp = nodes.new("ShaderNodeMath")
        cmp.operation = "LESS_THAN"
        cmp.inputs[1].default_value = thr
        links.new(value, cmp.inputs[0])
        masks.append(cmp.outputs[0])
    if not masks:
        return None
    if len(masks) == 1:
        return masks[0]
    mx = nodes.new("ShaderNodeMath")
    mx.operation = "MAXIMUM"
    links.new(masks[0], mx.inputs[0])
    links.new(masks[1], mx.inputs[1])
    return mx.outputs[0]


def make_material(name: str, m: dict, photos: list[str]) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    nt, nodes, links = _nodes(mat)
    out = nodes.new("ShaderNodeOutputMaterial")
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    colour = _colour_source(nt, m["texture"], photos)
    bsdf.inputs["Roughness"].default_value = m["roughness"]
    bsdf.inputs["Metallic"].default_value = m["metallic"]
    bsdf.inputs["Specular"].default_value = m["specular"]
    if m["kind"] == "glass":
        bsdf.inputs["Base Color"].default_value = (*m["tint"], 1.0)
        bsdf.inputs["Transmission"].default_value = 1.0
        bsdf.inputs["IOR"].default_value = m["ior"]
        bsdf.inputs["Metallic"].default_value = 0.0
        bsdf.inputs["Roughness"].default_value = m["roughness"] + (0.25 if m["frosted"] else 0.0)
        links.new(bsdf.outputs[0], out.inputs["Surface"])
        return mat
    links.new(colour, bsdf.inputs["Base Color"])
    shader = bsdf.outputs[0]
    if m["kind"] in ("cloth", "leaf"):
        trans = nodes.new("ShaderNodeBsdfTranslucent")
        links.new(colour, trans.inputs["Color"])
        mix = nodes.new("ShaderNodeMixShader")
        mix.inputs["Fac"].default_value = m["translucency"]
        links.new(shader, mix.inputs[1])
        links.new(trans.outputs[0], mix.inputs[2])
        shader = mix.outputs[0]
        mask = _hole_mask(nt, m.get("holes"), m["kind"] == "leaf")
        if mask is not None:
            transparent = nodes.new("ShaderNodeBsdfTransparent")
            cut = nodes.new("ShaderNodeMixShader")
            links.new(mask, cut.inputs["Fac"])
            links.new(shader, cut.inputs[1])
            links.new(transparent.outputs[0], cut.inputs[2])
            shader = cut.outputs[0]
        mat.blend_method = "HASHED"
    links.new(shader, out.inputs["Surface"])
    return mat


def hair_material(name: str, hair: dict) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    nt, nodes, links = _nodes(mat)
    out = nodes.new("ShaderNodeOutputMaterial")
    bsdf = nodes.new("ShaderNodeBsdfHairPrincipled")
    bsdf.parametrization = "MELANIN"
    bsdf.inputs["Melanin"].default_value = hair["melanin"]
    bsdf.inputs["Melanin Redness"].default_value = hair["redness"]
    bsdf.inputs["Tint"].default_value = (*hair["tint"], 1.0)
    bsdf.inputs["Roughness"].default_value = 0.3
    links.new(bsdf.outputs[0], out.inputs["Surface"])
    return mat


# ---------------------------------------------------------------------------------------------- geometry

def _link(obj: bpy.types.Object) -> bpy.types.Object:
    bpy.context.scene.collection.objects.link(obj)
    return obj


def mesh_object(name: str, verts, faces, uvs=None) -> bpy.types.Object:
    me = bpy.data.meshes.new(name)
    me.from_pydata(verts, [], faces)
    if uvs is not None:
        layer = me.uv_layers.new(name="UVMap")
        for poly in me.polygons:
            for li in poly.loop_indices:
                layer.data[li].uv = uvs[me.loops[li].vertex_index]
    me.update()
    return _link(bpy.data.objects.new(name, me))


def primitive(kind: str, scale) -> bpy.types.Object:
    """A Blender primitive about one unit across, smooth-shaded where it is round."""
    ops = bpy.ops.mesh
    if kind == "sphere":
        ops.primitive_uv_sphere_add(radius=0.5, segments=48, ring_count=24)
    elif kind == "cube":
        ops.primitive_cube_add(size=0.8)
    elif kind == "cylinder":
        ops.primitive_cylinder_add(radius=0.35, depth=1.0, vertices=48)
    elif kind == "cone":
        ops.primitive_cone_add(radius1=0.45, depth=1.0, vertices=48)
    elif kind == "torus":
        ops.primitive_torus_add(major_radius=0.36, minor_radius=0.13, major_segments=48, minor_segments=16)
    else:
        ops.primitive_ico_sphere_add(radius=0.5, subdivisions=2)
    obj = bpy.context.active_object
    obj.scale = scale
    if kind not in ("cube", "icosphere"):
        for p in obj.data.polygons:
            p.use_smooth = True
    return obj


def _keyframes(owner, prop: str, values: list[tuple[int, object]]) -> None:
    for frame, v in values:
        setattr(owner, prop, v)
        owner.keyframe_insert(prop, frame=frame)


def _linear_fcurves(idblock) -> None:
    """Linear keys, extrapolated: motion keeps its speed through the shutter of the first and last frames."""
    ad = idblock.animation_data
    if ad is None or ad.action is None:
        return
    for fc in ad.action.fcurves:
        fc.extrapolation = "LINEAR"
        for k in fc.keyframe_points:
            k.interpolation = "LINEAR"


def add_modifiers(obj: bpy.types.Object, mods: list[dict], frames: int) -> None:
    for i, m in enumerate(mods):
        t = m["type"]
        if t == "SUBSURF":
            mod = obj.modifiers.new(f"m{i}", "SUBSURF")
            mod.levels = mod.render_levels = m["levels"]
        elif t == "BEVEL":
            mod = obj.modifiers.new(f"m{i}", "BEVEL")
            mod.width, mod.segments = m["width"], m["segments"]
        elif t == "ARRAY":
            mod = obj.modifiers.new(f"m{i}", "ARRAY")
            mod.count = m["count"]
            off = [0.0, 0.0, 0.0]
            off[m["axis"]] = m["offset"]
            mod.relative_offset_displace = off
        elif t in ("DISPLACE", "DISPLACE_ANIM"):
            tex = bpy.data.textures.new(f"t{i}", "CLOUDS")
            tex.noise_scale = m["scale"]
            mod = obj.modifiers.new(f"m{i}", "DISPLACE")
            mod.texture, mod.strength = tex, m["strength"]
            if t == "DISPLACE_ANIM":  # the texture drifts through the body: a boiling, changing surface
                empty = _link(bpy.data.objects.new(f"disp{i}", None))
                _keyframes(empty, "location", [(1, (0, 0, 0)), (frames, tuple(d * frames for d in m["drift"]))])
                _linear_fcurves(empty)
                mod.texture_coords, mod.texture_coords_object = "OBJECT", empty
        elif t == "SOLIDIFY_HOLES":  # the primitive's edges as struts: a cage with holes
            mod = obj.modifiers.new(f"m{i}", "WIREFRAME")
            mod.thickness = m["thickness"]
        elif t == "SIMPLE_DEFORM":
            mod = obj.modifiers.new(f"m{i}", "SIMPLE_DEFORM")
            mod.deform_method, mod.deform_axis = m["method"], m["axis"]
            prop = "factor" if m["method"] == "TAPER" else "angle"
            _keyframes(mod, prop, [(1, m["angle0"]), (frames, m["angle1"])])
            _linear_fcurves(obj)
        elif t == "WAVE":
            mod = obj.modifiers.new(f"m{i}", "WAVE")
            mod.height, mod.width, mod.speed = m["height"], m["width"], m["speed"]
            mod.narrowness = 1.0


def add_hair(obj: bpy.types.Object, hair: dict, mat_index: int) -> None:
    obj.modifiers.new("hair", "PARTICLE_SYSTEM")
    psys = obj.particle_systems[-1]
    psys.seed = hair["seed"]
    ps = psys.settings
    ps.type = "HAIR"
    ps.use_advanced_hair = True
    ps.count = hair["count"]
    # hair_length is stored as normal_factor * 4: set it after the normal factor, and scale the other
    # direction factors by it, or the strands come out several times longer than asked.
    ps.normal_factor = 1.0
    ps.hair_length = hair["length"]
    ps.tangent_factor = hair["gravity"] * ps.normal_factor
    ps.factor_random = hair["roughness"] * 3 * ps.normal_factor
    ps.length_random = hair["random_length"]
    ps.root_radius = 1.0
    ps.tip_radius = hair["tip"]
    ps.radius_scale = hair["radius"]
    ps.material = mat_index
    ps.render_step = 4
    ps.display_step = 2
    if hair["children"]:
        ps.child_type = "INTERPOLATED"
        ps.child_nbr = ps.rendered_child_count = hair["children"]
        ps.clump_factor = hair["clump"]
        ps.roughness_2 = hair["roughness"]
        ps.roughness_endpoint = hair["roughness"] * 0.5
        ps.kink = hair["kink"]
        if hair["kink"] != "NO":
            ps.kink_amplitude = hair["kink_amp"]
            ps.kink_frequency = 2.0
    # The hair follows the emitter's deformation only when the particle system comes after the deformers.


def build_body(spec_part: dict, name: str, frames: int, photos: list[str]) -> list[bpy.types.Object]:
    objs = []
    count = spec_part.get("count", 1) if spec_part["kind"] == "glass" else 1
    for c in range(count):
        obj = primitive(spec_part["primitive"], spec_part["scale"])
        obj.name = f"{name}_{c}"
        if count > 1:
            s = 0.65
            obj.scale = [x * s for x in spec_part["scale"]]
            obj.location = ((c - (count - 1) / 2) * 0.6, 0.15 * c, 0.1 * (c % 2))
        hair = spec_part.get("hair")
        if hair and not spec_part.get("show_emitter", True):
            obj.scale = [x * 0.35 for x in obj.scale]
        add_modifiers(obj, spec_part.get("modifiers", []), frames)
        obj.data.materials.append(make_material(f"{name}_mat", spec_part["material"], photos))
        if hair:
            obj.data.materials.append(hair_material(f"{name}_hair", hair))
            add_hair(obj, hair, 2)
            obj.show_instancer_for_render = spec_part.get("show_emitter", True)
        objs.append(obj)
    return objs


def _rand(seed: int):
    """A tiny deterministic generator (Blender's Python may lack numpy)."""
    import random

    return random.Random(seed)


def build_wires(p: dict, name: str, seed: int, photos: list[str]) -> list[bpy.types.Object]:
    rnd = _rand(seed)
    mat = make_material(f"{name}_mat", p["material"], photos)
    style, r, objs = p["style"], p["radius"], []
    if style == "poles":
        for _i in range(p["count"]):
            length = rnd.uniform(0.8, 2.2)
            bpy.ops.mesh.primitive_cylinder_add(radius=r, depth=length, vertices=12)
            o = bpy.context.active_object
            o.location = (rnd.uniform(-0.35, 0.35), rnd.uniform(-0.2, 0.2), rnd.uniform(-0.35, 0.35))
            o.rotation_euler = (rnd.uniform(0, math.pi), rnd.uniform(0, math.pi), rnd.uniform(0, math.pi))
            objs.append(o)
    elif style == "cables":
        for i in range(p["count"]):
            cu = bpy.data.curves.new(f"{name}_c{i}", "CURVE")
            cu.dimensions = "3D"
            cu.bevel_depth, cu.bevel_resolution = r, 2
            sp = cu.splines.new("BEZIER")
            n = 5
            sp.bezier_points.add(n - 1)
            z0, sag, y0 = rnd.uniform(-0.5, 0.5), rnd.uniform(0.0, 0.5), rnd.uniform(-0.3, 0.3)
            x0, x1 = -rnd.uniform(0.6, 1.2), rnd.uniform(0.6, 1.2)
            for k, bp in enumerate(sp.bezier_points):
                t = k / (n - 1)
                bp.co = (x0 + (x1 - x0) * t, y0 + rnd.uniform(-0.1, 0.1), z0 - sag * 4 * t * (1 - t))
                bp.handle_left_type = bp.handle_right_type = "AUTO"
            objs.append(_link(bpy.data.objects.new(f"{name}_c{i}", cu)))
    else:
        if style == "cage":
            kind = rnd.choice(["cube", "ico", "cylinder"])
            if kind == "cube":
                bpy.ops.mesh.primitive_cube_add(size=0.9)
            elif kind == "ico":
                bpy.ops.mesh.primitive_ico_sphere_add(radius=0.55, subdivisions=min(3, p["subdiv"]))
            else:
                bpy.ops.mesh.primitive_cylinder_add(radius=0.4, depth=1.0, vertices=6 + 2 * p["subdiv"])
            o = bpy.context.active_object
            if kind == "cube" and p["subdiv"] > 1:
                sub = o.modifiers.new("sub", "SUBSURF")
                sub.subdivision_type = "SIMPLE"
                sub.levels = sub.render_levels = p["subdiv"] - 1
        else:  # fence: a grid facing the camera, tilted a little
            n = 2 + 3 * p["subdiv"]
            bpy.ops.mesh.primitive_grid_add(x_subdivisions=n, y_subdivisions=n, size=1.3)
            o = bpy.context.active_object
            o.rotation_euler = (math.pi / 2 + rnd.uniform(-0.6, 0.6), rnd.uniform(-0.5, 0.5), rnd.uniform(0, 0.8))
        wf = o.modifiers.new("wire", "WIREFRAME")
        wf.thickness, wf.use_even_offset = 2 * r, True
        objs.append(o)
    for o in objs:
        o.name = f"{name}_{o.name}"
        o.data.materials.append(mat)
    return objs


def build_cloth(p: dict, name: str, frames: int, photos: list[str]) -> list[bpy.types.Object]:
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=48, y_subdivisions=48, size=1.2)
    o = bpy.context.active_object
    o.name = name
    o.scale = (p["scale"][0], p["scale"][1], 1.0)
    o.rotation_euler = (math.pi / 2, 0.0, 0.0)
    for poly in o.data.polygons:
        poly.use_smooth = True
    w = p["wave"]
    add_modifiers(o, [{"type": "WAVE", "height": w["height"], "width": w["width"], "speed": w["speed"]},
                      {"type": "SIMPLE_DEFORM", "method": "BEND", "axis": "Y", "angle0": p["bend"],
                       "angle1": p["bend"] * 0.6}], frames)
    o.data.materials.append(make_material(f"{name}_mat", p["material"], photos))
    return [o]


def build_leaves(p: dict, name: str, frames: int, seed: int, photos: list[str]) -> list[bpy.types.Object]:
    rnd = _rand(seed)
    bpy.ops.mesh.primitive_cylinder_add(radius=0.015, depth=1.3, vertices=8)
    stem = bpy.context.active_object
    stem.name = f"{name}_stem"
    stem.data.materials.append(make_material(f"{name}_stem_mat", p["stem_material"], photos))
    verts, faces, uvs = [], [], []
    n = 4  # a leaf is an n x n grid, curved along its length
    for _i in range(p["count"]):
        L, W = p["leaf_size"], p["leaf_size"] * p["leaf_aspect"]
        z = rnd.uniform(-0.6, 0.6)
        az = rnd.uniform(0, 2 * math.pi)
        tilt = rnd.uniform(0.2, 1.2)
        curl = rnd.uniform(-0.3, 0.3)
        base = len(verts)
        for a in range(n + 1):
            for b in range(n + 1):
                u, v = a / n, b / n
                x = (u - 0.5) * W
                s = v * L  # along the leaf, outward from the stem
                dz = curl * s * s / max(L, 1e-3)
                # outward direction rotated by az, lifted by tilt
                ox, oy = math.cos(az), math.sin(az)
                px = ox * s * math.cos(tilt) - oy * x
                py = oy * s * math.cos(tilt) + ox * x
                pz = z + s * math.sin(tilt) + dz
                verts.append((px + ox * 0.015, py + oy * 0.015, pz))
                uvs.append((u, v))
        for a in range(n):
            for b in range(n):
                i0 = base + a * (n + 1) + b
                faces.append((i0, i0 + n + 1, i0 + n + 2, i0 + 1))
    leaves = mesh_object(f"{name}_leaves", verts, faces, uvs)
    for poly in leaves.data.polygons:
        poly.use_smooth = True
    if p["flutter"] > 0:
        add_modifiers(leaves, [{"type": "WAVE", "height": 0.1 * p["flutter"], "width": 0.4, "speed": 0.15}], frames)
    leaves.data.materials.append(make_material(f"{name}_mat", p["material"], photos))
    return [stem, leaves]


# ---------------------------------------------------------------------------------------------- world

def light_scene(sc: bpy.types.Scene, light: dict, photos: list[str]) -> None:
    world = bpy.data.worlds.new("world")
    sc.world = world
    world.use_nodes = True
    nt = world.node_tree
    bg = nt.nodes["Background"]
    t = light["type"]
    if t == "sky":
        sky = nt.nodes.new("ShaderNodeTexSky")
        sky.sky_type = "NISHITA"
        sky.sun_elevation, sky.sun_rotation = light["sun_elevation"], light["sun_rotation"]
        sky.altitude = light["altitude"]
        sky.air_density, sky.dust_density, sky.ozone_density = light["air"], light["dust"], light["ozone"]
        nt.links.new(sky.outputs[0], bg.inputs["Color"])
        bg.inputs["Strength"].default_value = light["strength"]
    elif t == "photo_env":
        coord = nt.nodes.new("ShaderNodeTexCoord")
        mapping = nt.nodes.new("ShaderNodeMapping")
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, light["rotation"])
        env = nt.nodes.new("ShaderNodeTexEnvironment")
        env.image = bpy.data.images.load(photos[light["index"] % len(photos)], check_existing=True)
        env.image.colorspace_settings.name = "sRGB"
        world.cycles.sampling_method = "MANUAL"
        world.cycles.sample_map_resolution = 256  # the importance map of a 1024 map took seconds per frame
        nt.links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
        nt.links.new(mapping.outputs[0], env.inputs["Vector"])
        nt.links.new(env.outputs[0], bg.inputs["Color"])
        bg.inputs["Strength"].default_value = light["strength"]
    else:
        bg.inputs["Color"].default_value = (*light["world"], 1.0)
        bg.inputs["Strength"].default_value = 1.0
        for i, lamp in enumerate(light["lights"]):
            data = bpy.data.lights.new(f"area{i}", "AREA")
            data.energy, data.size, data.color = lamp["energy"], lamp["size"], lamp["colour"]
            obj = _link(bpy.data.objects.new(f"area{i}", data))
            az, el, d = lamp["azimuth"], lamp["elevation"], lamp["distance"]
            pos = Vector((d * math.cos(el) * math.sin(az), -d * math.cos(el) * math.cos(az), d * math.sin(el)))
            obj.location = pos
            obj.rotation_euler = (-pos).to_track_quat("-Z", "Y").to_euler()


def camera(sc: bpy.types.Scene, cam_spec: dict) -> tuple[bpy.types.Object, float, float]:
    """Camera on -Y looking at the origin; returns (camera, distance, half-width of view at the target)."""
    focal = cam_spec["focal"]
    dist = focal / (SENSOR_MM * cam_spec["fill"])  # the ~1-unit target spans `fill` of the frame
    data = bpy.data.cameras.new("cam")
    data.lens, data.sensor_width, data.sensor_fit = focal, SENSOR_MM, "AUTO"
    data.clip_start, data.clip_end = 0.01, 100.0
    dof = cam_spec["dof"]
    if dof:
        data.dof.use_dof = True
        data.dof.focus_distance = max(0.1, dist + dof["focus_offset"] * 0.5)
        data.dof.aperture_fstop = dof["fstop"]
    cam = _link(bpy.data.objects.new("cam", data))
    cam.location = (0.0, -dist, 0.0)
    cam.rotation_euler = (math.pi / 2, cam_spec["roll"], 0.0)
    sc.camera = cam
    return cam, dist, dist * (SENSOR_MM / 2) / focal


def animate_target(root: bpy.types.Object, motion: dict, frames: int, half: float) -> None:
    keys = [1, (1 + frames) / 2, frames]
    for (x, z), dy, f in zip(motion["path"], motion["depth"], keys, strict=True):
        root.location = (x * half, dy * 0.5, z * half)
        root.keyframe_insert("location", frame=f)
    rot0, spin = motion["rot0"], motion["spin"]
    _keyframes(root, "rotation_euler", [(1, tuple(rot0)),
                                        (frames, tuple(r + s * (frames - 1) for r, s in zip(rot0, spin, strict=True)))])
    _linear_fcurves(root)


def occluder(o: dict, frames: int, dist: float, focal: float, photos: list[str]) -> bpy.types.Object:
    y = -dist * o["depth"]
    half = (dist + y) * (SENSOR_MM / 2) / focal  # half-width of the view at the occluder's depth
    s = o["size"] * half
    shape = o["shape"]
    if shape == "pole":
        bpy.ops.mesh.primitive_cylinder_add(radius=0.25 * s, depth=6 * half, vertices=24)
    elif shape == "sphere":
        bpy.ops.mesh.primitive_uv_sphere_add(radius=s, segments=32, ring_count=16)
    else:
        bpy.ops.mesh.primitive_cube_add(size=1.0)
    ob = bpy.context.active_object
    ob.name = "occluder"
    if shape == "box":
        ob.scale = (s, s, s)
    elif shape == "plank":
        ob.scale = (0.4 * s, 0.2 * s, 6 * half)
    if not o["vertical"]:
        ob.rotation_euler = (0.0, math.pi / 2, 0.0)  # lying across the frame, moving vertically
    a, b, off = o["from"] * half, o["to"] * half, o["offset"] * half
    ends = [(a, y, off), (b, y, off)] if o["vertical"] else [(off, y, a), (off, y, b)]
    _keyframes(ob, "location", [(1, ends[0]), (frames, ends[1])])
    _linear_fcurves(ob)
    ob.data.materials.append(make_material("occ_mat", o["material"], photos))
    return ob


def main() -> None:
    job = _args()
    spec, photos, out = job["spec"], job.get("photos", []), job["out"]
    frames = int(spec["frames"])
    sc = _reset(spec, job.get("threads", 2))
    cam, dist, half = camera(sc, spec["camera"])
    light_scene(sc, spec["light"], photos)
    root = _link(bpy.data.objects.new("target", None))
    parts: list[bpy.types.Object] = []
    for i, p in enumerate(spec["parts"]):
        name, kind = f"part{i}", p["kind"]
        if kind == "wires":
            objs = build_wires(p, name, spec["seed"] * 31 + i, photos)
        elif kind == "cloth":
            objs = build_cloth(p, name, frames, photos)
        elif kind == "leaves":
            objs = build_leaves(p, name, frames, spec["seed"] * 31 + i, photos)
        else:
            objs = build_body(p, name, frames, photos)
        for o in objs:
            o.parent = root
        parts.extend(objs)
    animate_target(root, spec["motion"], frames, half)
    occ = occluder(spec["occluder"], frames, dist, spec["camera"]["focal"], photos) if spec["occluder"] else None

    if occ is not None:
        occ.is_holdout = True  # cuts the target's alpha exactly where it covers it, leaves nothing of its own
    sc.render.filepath = f"{out}/rgba.####"
    bpy.ops.render.render(animation=True)
    if occ is not None:
        occ.is_holdout = False
        for o in parts:
            o.hide_render = True
        sc.render.filepath = f"{out}/occ.####"
        bpy.ops.render.render(animation=True)


if __name__ == "__main__":
    main()
