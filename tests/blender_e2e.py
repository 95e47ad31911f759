"""Run inside a real Blender by tests/test_host_blender.py (not collected by pytest: no test_ prefix).

    blender -b --factory-startup --python-exit-code 1 -P tests/blender_e2e.py -- CONFIG.json
    python tests/blender_e2e.py -- CONFIG.json      # a Python with PyPI's bpy (Blender 4.x as a module)

Enables the installed VOM Matte add-on, builds a compositor tree on the demo shot (plate Image node ->
Composite, roto Image node), runs the add-on's operator, renders the composite of a few scene frames to
EXR (and one to PNG when asked), then points the roto at a file that does not exist and runs the operator
again, and drives the modal operator by hand to cancel a render with Esc. A second case takes the plate
from a Movie Clip and the roto from a Mask. What it saw goes to the result file named in CONFIG; the test
checks the pixels.
"""

import importlib
import json
import os
import sys
import time
import traceback

import bpy

addon_utils = importlib.import_module("addon_utils")  # after bpy: the bpy module puts Blender's scripts on the path

cfg = json.load(open(sys.argv[sys.argv.index("--") + 1]))
result = {"blender": bpy.app.version_string}


def node_info(node):
    return {"name": node.name, "type": node.bl_idname,
            "timing": [node.frame_start, node.frame_offset, node.frame_duration] if hasattr(node, "frame_start")
            else None}


def render_frames(scene, frames, pattern, fmt):
    r = scene.render
    r.image_settings.file_format = fmt
    if fmt == "OPEN_EXR":
        r.image_settings.color_mode, r.image_settings.color_depth = "RGBA", "32"
    else:
        r.image_settings.color_mode, r.image_settings.color_depth = "RGBA", "8"
    written = []
    for f in frames:
        scene.frame_set(f)
        r.filepath = pattern.replace("####", f"{f:04d}")
        bpy.ops.render.render(write_still=True)
        written.append(r.filepath)
    return written


def box_mask(name, x0, x1, y0, y1):
    """A Mask with one closed 4-point spline: x across the frame width (0-1), y in the same units from the
    frame's vertical centre (Blender's mask space)."""
    mask = bpy.data.masks.new(name)
    spline = mask.layers.new(name="roto").splines.new()
    spline.points.add(4 - len(spline.points))
    for p, co in zip(spline.points, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], strict=True):
        p.co = co
        p.handle_left_type = p.handle_right_type = "VECTOR"
    spline.use_cyclic = True
    return mask


def setup_scene(scene, case):
    """The artist's tree: the plate (Image node sequence or Movie Clip) shown from scene frame `start`,
    a roto (Image node still or Mask), a Composite fed by the plate."""
    bpy.context.window.scene = scene
    scene.frame_start, scene.frame_end = case["scene_frames"]
    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = 480, 270, 100
    scene.view_settings.view_transform = "Standard"  # the PNG shows the comp as it is, no filmic curve
    scene.use_nodes = True
    tree = scene.node_tree
    for n in list(tree.nodes):
        tree.nodes.remove(n)
    start, offset, duration = case["plate_timing"]
    plate_file = os.path.join(cfg["demo"], "plate.0001.exr")
    if case["plate"] == "clip":
        plate = tree.nodes.new("CompositorNodeMovieClip")
        plate.clip = bpy.data.movieclips.load(plate_file)
        plate.clip.frame_start, plate.clip.frame_offset = start, offset
    else:
        plate = tree.nodes.new("CompositorNodeImage")
        plate.image = bpy.data.images.load(plate_file)
        plate.image.source = "SEQUENCE"
        plate.frame_start, plate.frame_offset, plate.frame_duration = start, offset, duration
    plate.name = "Plate"
    if case["plate"] == "clip":  # a plate inside a Frame: its location is the frame's plus its own
        frame = tree.nodes.new("NodeFrame")
        frame.location = (-600.0, 400.0)
        plate.parent = frame
    comp = tree.nodes.new("CompositorNodeComposite")
    px, py = absolute(plate)
    comp.location = (px + 280, py - 80)  # where the add-on would put its Set Alpha
    tree.links.new(plate.outputs["Image"], comp.inputs["Image"])
    s = scene.vom_matte
    s.plate_node, s.keyframes = "Plate", str(case.get("keyframe", ""))
    if case["roto"] == "masks":  # several objects: each one's roto is the Mask of its name
        for name, box in case["masks"].items():
            box_mask(name, *box)
        s.roto_source, s.objects = "MASK", case["objects"]
    elif case["roto"] == "mask":
        s.roto_source, s.roto_mask = "MASK", box_mask("roto", *case["mask_box"])
    else:
        roto = tree.nodes.new("CompositorNodeImage")
        roto.location = (px, py - 320)  # and its alpha node
        roto.name = "Roto"
        roto.image = bpy.data.images.load(os.path.join(cfg["demo"], "roto.0001.exr"))
        s.roto_source, s.roto_node = "NODE", "Roto"
    s.out, s.cache, s.working_size, s.model = case["out"], cfg["cache"], cfg["working_size"], cfg["model"]
    for name, value in case.get("settings", {}).items():
        setattr(s, name, value)
    return tree, plate, comp


def absolute(node):
    x, y, parent = node.location.x, node.location.y, node.parent
    while parent is not None:
        x, y, parent = x + parent.location.x, y + parent.location.y, parent.parent
    return x, y


def overlaps(tree, height=200.0):
    """Pairs (add-on node, other node) whose rectangles meet (a node's height taken as ``height``: nodes are not
    drawn in the background, their dimensions are 0)."""
    def rect(n):
        x, y = absolute(n)
        return x, x + n.width, y - height, y

    ours = [n for n in tree.nodes if n.name.startswith("Plate VOM")]
    hits = []
    for a in ours:
        ax0, ax1, ay0, ay1 = rect(a)
        for b in tree.nodes:
            if b == a or (b in ours and b.name < a.name) or b.bl_idname == "NodeFrame":
                continue
            bx0, bx1, by0, by1 = rect(b)
            if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1:
                hits.append(f"{a.name} / {b.name}")
    return sorted(hits)


def run_case(case):
    scene = bpy.context.scene if case["name"] == "image" else bpy.data.scenes.new(case["name"])
    tree, plate, comp = setup_scene(scene, case)
    out = {"settings": {k: getattr(scene.vom_matte, k) for k in knob_names}}
    out["run"] = sorted(bpy.ops.node.vom_matte_render())
    alpha = tree.nodes.get("Plate VOM Alpha")
    out["alpha_node"] = node_info(alpha) if alpha else None
    out["alpha_image"] = {"filepath": os.path.normpath(bpy.path.abspath(alpha.image.filepath)),
                          "source": alpha.image.source,
                          "colorspace": alpha.image.colorspace_settings.name} if alpha else None
    out["links"] = sorted(f"{lk.from_node.name}:{lk.from_socket.name}->{lk.to_node.name}:{lk.to_socket.name}"
                          for lk in tree.links)
    out["alpha_outputs"] = [o.name for o in alpha.outputs] if alpha else None
    out["overlaps"] = overlaps(tree)
    out["parents"] = sorted({n.parent.name if n.parent else "" for n in tree.nodes if n.name.startswith("Plate VOM")})
    out["object_nodes"] = {n.name: {**node_info(n), "filepath": os.path.normpath(bpy.path.abspath(n.image.filepath))}
                           for n in tree.nodes if n.name.startswith("Plate VOM Alpha ")}
    from vom_matte import common  # the add-on's own rule (a copy of it here went stale)

    work = str(common.work_dir(case["out"]))
    out["shot_yaml"] = open(os.path.join(work, "shot.yaml")).read()
    frames = list(range(case["scene_frames"][0], case["scene_frames"][1] + 1))
    out["composites"] = render_frames(scene, frames, case["composite"], "OPEN_EXR")
    return out, tree, plate, comp


def run_modal(scene, tree, case):
    import types

    import vom_matte.ui as ui

    tree.nodes["Roto"].image = bpy.data.images.load(os.path.join(cfg["demo"], "roto.0001.exr"))
    s = scene.vom_matte
    s.out, s.frames, s.working_size = case["out"], case["frames"], case["working_size"]

    class Context:  # bpy.context, with the status bar recorded
        texts = []
        scene = property(lambda self: bpy.context.scene)
        preferences = property(lambda self: bpy.context.preferences)
        window_manager = property(lambda self: bpy.context.window_manager)
        workspace = property(lambda self: self)

        def status_text_set(self, text):
            self.texts.append(text)

    Op = ui.VOM_OT_render_matte

    def operator(reports):
        op = types.SimpleNamespace(_job=None, _plan=None, _timer=None, _key=None)
        op.report = lambda kind, msg: reports.append((sorted(kind), msg))
        for name in ("_start", "_finish", "_cleanup", "_release"):
            setattr(op, name, getattr(Op, name).__get__(op))
        return op

    ctx, reports, second = Context(), [], []
    op = operator(reports)
    assert op._start(ctx)
    # a second click on the same plate while it renders: refused before it writes anything (QA: both rendered the
    # same Output, each frame whichever wrote last, and both said success)
    refused = not operator(second)._start(ctx)
    state, escaped = {"RUNNING_MODAL"}, False
    while state == {"RUNNING_MODAL"}:
        time.sleep(0.02)
        shown = op._job._shown  # the latest start/frame/done line (step events come between them)
        if not escaped and shown is not None and shown.event == "frame":
            state, escaped = Op.modal(op, ctx, types.SimpleNamespace(type="ESC", value="PRESS")), True
        else:
            state = Op.modal(op, ctx, types.SimpleNamespace(type="TIMER", value="NOTHING"))
    again = operator([])  # once it has ended, the plate may be rendered again
    started_again = again._start(ctx)
    if started_again:
        again._job.cancel()
        again._job.wait()
        again._release()
    return {"state": sorted(state), "reports": reports, "texts": ctx.texts, "returncode": op._job.returncode,
            "refused": refused, "second": second, "started_again": started_again,
            "pass_through": sorted(Op.modal(op, ctx, types.SimpleNamespace(type="MOUSEMOVE", value="NOTHING")))}


try:
    # 1. the add-on, installed by install.py --blender into BLENDER_USER_SCRIPTS/addons
    result["found"] = [m.__name__ for m in addon_utils.modules() if m.__name__ == "vom_matte"]
    addon_utils.enable("vom_matte", default_set=True, handle_error=None)
    result["enabled"] = "vom_matte" in bpy.context.preferences.addons
    result["operator"] = hasattr(bpy.ops.node, "vom_matte_render")
    knob_names = [k["name"] for k in
                  json.load(open(os.path.join(cfg["addons"], "vom_matte", "node_def.json")))["knobs"]]

    # 2. each case: build the tree, run the operator (blocking in background mode), render the composite
    for case in cfg["cases"]:
        result[case["name"]], tree, plate, comp = run_case(case)
        if case["name"] == "objects_split":
            # another plate node rendered to the first object's sequence, which this plate's alpha node loads:
            # refused; then this plate renamed (its object nodes follow it), then an object removed (its node too)
            s = bpy.context.scene.vom_matte
            other = tree.nodes.new("CompositorNodeImage")
            other.name, other.image = "Plate2", plate.image
            other.frame_start, other.frame_offset, other.frame_duration = plate.frame_start, 0, plate.frame_duration
            s.plate_node, s.objects, s.keyframes = "Plate2", "", "101"
            s.roto_mask, out_objects = bpy.data.masks["stone"], s.out
            s.out = out_objects.replace("{object}", "hero")
            try:
                result["split_collision_run"] = sorted(bpy.ops.node.vom_matte_render())
            except RuntimeError as e:
                result["split_collision_error"] = str(e)
            tree.nodes.remove(other)
            s.out, s.objects, s.keyframes = out_objects, case["objects"], ""
            plate.name = s.plate_node = "BG"
            result["split_renamed_run"] = sorted(bpy.ops.node.vom_matte_render())
            result["split_renamed_nodes"] = sorted(n.name for n in tree.nodes if "VOM" in n.name)
            viewer = tree.nodes.new("CompositorNodeViewer")  # the artist's link from the object's node
            tree.links.new(tree.nodes["BG VOM Alpha stone"].outputs[0], viewer.inputs[0])
            s.objects = "hero 101"
            result["split_removed_run"] = sorted(bpy.ops.node.vom_matte_render())
            tree.nodes.remove(viewer)
            result["split_removed_nodes"] = sorted(n.name for n in tree.nodes if "VOM" in n.name)
            s.roto_source, s.objects = "NODE", "ghost 101"  # an object's roto is the Image node of its name
            try:
                bpy.ops.node.vom_matte_render()
            except RuntimeError as e:
                result["split_ghost_error"] = str(e)
        if case["name"] == "objects":
            # the artist's comp fed from the stone layer's output, then Output split into a sequence per object: the
            # link follows stone's matte to its own node (it stayed on the disabled output, black, QA)
            s = bpy.context.scene.vom_matte
            viewer = tree.nodes.new("CompositorNodeViewer")
            tree.links.new(tree.nodes["Plate VOM Alpha"].outputs["stone"], viewer.inputs[0])
            s.out = s.out.replace("alpha.####", "{object}.####")
            result["moved_run"] = sorted(bpy.ops.node.vom_matte_render())
            result["moved_links"] = [f"{lk.from_node.name}:{lk.from_socket.name}" for lk in viewer.inputs[0].links]
            tree.nodes.remove(viewer)
        if case["name"] == "layer":  # renamed and rendered again: its Separate node follows it too
            plate.name = bpy.context.scene.vom_matte.plate_node = "Layered"
            result["layer_renamed_run"] = sorted(bpy.ops.node.vom_matte_render())
            result["layer_renamed_nodes"] = sorted(n.name for n in tree.nodes if "VOM" in n.name)
        if case["name"] != "image":
            continue
        set_alpha = tree.nodes["Plate VOM Set Alpha"]
        if cfg.get("screenshot"):
            # the README picture: the same tree, with the matted plate over a flat colour
            over = tree.nodes.new("CompositorNodeAlphaOver")
            bg = tree.nodes.new("CompositorNodeRGB")
            bg.outputs[0].default_value = (0.05, 0.12, 0.22, 1.0)
            tree.links.new(bg.outputs[0], over.inputs[1])
            tree.links.new(set_alpha.outputs["Image"], over.inputs[2])
            tree.links.new(over.outputs["Image"], comp.inputs["Image"])
            result["screenshot"] = render_frames(bpy.context.scene, [cfg["screenshot_frame"]], cfg["screenshot"],
                                                 "PNG")
            tree.links.new(set_alpha.outputs["Image"], comp.inputs["Image"])

        # 3. a roto path that does not exist: a Blender error report naming it, no crash, nothing overwritten
        bad = bpy.data.images.new("bad_roto", 8, 8)
        bad.source = "FILE"
        bad.filepath = cfg["bad_roto"]
        tree.nodes["Roto"].image = bad
        import vom_matte.core as addon_core

        shot_yaml = addon_core.work_dir(bpy.context.scene.vom_matte.out) / "shot.yaml"
        good_shot = shot_yaml.read_text()
        try:
            result["bad_run"] = sorted(bpy.ops.node.vom_matte_render())
        except RuntimeError as e:  # bpy.ops raises the operator's ERROR report
            result["bad_error"] = str(e)
        # the good render's shot file, which a farm job or the next render reads, is not the refused one's
        result["bad_kept_shot"] = shot_yaml.read_text() == good_shot and cfg["bad_roto"] not in good_shot
        result["after_bad_links"] = sorted(f"{lk.from_node.name}->{lk.to_node.name}" for lk in tree.links)

        # 3b. the plate node renamed, then rendered again: the add-on's nodes follow it (taking its name), no
        # second Set Alpha chained after the first
        import vom_matte.ui as ui

        tree.nodes["Roto"].image = bpy.data.images.load(os.path.join(cfg["demo"], "roto.0001.exr"))
        s = bpy.context.scene.vom_matte
        plate.name, s.plate_node = "BG", "BG"
        result["renamed_run"] = sorted(bpy.ops.node.vom_matte_render())
        result["renamed_links"] = sorted(f"{lk.from_node.name}->{lk.to_node.name}" for lk in tree.links)
        result["renamed_nodes"] = sorted(n.name for n in tree.nodes)

        # 3b'. a render vom warns of (the cache off: no room left on its disk): the report says vom's warning and how
        # its file frames read in the scene (only failures said it: QA)
        os.environ["VOM_CACHE_MIN_FREE_GB"] = "1e9"
        try:
            result["warned_run"] = sorted(bpy.ops.node.vom_matte_render())
        finally:
            del os.environ["VOM_CACHE_MIN_FREE_GB"]

        # 3c. a second plate node rendered to the Output the first one's alpha node loads: refused before vom runs
        other = tree.nodes.new("CompositorNodeImage")
        other.name, other.image = "Plate2", plate.image
        other.frame_start, other.frame_offset, other.frame_duration = plate.frame_start, 2, plate.frame_duration
        s.plate_node = "Plate2"
        try:
            result["shared_out_run"] = sorted(bpy.ops.node.vom_matte_render())
        except RuntimeError as e:
            result["shared_out_error"] = str(e)
        tree.nodes.remove(other)
        s.plate_node = "BG"

        # 3d. the plate's Blender colour space: ACEScg and ACES2065-1 under their 3.x names map; one vom cannot read
        # is refused
        spaces = {}
        for name in ("Linear ACEScg", "Linear ACES", "Filmic Log"):
            try:
                plate.image.colorspace_settings.name = name
            except TypeError:  # a Blender whose config lacks it
                continue
            try:
                spaces[name] = ui.prepare(bpy.context).fields["colorspace"]
            except Exception as e:
                spaces[name] = f"error: {e}"
        plate.image.colorspace_settings.name = "Linear" if "Linear" in [
            c.identifier for c in plate.image.colorspace_settings.bl_rna.properties["name"].enum_items] \
            else "Linear Rec.709"
        result["colorspaces"] = spaces

        # 3e. an Output whose folder cannot be made: the report names the Output setting
        s.out = os.path.join(cfg["demo"], "plate.0001.exr", "out", "alpha.####.exr")
        try:
            ui.prepare(bpy.context)
        except Exception as e:
            result["bad_out_error"] = str(e)

        # 3e1. an Output naming the plate's own files: refused before anything is written beside the plate (vom
        # refused it too, but only after the add-on had made a folder and a shot file in the plate's folder: QA)
        s.out = os.path.join(cfg["demo"], "plate.####.exr")
        try:
            ui.prepare(bpy.context)
        except Exception as e:
            result["plate_out_error"] = str(e)
        result["plate_out_left"] = sorted(n for n in os.listdir(cfg["demo"]) if not n.startswith("plate."))

        # 3e1b. wiring a render whose output is not on disk (vom said done; the files were removed): refused before
        # any node is made (an empty alpha node was left in the tree: QA)
        fresh = tree.nodes.new("CompositorNodeImage")  # a plate node rendered for the first time: no alpha node yet
        fresh.name, fresh.image = "Fresh", plate.image
        fresh.frame_start, fresh.frame_offset, fresh.frame_duration = plate.frame_start, 0, plate.frame_duration
        s.plate_node = "Fresh"
        s.out = os.path.join(cfg["cases"][0]["out"].rsplit(os.sep, 2)[0], "gone", "alpha.####.exr")
        gone_plan = ui.prepare(bpy.context)
        before = sorted(n.name for n in tree.nodes)
        try:
            ui.wire_alpha(bpy.context.scene, gone_plan)
        except Exception as e:
            result["gone_error"] = str(e)
        result["gone_nodes_kept"] = sorted(n.name for n in tree.nodes) == before
        tree.nodes.remove(fresh)
        s.plate_node = "BG"

        # 3e1c. a setting vom refuses (a typo in Memory policy): said before a Mask is baked or a folder made, naming
        # the setting by its label (vom refused it after the add-on had baked the rotos: QA)
        typo_out = os.path.join(cfg["cases"][0]["out"].rsplit(os.sep, 2)[0], "typo", "alpha.####.exr")
        s.out, s.memory = typo_out, "prev 2"
        try:
            ui.prepare(bpy.context)
        except Exception as e:
            result["memory_typo_error"] = str(e)
        result["memory_typo_left"] = os.path.exists(os.path.dirname(typo_out))
        s.memory = "first+prev2"
        # a Model that is no shipped name and no file (vom read it from the hidden work folder, after the bake: QA)
        model, s.model = s.model, "Lite"
        try:
            ui.prepare(bpy.context)
        except Exception as e:
            result["model_typo_error"] = str(e)
        result["model_typo_left"] = os.path.exists(os.path.dirname(typo_out))
        s.model = model

        # 3e2. a // path typed into a setting of an unsaved .blend: refused (it meant Blender's working folder now and
        # the .blend's folder once saved; the frames were written to the first and looked for in the second)
        s.out = "//mattes/alpha.####.exr"
        try:
            ui.prepare(bpy.context)
        except Exception as e:
            result["unsaved_slashslash_error"] = str(e)

        # 3f. the .blend saved, Output left empty: the default Output is named after the .blend, the scene and the
        # plate node, and the alpha node loads it //-relative (a project moved elsewhere still finds its mattes);
        # a plate node of the same name in another scene rendered to that Output is refused
        if cfg.get("blend"):
            scene = bpy.context.scene
            os.makedirs(os.path.dirname(cfg["blend"]), exist_ok=True)
            bpy.ops.wm.save_as_mainfile(filepath=cfg["blend"])
            # a checkpoint beside the .blend as Model: resolved as a Blender path, as Output and Cache are
            if cfg.get("weights"):
                import shutil

                os.makedirs(os.path.join(os.path.dirname(cfg["blend"]), "weights"), exist_ok=True)
                shutil.copy(cfg["weights"], os.path.join(os.path.dirname(cfg["blend"]), "weights", "mine.safetensors"))
                s.out, s.model = "//mattes/alpha.####.exr", "//weights/mine.safetensors"
                result["model_beside_blend"] = ui.prepare(bpy.context).fields["model"]
                s.model = cfg["model"]
            s.out = "rel_out/alpha.####.exr"  # relative without // in a saved .blend: the report says where it went
            result["relative_out"] = [ui.prepare(bpy.context).cwd_out, os.getcwd()]
            s.out = ""
            result["saved_run"] = sorted(bpy.ops.node.vom_matte_render())
            alpha = tree.nodes["BG VOM Alpha"]
            result["saved_alpha"] = {"filepath": alpha.image.filepath, "out": alpha["vom_out"],
                                     "colorspace": alpha.image.colorspace_settings.name}
            # a Full Copy of the scene: its alpha node shows the original's files; the original renders again
            # (not refused for its copy), the copy rendering there is refused
            bpy.ops.scene.new(type="FULL_COPY")
            copy = bpy.context.scene
            bpy.context.window.scene = scene
            result["original_after_copy_run"] = sorted(bpy.ops.node.vom_matte_render())
            bpy.context.window.scene = copy
            copy.vom_matte.out = bpy.path.abspath(alpha["vom_out"])
            try:
                result["copy_run"] = sorted(bpy.ops.node.vom_matte_render())
            except RuntimeError as e:
                result["copy_error"] = str(e)
            bpy.context.window.scene = scene
            other_scene = bpy.data.scenes.new("Other")
            setup_scene(other_scene, {**cfg["cases"][0], "out": bpy.path.abspath(alpha["vom_out"])})
            other_scene.node_tree.nodes["Plate"].name = other_scene.vom_matte.plate_node = "BG"
            try:
                result["other_scene_run"] = sorted(bpy.ops.node.vom_matte_render())
            except RuntimeError as e:
                result["other_scene_error"] = str(e)
            bpy.context.window.scene = scene
            s.out = cfg["cases"][0]["out"]

        # 4. the modal path an artist gets from the button, driven by hand: `blender -b` has no event loop,
        # so TIMER events are fed to the operator's own modal() and Esc is pressed after the first frame
        if cfg.get("modal"):
            result["modal"] = run_modal(bpy.context.scene, tree, cfg["modal"])
except Exception:
    result["exception"] = traceback.format_exc()
finally:
    with open(cfg["result"], "w") as f:
        json.dump(result, f, indent=1)
