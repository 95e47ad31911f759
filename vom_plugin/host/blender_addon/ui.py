"""The bpy half of the VOM Matte add-on: its settings, the Compositor panel and the render operator.

The settings live on the scene (``scene.vom_matte``): the Plate node (an Image node with an image
sequence, or a Movie Clip of one), the roto (an Image node, or a Mask rendered to EXR at each keyframe),
the keyframes in scene frames, and one property per knob of ``node_defs/vom_matte.yaml`` (read from the
generated ``node_def.json``). The operator writes a shot file, runs ``vom render --progress json`` (modal
from the UI, with progress in the status bar and Esc to cancel; blocking from scripts and ``blender -b``),
then loads the alpha sequence as an Image node timed like the plate and wires a Set Alpha onto the plate.

API notes: run with Blender 3.4 and 4.5. ``scene.node_tree``/``use_nodes`` are the compositor tree in
3.x and 4.x; 5.0 replaced them (``scene.compositing_node_group``) and dropped the Composite node: not
supported (``_tree`` says so where ``node_tree`` is gone). The Composite node has no Alpha input in 4.x
(a Set Alpha feeds it instead).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy

from . import common, core

ADDON = __package__ or "vom_matte"
ALPHA_NODE = "{} VOM Alpha"
OBJECT_ALPHA_NODE = "{} VOM Alpha {}"  # another object's sequence ({object} in Output): plate, object
SET_ALPHA_NODE = "{} VOM Set Alpha"
SEPARATE_NODE = "{} VOM Separate Alpha"
ROTO_SCENE = ".vom_roto_render"


@dataclass
class Plan:
    """A prepared render: what the operator runs and what it wires afterwards."""

    cmd: list[str]
    shot_file: Path
    fields: dict[str, Any]
    plate_node: str
    timing: core.Timing
    first_file_frame: int
    scene: str = ""  # the scene it was started in: the matte is wired there, whichever the window shows at the end
    colour_from_plate: bool = False  # the colour space came from the plate node's (said in a colour warning)
    dropped: list[str] = field(default_factory=list)  # linked object nodes wiring removed
    moved: list[str] = field(default_factory=list)  # objects whose links moved from a layer output to their own node
    undo: common.WorkUndo | None = None  # what prepare wrote, taken back if vom refuses the render
    cwd_out: str = ""  # Output typed relative without // in a saved .blend: the working folder it went under
    # roto file -> what the artist knows it as ("the Mask 'hero' at scene frame 12"): vom's words name the file
    rotos: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- helpers


def _tree(scene: Any) -> Any:
    if not hasattr(scene, "node_tree"):  # 5.0 replaced it (compositing_node_group, no Composite node)
        raise core.HostError(f"Blender {bpy.app.version_string}: the compositor changed in 5.0; this add-on "
                             "supports Blender 3.4 to 4.5")
    return scene.node_tree


def _abspath(path: str, setting: str | None = None) -> str:
    """Blender's ``//`` resolved against the .blend, then anything still relative against Blender's working
    folder (an unsaved file): vom would resolve it against the shot file's folder, the Image node against
    Blender's, and the frames would land where the comp never looks. A ``//`` path typed in a ``setting`` of an
    unsaved file is refused: it meant Blender's working folder now and the .blend's folder once saved, so the next
    render wrote elsewhere and the mattes were left behind."""
    if setting is not None and path.startswith("//") and not bpy.data.filepath:
        raise core.HostError(f"{setting} {path}: // means beside the .blend file, which is not saved yet; save it, "
                             "or give an absolute path")
    # ~ as vom reads it in a shot file (it made a folder named ~ under the working folder: review)
    # a .. collapsed as text, as Blender's Image node reads it whatever link is before it (QA, Blender 3.4: session 53
    # read it the system's way, the link's target's parent, and vom matted another plate than the one shown); vom
    # is given the collapsed path, so both read one file
    return os.path.abspath(os.path.expanduser(bpy.path.abspath(path))) if path else ""


def _preference(context: Any) -> str:
    addon = context.preferences.addons.get(ADDON)
    return str(getattr(addon.preferences, "vom_executable", "") or "") if addon else ""


def _plate_source(node: Any) -> tuple[str, core.Timing, tuple[int, int], str]:
    """The plate's vom pattern, its timing, its size (0, 0 when unknown) and Blender colour space."""
    if node.bl_idname == "CompositorNodeImage":
        img = node.image
        if img is None:
            raise core.HostError(f"Plate node {node.name!r} has no image; open the plate's image sequence in it")
        if img.source != "SEQUENCE" or img.packed_file is not None:
            raise core.HostError(f"Plate node {node.name!r}: image {img.name!r} is not an image sequence on disk "
                                 f"(source {img.source}); vom reads EXR/DPX/TIFF/PNG sequences")
        pattern, _, _ = core.sequence_pattern(_abspath(img.filepath))
        timing = core.Timing(node.frame_start, node.frame_offset, node.frame_duration)
        return pattern, timing, tuple(img.size), img.colorspace_settings.name
    if node.bl_idname == "CompositorNodeMovieClip":
        clip = node.clip
        if clip is None:
            raise core.HostError(f"Plate node {node.name!r} has no movie clip")
        if clip.source != "SEQUENCE":
            raise core.HostError(f"Plate node {node.name!r}: clip {clip.name!r} is a movie file; vom reads image "
                                 "sequences: convert it to EXR frames first")
        pattern, number, _ = core.sequence_pattern(_abspath(clip.filepath))
        timing = core.clip_timing(number, clip.frame_start, clip.frame_offset, clip.frame_duration)
        return pattern, timing, tuple(clip.size), clip.colorspace_settings.name
    raise core.HostError(f"Plate node {node.name!r} is a {node.bl_label} node; pick an Image node with an image "
                         "sequence or a Movie Clip node")


def _roto_from_node(tree: Any, name: str, keyframes: list[int]) -> dict[int, str]:
    """{scene keyframe: roto file} from an Image node: a still for one keyframe, or a sequence."""
    node = tree.nodes.get(name)
    if node is None or node.bl_idname != "CompositorNodeImage":
        raise core.HostError(f"Roto node {name!r}: pick the Image node that holds the roto" if name
                             else "Roto node: empty; pick the Image node that holds the roto (or use a Mask)")
    img = node.image
    if img is None or img.source not in ("FILE", "SEQUENCE") or img.packed_file is not None:
        raise core.HostError(f"Roto node {name!r}: its image has no file on disk; save the roto as EXR (or use a "
                             "Mask)")
    path = _abspath(img.filepath)
    if img.source == "FILE":
        if len(keyframes) > 1:
            raise core.HostError(f"keyframes: the Roto node {name!r} holds one still image, so it can be the roto of "
                                 f"one keyframe, not {len(keyframes)}; load a roto sequence or use a Mask")
        return {keyframes[0]: path}
    pattern, _, _ = core.sequence_pattern(path)
    timing = core.Timing(node.frame_start, node.frame_offset, node.frame_duration)
    return {k: core.frame_path(pattern, timing.file_frame(k)) for k in keyframes}


def _roto_from_mask(mask: Any, keyframes: list[int], size: tuple[int, int], work: Path,
                    timing: core.Timing, stem: str = "roto", artist_scene: Any = None) -> dict[int, str]:
    """Render the Mask at each keyframe to ``work/<stem>.<file frame>.exr`` in a temporary scene.

    An animated Mask is evaluated by the scene the artist works in, at its playhead: the temporary scene's frame
    alone baked every keyframe's roto as the Mask stood at the playhead (QA). ``artist_scene`` (the context's) is
    moved to each keyframe and back to its frame afterwards."""
    if mask is None:
        raise core.HostError("Roto mask: empty; pick the Mask datablock drawn on the keyframe")
    work.mkdir(parents=True, exist_ok=True)
    artist = artist_scene if artist_scene is not None else bpy.context.scene
    playhead = (artist.frame_current, artist.frame_subframe)
    scene = bpy.data.scenes.new(ROTO_SCENE)
    try:
        scene.use_nodes = True
        tree = _tree(scene)
        for n in list(tree.nodes):
            tree.nodes.remove(n)
        mnode = tree.nodes.new("CompositorNodeMask")
        mnode.mask = mask
        # the mask in RGB and alpha (the Composite node lost its Alpha input in 4.x: a Set Alpha does it)
        set_alpha = tree.nodes.new("CompositorNodeSetAlpha")
        set_alpha.mode = "REPLACE_ALPHA"
        tree.links.new(mnode.outputs[0], set_alpha.inputs["Image"])
        tree.links.new(mnode.outputs[0], set_alpha.inputs["Alpha"])
        comp = tree.nodes.new("CompositorNodeComposite")
        tree.links.new(set_alpha.outputs["Image"], comp.inputs["Image"])
        r = scene.render
        r.resolution_x, r.resolution_y = size
        r.resolution_percentage = 100
        r.image_settings.file_format = "OPEN_EXR"
        r.image_settings.color_mode = "RGBA"
        r.image_settings.color_depth = "16"
        paths = {}
        for k in keyframes:
            path = work / f"{stem}.{timing.file_frame(k):04d}.exr"
            new = work / f"{stem}.new.{timing.file_frame(k):04d}.exr"  # beside it: kept only if the mask changed
            new.unlink(missing_ok=True)  # an earlier, interrupted render's must not pass for this one's
            artist.frame_set(k)  # the Mask's animation evaluated at the keyframe
            scene.frame_current = k
            r.filepath = str(new)
            bpy.ops.render.render(write_still=True, scene=scene.name)
            if not new.is_file():
                raise core.HostError(f"Roto mask {mask.name!r}: rendering frame {k} wrote no {new}")
            common.keep_unless_changed(new, path)
            paths[k] = str(path)
        return paths
    finally:
        try:  # the playhead back first: a failure removing the scene must not leave it moved (review)
            if (artist.frame_current, artist.frame_subframe) != playhead:
                artist.frame_set(playhead[0], subframe=playhead[1])
        finally:
            bpy.data.scenes.remove(scene)


_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dpx")  # an Output typed as another format's


def prepare(context: Any) -> Plan:
    """Resolve the settings and nodes into a shot file; HostError names the setting or node at fault."""
    scene = context.scene
    s = scene.vom_matte
    tree = _tree(scene)
    if tree is None:
        raise core.HostError("the scene has no compositor nodes; tick Use Nodes in the Compositor")
    vom = core.vom_executable(_preference(context))
    plate_node = tree.nodes.get(s.plate_node)
    if plate_node is None:
        raise core.HostError(f"Plate node {s.plate_node!r} is not in the compositor" if s.plate_node
                             else "Plate node: empty; pick the Image node of the plate")
    pattern, timing, size, colorspace = _plate_source(plate_node)
    if s.plate.strip():
        pattern = _abspath(s.plate.strip(), "Plate")
    delta = timing.file_frame(0)  # scene frame -> file frame is a shift
    objects = core.parse_objects(s.objects)
    if objects and s.keyframes.strip():
        raise core.HostError("keyframes and objects are both set: with objects, each object gives its own frames "
                             "(hero 1 50; dog 40); empty Keyframes")
    keyframes = core.parse_keyframes(s.keyframes) if not objects else []
    table = core.node_def()  # said before a Mask is baked, not by vom after it
    problem = common.settings_problem(table, {k["name"]: getattr(s, k["name"], None) for k in table["knobs"]})
    if problem:
        raise core.HostError(problem)
    drawn = dict(objects) if objects else {None: keyframes}
    core.check_scene_frames(timing, plate_node.name, s.frames, drawn)
    if s.frames.strip():
        frames = core.shift_frames(s.frames, delta)
    else:
        first, last = core.default_scene_frames(timing, scene.frame_start, scene.frame_end)
        frames = f"{first + delta}-{last + delta}"
    file_frames = [f for first, last, step in common.range_numbers(frames, core.HostError)
                   for f in range(first, last + 1, step)]
    core.check_plate_files(pattern, timing, plate_node.name, s.frames, [f - delta for f in file_frames], drawn)
    out = _abspath(s.out.strip(), "Output")
    typed = s.out.strip()
    # relative without //: Blender's working folder (as its own outputs read it), which a desktop launch makes $HOME
    # or /; said in the report when the .blend is saved, where beside it was likely meant (QA)
    cwd_out = os.getcwd() if typed and not typed.startswith("//") and not os.path.isabs(os.path.expanduser(typed)) \
        and bpy.data.filepath and os.path.realpath(os.getcwd()) != os.path.realpath(os.path.dirname(
            bpy.data.filepath)) else ""
    if not out:
        if not bpy.data.filepath:
            raise core.HostError("Output: empty and the .blend file is not saved; set Output (e.g. "
                                 "/shows/x/sh010/vom/sh010_alpha.####.exr) or save the file")
        out = core.default_out(bpy.data.filepath, scene.name, plate_node.name, core.pattern_digits(pattern))
    # each of these vom refused, naming the shot file this Analyze then took back (QA)
    stem, ext = os.path.splitext(os.path.basename(out))
    named = stem if ext.lower() in (".exr", *_IMAGE_EXTENSIONS) else os.path.basename(out)  # the name, as an example
    if not common.has_frame_token(out):
        raise core.HostError(f"Output {out}: no frame number token in its file name; vom writes a file a frame, "
                             f"numbered where the token is: e.g. {named}.####.exr (#### or @@@@, one a digit; %04d; "
                             f"$F4)")
    if ext.lower() != ".exr":
        example = f"{named}.exr"
        raise core.HostError(f"Output {out}: vom writes OpenEXR files (a linear float alpha); end the name in .exr: "
                             f"e.g. {example}")
    names: list[str | None] = [*objects] or [None]
    for _, _, channel in core.mattes({"out": out, "channel": s.channel, "objects": objects}):
        core.alpha_socket(channel)  # a channel Blender cannot wire is an error before the render, not after
    if common.frame_tokens(out) > 1:  # (the rotos were baked into another Output's work folder first, QA)
        raise core.HostError(f"Output {out}: {common.frame_tokens(out)} frame tokens in its file name; expected one "
                             f"(####, %04d or $F4)")
    if core.OBJECT_TOKEN in out and not objects:
        raise core.HostError(f"Output {out}: {core.OBJECT_TOKEN} names each object's sequence, and Objects is empty")
    check_output_free(scene, plate_node, out, objects, default=not typed)
    for _, matte, _ in core.mattes({"out": out, "objects": objects}):
        # vom refuses it too, but only after the shot file beside it is made
        same = common.same_files(pattern, matte)
        hit = None if same else common.writes_over(pattern, matte, file_frames)
        if same or hit is not None:
            raise core.HostError(f"Output {out}: names the plate's own files ({pattern}"
                                 f"{'' if hit is None else f', frame {hit}'}); rendering there would write over the "
                                 f"plate. Set another Output")
    _data_colorspace()  # before the render, not after it
    work = core.work_dir(out)
    if os.path.realpath(work) in _RUNNING:  # another plate's or scene's render of this Output (its rotos baked over)
        raise core.HostError(f"Output {out}: a render of it is running (work folder {work}); wait for it, or press "
                             f"Esc to cancel it, before starting another")
    undo = common.WorkUndo(work)
    try:
        plan = _write_plan(context, vom, tree, plate_node, pattern, timing, size, colorspace, frames, out, objects,
                           keyframes, names, work, undo)
        undo.wrote()
        plan.cwd_out = cwd_out
        return plan
    except BaseException:  # a roto or mask found wrong after the folder was made: nothing of this Analyze is left
        undo.undo()
        raise


def _write_plan(context: Any, vom: str, tree: Any, plate_node: Any, pattern: str, timing: core.Timing,
                size: tuple[int, int], colorspace: str, frames: str, out: str, objects: dict[str, list[int]],
                keyframes: list[int], names: list[str | None], work: Path, undo: common.WorkUndo) -> Plan:
    """``prepare``'s writing half: the work folder, the rotos baked there, the shot file (``undo`` takes them back)."""
    scene = context.scene
    s = scene.vom_matte
    delta = timing.file_frame(0)
    knobs = {name: getattr(s, name) for name in core.shot_knob_names()}
    if knobs.get("cache"):
        knobs["cache"] = _abspath(str(knobs["cache"]), "Cache")
    model = str(knobs.get("model") or "").strip()
    if model and model not in common.SHIPPED_MODELS:  # a checkpoint beside the .blend (//weights/x.safetensors), as
        # Cache and Output are (a bare name was read by vom from the hidden work folder the shot file is in, QA)
        knobs["model"] = _abspath(model, "Model")
        problem = common.model_problem(model, knobs["model"])
        if problem:
            raise core.HostError(problem)
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise core.HostError(f"Output {out}: cannot create the folder {work} ({e.strerror or e})") from None
    if s.roto_source == "MASK" and (size[0] <= 0 or size[1] <= 0):
        pct = scene.render.resolution_percentage / 100
        size = (int(scene.render.resolution_x * pct), int(scene.render.resolution_y * pct))
    rotos_of: dict[str | None, dict[int, str]] = {}
    for name in names:  # each object's roto is the Mask, or the Image node, of its name
        frames_of = objects[name] if name is not None else keyframes
        if s.roto_source == "MASK":
            mask = s.roto_mask if name is None else bpy.data.masks.get(name)
            if mask is None and name is not None:
                raise core.HostError(f"objects: {name!r} is the name of no Mask (with Roto: Mask, each object's roto "
                                     f"is the Mask of its name; masks: {', '.join(m.name for m in bpy.data.masks)})")
            rotos_of[name] = _roto_from_mask(mask, frames_of, size, work, timing,
                                             "roto" if name is None else f"roto_{name}", scene)
        elif name is None:
            rotos_of[name] = _roto_from_node(tree, s.roto_node, frames_of)
        else:
            if tree.nodes.get(name) is None:
                raise core.HostError(f"objects: {name!r} is the name of no node (with Roto: Image node, each object's "
                                     f"roto is the Image node of its name)")
            try:
                rotos_of[name] = _roto_from_node(tree, name, frames_of)
            except core.HostError as e:
                raise core.HostError(f"objects: {name!r} (its frames {' '.join(map(str, frames_of))}): {e}") from None
    if s.colorspace_from_plate:
        knobs["colorspace"] = core.colorspace_for(colorspace)
    file_frames = {n: {timing.file_frame(k): p for k, p in r.items()} for n, r in rotos_of.items()}
    fields = core.shot_fields(knobs, plate=pattern, frames=frames, out=out, keyframes=file_frames.get(None, {}),
                              objects={n: r for n, r in file_frames.items() if n is not None})
    shot_file = core.write_text_atomic(work / "shot.yaml", core.shot_yaml(fields))
    bounds = core.frame_bounds(frames)
    return Plan(cmd=core.build_render_command(vom, shot_file), shot_file=shot_file, fields=fields,
                plate_node=plate_node.name, timing=timing, first_file_frame=bounds[0] if bounds else delta,
                scene=scene.name, colour_from_plate=bool(s.colorspace_from_plate), undo=undo,
                rotos=core.roto_sources(rotos_of, s.roto_source == "MASK",
                                   s.roto_mask.name if s.roto_mask is not None else "", s.roto_node))


ROLE = "vom_role"  # a custom property on the nodes the add-on made: "alpha" or "set_alpha" (names change)
OUT_PROP = "vom_out"  # on an alpha node: the Output pattern it loads (its folder as written, not remapped)
OWNER = "vom_owner"  # on an alpha node: "<scene>/<plate node>" whose render wrote what it loads
OBJECT_NODES = "vom_object_nodes"  # on an alpha node: the names of its plate's other objects' alpha nodes, by object


def object_nodes(tree: Any, alpha: Any) -> dict[str, Any]:
    """{object: node} of the other objects' alpha nodes the add-on made beside ``alpha`` (``{object}`` Outputs),
    as ``alpha`` records them: their names follow a renamed plate, so they are not found by name."""
    if alpha is None:
        return {}
    names = dict(alpha.get(OBJECT_NODES) or {})
    return {obj: tree.nodes[n] for obj, n in names.items() if n in tree.nodes}


def _role(node: Any, role: str, name_format: str) -> bool:
    """Whether ``node`` is one the add-on made for ``role`` (tagged, or named so by a version before the tags)."""
    return node.get(ROLE) == role or node.name.endswith(name_format.format(""))


def _feeding(socket: Any) -> Any:
    """The node whose output is linked into ``socket`` (through a Separate node the add-on made), or None."""
    if not socket.links:
        return None
    node = socket.links[0].from_node
    if node.name.endswith(SEPARATE_NODE.format("")) and node.inputs[0].links:
        node = node.inputs[0].links[0].from_node
    return node


def own_nodes(tree: Any, plate: Any) -> tuple[Any, Any]:
    """(alpha Image node, Set Alpha) that the add-on made for ``plate``, or None for each: the Set Alpha the
    plate feeds and the alpha node feeding it (a renamed plate node keeps them), else the nodes by name."""
    set_alpha = next((lk.to_node for lk in plate.outputs["Image"].links
                      if _role(lk.to_node, "set_alpha", SET_ALPHA_NODE)), None)
    alpha = None
    if set_alpha is not None:
        node = _feeding(set_alpha.inputs["Alpha"])
        if node is not None and _role(node, "alpha", ALPHA_NODE):
            alpha = node
    if set_alpha is None:
        set_alpha = tree.nodes.get(SET_ALPHA_NODE.format(plate.name))
    if alpha is None:
        alpha = tree.nodes.get(ALPHA_NODE.format(plate.name))
    return alpha, set_alpha


def _alpha_pattern(node: Any) -> str | None:
    """The Output pattern an alpha node loads: its image's folder and the tagged name (the name's own digits are not
    taken for the frame); the image's sequence where it holds another name, the tag where it has no image. The
    folder is read from the image, which File > Save As remaps: the tag, a custom property, is not remapped, and
    after a Save As into another folder named one that does not exist (another plate's render replaced the matte,
    QA)."""
    tagged = str(node.get(OUT_PROP) or "")
    image = getattr(node, "image", None)
    if image is None or not image.filepath:
        return _abspath(tagged) if tagged else None
    loaded = _abspath(image.filepath)
    if tagged and common.frame_number(tagged, os.path.basename(loaded)) is not None:
        return os.path.join(os.path.dirname(loaded), os.path.basename(tagged))
    try:
        return core.sequence_pattern(loaded)[0]
    except core.HostError:
        return None


def _owner(scene: Any, plate: Any) -> str:
    """What an alpha node's OWNER tag says: the scene and plate node whose render wrote the files it loads."""
    return f"{scene.name}/{plate.name}"


def check_output_free(scene: Any, plate: Any, out: str, objects: Any = None, default: bool = False) -> None:
    """HostError when another plate's alpha node, in this scene or another of the .blend, loads ``out`` (or an
    object's sequence of it): rendering this plate there would replace the matte that node shows, frame by frame,
    and both renders would report success. ``default``: ``out`` is the default of an empty Output, which the advice
    then does not offer again."""
    tree = _tree(scene)
    mine, _ = own_nodes(tree, plate)  # compared by name: bpy makes a new Python object at each access
    own = {n.name for n in object_nodes(tree, mine).values()} | ({mine.name} if mine is not None else set())
    outs = [o for _, o, _ in core.mattes({"out": out, "objects": objects or {}})]
    owner = _owner(scene, plate)
    for other in bpy.data.scenes:
        other_tree = getattr(other, "node_tree", None)
        if other_tree is None:
            continue
        for node in other_tree.nodes:
            if other == scene and node.name in own:
                continue
            is_alpha = node.bl_idname == "CompositorNodeImage" and (_role(node, "alpha", ALPHA_NODE)
                                                                     or node.get(ROLE) == "object_alpha")
            theirs = _alpha_pattern(node) if is_alpha else None
            # a scene made by Full Copy shows this plate's own files: its alpha node came along, tagged with the scene
            # and plate whose render wrote them (the copy's own render there is refused: it names another scene)
            if theirs is not None and any(common.same_files(theirs, o) for o in outs) and node.get(OWNER) != owner:
                where = "" if other == scene else f" in scene {other.name!r}"
                advice = ("Output is empty, and this is its default (beside the .blend, named after the scene and "
                          "the plate node): set an Output" if default else "Set another Output (empty: one beside "
                          "the .blend named after the scene and the plate node)")
                raise core.HostError(f"Output {out}: node {node.name!r}{where} loads it, the matte of another "
                                     f"plate node; rendering {plate.name!r} there would replace that matte. "
                                     f"{advice}, or delete {node.name!r}")


def _named(node: Any, name: str, role: str) -> None:
    node.name = node.label = name  # Blender keeps a name unique (a ".001" suffix when taken)
    node[ROLE] = role


def wire_alpha(scene: Any, plan: Plan) -> Any:
    """Load the rendered alpha sequence as an Image node timed like the plate and put a Set Alpha after the
    plate (links that left the plate now leave the Set Alpha). Re-running reuses and reloads both nodes, also
    after the plate node was renamed (they take its new name)."""
    tree = _tree(scene)
    plate = tree.nodes[plan.plate_node]
    (_, first_out, first_channel), *others = core.mattes(plan.fields)  # the Set Alpha takes the first object's
    path = core.frame_path(first_out, plan.first_file_frame)
    for _, out, _ in core.mattes(plan.fields):  # before any node is made or link moved: a failed load left an empty one
        if not os.path.isfile(core.frame_path(out, plan.first_file_frame)):
            raise core.HostError(f"{core.frame_path(out, plan.first_file_frame)}: the render ended but this frame of "
                                 f"its output is not there (removed meanwhile?); render again")
    alpha, set_alpha = own_nodes(tree, plate)
    if alpha is None:
        alpha = tree.nodes.new("CompositorNodeImage")
        px, py = absolute(plate)  # the add-on's nodes are made outside any frame the plate is in
        place(tree, alpha, px, py - 320, plate.parent)
    if alpha.name != ALPHA_NODE.format(plate.name) or alpha.get(ROLE) != "alpha":
        _named(alpha, ALPHA_NODE.format(plate.name), "alpha")
    alpha[OUT_PROP] = _relative(first_out)  # the files it loads ({object} resolved: another plate's Output is
    # compared to it)
    alpha[OWNER] = _owner(scene, plate)
    # the artist's links from each output before the load (an object's layer output of one file goes out of use when
    # its matte moves to a sequence of its own: the links follow it, below)
    linked_before = {o.name: [lk.to_socket for lk in o.links] for o in alpha.outputs if o.links}
    _load_sequence(alpha, path, plan.timing)
    socket = alpha.outputs.get(core.alpha_socket(first_channel))
    if socket is None:
        raise core.HostError(f"{path}: Blender shows no output {core.alpha_socket(first_channel)!r} "
                             f"(it shows {[o.name for o in alpha.outputs]})")
    if socket.type == "RGBA":
        # <layer>.A with an rgba output: the layer holds R, G, B and A, and Blender shows it as one colour pass;
        # linked into Set Alpha's Alpha it would become the plate's grey. Its A channel is the matte.
        # the add-on's Separate node the alpha node feeds already (a renamed plate keeps it), else one by name
        sep = next((lk.to_node for lk in socket.links if lk.to_node.name.endswith(SEPARATE_NODE.format(""))), None)
        if sep is not None and sep.name != SEPARATE_NODE.format(plate.name):
            sep.name = sep.label = SEPARATE_NODE.format(plate.name)
        socket = _separated_alpha(tree, socket, SEPARATE_NODE.format(plate.name), absolute(alpha), alpha.parent)

    if set_alpha is None:
        set_alpha = tree.nodes.new("CompositorNodeSetAlpha")
        px, py = absolute(plate)
        place(tree, set_alpha, px + 280, py - 80, plate.parent)
    if set_alpha.name != SET_ALPHA_NODE.format(plate.name) or set_alpha.get(ROLE) != "set_alpha":
        _named(set_alpha, SET_ALPHA_NODE.format(plate.name), "set_alpha")
    set_alpha.mode = "APPLY"  # Blender's compositor works premultiplied: RGB is multiplied by the matte
    plate_out = plate.outputs["Image"]
    downstream = [(lk.to_socket) for lk in plate_out.links if lk.to_node != set_alpha]
    for lk in list(plate_out.links):
        if lk.to_node != set_alpha:
            tree.links.remove(lk)
    tree.links.new(plate_out, set_alpha.inputs["Image"])
    tree.links.new(socket, set_alpha.inputs["Alpha"])
    for to_socket in downstream:
        tree.links.new(set_alpha.outputs["Image"], to_socket)
    if not set_alpha.outputs["Image"].links:  # nothing downstream yet: feed an unconnected Composite
        for n in tree.nodes:
            if n.bl_idname == "CompositorNodeComposite" and not n.inputs["Image"].links:
                tree.links.new(set_alpha.outputs["Image"], n.inputs["Image"])
                break
    # the other objects' sequences ({object}): a node each, reused (and renamed after the plate); those of objects
    # gone from the shot, now first, or now in one file are removed: they showed mattes no render writes any more
    had = object_nodes(tree, alpha)
    kept: dict[str, str] = {}
    for i, (name, out, channel) in enumerate(others, start=1):
        if out == first_out or name is None:  # a layer of the same file: the alpha node's output of that name
            continue
        node = had.pop(name, None)
        if node is None:
            node = tree.nodes.new("CompositorNodeImage")
            ax, ay = absolute(alpha)
            place(tree, node, ax, ay - 300 * i, plate.parent)
        if node.name != OBJECT_ALPHA_NODE.format(plate.name, name):
            _named(node, OBJECT_ALPHA_NODE.format(plate.name, name), "object_alpha")
        node[ROLE] = "object_alpha"
        node[OUT_PROP] = _relative(out)
        node[OWNER] = _owner(scene, plate)
        _load_sequence(node, core.frame_path(out, plan.first_file_frame), plan.timing)
        kept[name] = node.name
        layer_out = alpha.outputs.get(name)
        to = node.outputs.get(core.alpha_socket(channel))
        if name in linked_before and layer_out is not None and not layer_out.enabled and to is not None:
            # the object was a layer of one file and is now a sequence of its own: its layer output shows nothing
            # (the comp fed from it went black without a word, QA); its links now leave its own node
            for lk in list(layer_out.links):
                tree.links.remove(lk)
            for to_socket in linked_before[name]:
                tree.links.new(to, to_socket)
            plan.moved.append(name)
    for node in had.values():
        if any(o.links for o in node.outputs):  # the artist's links from it go with it: said in the report
            plan.dropped.append(node.name)
        tree.nodes.remove(node)
    alpha[OBJECT_NODES] = kept
    return alpha


def _relative(path: str) -> str:
    """``path`` as Blender stores paths the artist picks: ``//``-relative to a saved .blend when the preference
    says so (Blender's default), so that a project moved or opened elsewhere still finds its mattes."""
    prefs = getattr(bpy.context, "preferences", None)
    relative = prefs is None or getattr(prefs.filepaths, "use_relative_paths", True)
    if not (relative and bpy.data.filepath):
        return path
    try:
        return str(bpy.path.relpath(path))
    except ValueError:  # another drive (Windows): no relative path exists
        return path


def _data_colorspace() -> str:
    """The colour configuration's data space (``Non-Color`` in Blender's own; ``Raw``, ``Utility - Raw`` in studio
    configs); HostError when it has none by a known name: a matte loaded as colour would be transformed."""
    prop = bpy.types.ColorManagedInputColorspaceSettings.bl_rna.properties["name"]
    spaces = [item.identifier for item in prop.enum_items]
    data = core.data_colorspace(spaces)
    if data is None:
        raise core.HostError(f"the colour configuration (OCIO) has no data colour space "
                             f"({', '.join(core.DATA_COLORSPACES)}; it offers {', '.join(spaces)}): the matte "
                             f"cannot be loaded as data")
    return data


def _load_sequence(node: Any, path: str, timing: core.Timing) -> None:
    """Load the alpha sequence of ``path`` (a frame of it) into the Image ``node``, timed like the plate."""
    img = node.image
    if img is None or os.path.normpath(_abspath(img.filepath)) != os.path.normpath(path):
        img = bpy.data.images.load(path, check_existing=False)
    img.filepath = _relative(path)
    img.source = "SEQUENCE"
    img.colorspace_settings.name = _data_colorspace()  # a matte is data: no view or colour transform
    img.reload()
    node.image = img
    node.frame_start, node.frame_offset = timing.start, timing.offset
    node.frame_duration = timing.duration
    node.use_cyclic, node.use_auto_refresh = False, True


# A node's drawn height, about (``dimensions`` stay 0 until an editor draws the tree: a render from a script)
NODE_HEIGHT = 200.0


def place(tree: Any, node: Any, x: float, y: float, frame: Any = None) -> None:
    """``node`` at (x, y) in the editor, or as far below as it takes to clear the nodes already there (a Composite or
    Viewer beside the plate was covered by the Set Alpha). In ``frame`` (the plate's Frame) when it is in one: a node
    drawn inside a Frame without belonging to it stays behind when the Frame is moved."""
    for _ in range(50):
        if not any(overlaps(other, x, y, node.width) for other in tree.nodes
                   if other != node and other.bl_idname != "NodeFrame"):
            break
        y -= 100.0
    if frame is not None:
        node.parent = frame
        fx, fy = absolute(frame)
        node.location = (x - fx, y - fy)  # a framed node's location is the frame's plus its own
    else:
        node.location = (x, y)


def absolute(node: Any) -> tuple[float, float]:
    """A node's location in the editor: a node in a Frame holds it relative to the frame (frames in frames too)."""
    x, y = node.location.x, node.location.y
    parent = getattr(node, "parent", None)
    while parent is not None:
        x, y = x + parent.location.x, y + parent.location.y
        parent = getattr(parent, "parent", None)
    return x, y


def overlaps(other: Any, x: float, y: float, width: float) -> bool:
    """Whether a node at (x, y) (its top left, in the editor; y grows upwards) of ``width`` covers part of
    ``other``."""
    ox, oy = absolute(other)
    height = other.dimensions.y or NODE_HEIGHT
    return x < ox + other.width and ox < x + width and y - NODE_HEIGHT < oy and oy - height < y


def _separated_alpha(tree: Any, colour: Any, name: str, location: tuple[float, float], frame: Any = None) -> Any:
    """The alpha output of a Separate node (reused by name) fed by the colour output ``colour``."""
    sep = tree.nodes.get(name)
    if sep is None:
        # Separate Color since Blender 3.3; Separate RGBA before it (and removed in 4.0)
        kind = ("CompositorNodeSeparateColor" if hasattr(bpy.types, "CompositorNodeSeparateColor")
                else "CompositorNodeSepRGBA")
        sep = tree.nodes.new(kind)
        sep.name = sep.label = name
        place(tree, sep, location[0] + 200, location[1], frame)
    if hasattr(sep, "mode"):
        sep.mode = "RGB"
    tree.links.new(colour, sep.inputs[0])
    out = sep.outputs.get("Alpha") or sep.outputs.get("A")
    if out is None:
        raise core.HostError(f"node {name!r} shows no alpha output (it shows {[o.name for o in sep.outputs]})")
    return out


# ------------------------------------------------------------------------------------------- bpy types


def _knob_property(knob: dict[str, Any]) -> Any:
    kw: dict[str, Any] = {"name": knob["label"], "description": knob["help"]}
    default, rng = knob["default"], knob.get("range")
    if knob["type"] == "enum":
        return bpy.props.EnumProperty(items=[(c, c, "") for c in knob["choices"]], default=default, **kw)
    if knob["type"] == "int":
        lo, hi = (int(rng[0]), int(rng[1])) if rng else (-2**31, 2**31 - 1)
        return bpy.props.IntProperty(default=int(default or 0), min=lo, max=hi, **kw)
    if knob["type"] == "float":
        flo, fhi = (float(rng[0]), float(rng[1])) if rng else (-1e30, 1e30)
        return bpy.props.FloatProperty(default=float(default or 0), min=flo, max=fhi, **kw)
    if knob["type"] == "bool":
        return bpy.props.BoolProperty(default=bool(default), **kw)
    if knob["type"] == "path":
        kw["subtype"] = "DIR_PATH" if knob["name"] == "cache" else "FILE_PATH"
    return bpy.props.StringProperty(default="" if default is None else str(default), **kw)


def _settings_class() -> type:
    notes: dict[str, Any] = {
        "plate_node": bpy.props.StringProperty(
            name="Plate node", description="The Image node (image sequence) or Movie Clip node of the plate"),
        "roto_source": bpy.props.EnumProperty(
            name="Roto", default="NODE",
            items=[("NODE", "Image node", "A roto image (a still for one keyframe, or a sequence) in an Image node"),
                   ("MASK", "Mask", "A Mask datablock, rendered to EXR at each keyframe")]),
        "roto_node": bpy.props.StringProperty(name="Roto node", description="The Image node holding the roto"),
        "roto_mask": bpy.props.PointerProperty(type=bpy.types.Mask, name="Roto mask",
                                               description="The Mask drawn on the keyframe(s)"),
        "colorspace_from_plate": bpy.props.BoolProperty(
            name="Colour space from plate", default=True,
            description="Use the plate image's Blender colour space (Linear/Linear Rec.709, ACEScg, sRGB, "
                        "Non-Color) instead of the Input colour space setting"),
    }
    for knob in core.node_def()["knobs"]:
        notes[knob["name"]] = _knob_property(knob)
    return type("VOM_PG_matte", (bpy.types.PropertyGroup,), {"__annotations__": notes})


class VOM_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON
    vom_executable: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="vom executable", subtype="FILE_PATH",
        description="The vom of the project's environment (install.py --blender records it; this overrides it)")

    def draw(self, context: Any) -> None:
        self.layout.prop(self, "vom_executable")
        try:
            self.layout.label(text=f"In use: {core.vom_executable(self.vom_executable)}")
        except core.HostError as e:
            self.layout.label(text=str(e), icon="ERROR")


# The renders running, by scene and plate node: a second one of the same plate would write the same Output and its
# rotos over the first's, each frame ending as whichever render wrote it last, both reporting success (QA).
_RUNNING: set[str] = set()


def _running_key(context: Any) -> str:
    return f"{context.scene.name}/{context.scene.vom_matte.plate_node}"


def _let_go_once_begun(job: core.RenderJob | None, plan: Plan | None) -> None:
    """Once vom has read the shot (its start event) nothing prepare wrote is taken back (``refused_before_start`` is
    false from then on): the files its undo kept aside go at once, not after the render (a Blender that crashed
    meanwhile left them for good: review)."""
    if job is not None and job.started and plan is not None and plan.undo is not None:
        plan.undo.discard()


class VOM_OT_render_matte(bpy.types.Operator):
    """Render the matte of the plate with vom and wire it onto the plate (Esc cancels)"""

    bl_idname = "node.vom_matte_render"
    bl_label = "Render VOM Matte"
    bl_options = {"REGISTER", "UNDO"}  # Ctrl+Z takes back the nodes it made and rewired, as one step

    _job: core.RenderJob | None = None
    _plan: Plan | None = None
    _timer: Any = None
    _keys: frozenset[str] = frozenset()  # what _start holds in _RUNNING

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None and hasattr(context.scene, "vom_matte")

    def _start(self, context: Any) -> bool:
        key = _running_key(context)
        if key in _RUNNING:  # before prepare(), which writes the shot file and bakes the rotos the render reads
            self.report({"ERROR"}, f"VOM Matte: the plate {context.scene.vom_matte.plate_node!r} of scene "
                                   f"{context.scene.name!r} is rendering; wait for it, or press Esc to cancel it, "
                                   f"before starting another")
            return False
        try:
            self._plan = prepare(context)
        except (core.HostError, OSError) as e:
            self.report({"ERROR"}, f"VOM Matte: {e}")
            return False
        try:
            self._job = core.RenderJob(self._plan.cmd, env=core.subprocess_env(),
                                       frame_offset=self._plan.timing.scene_frame(0))
        except OSError as e:  # vom cannot be started (a file that is not executable, a broken interpreter line)
            if self._plan.undo is not None:
                self._plan.undo.undo()
            self.report({"ERROR"}, f"VOM Matte: cannot run {self._plan.cmd[0]}: {e}")
            return False
        # the plate, and the Output's work folder however its path is spelt (a link to it: review)
        self._keys = frozenset({key, os.path.realpath(self._plan.shot_file.parent)})
        _RUNNING.update(self._keys)
        return True

    def _release(self) -> None:
        _RUNNING.difference_update(self._keys)
        self._keys = frozenset()

    def _finish(self, context: Any) -> set[str]:
        job, plan = self._job, self._plan
        assert job is not None and plan is not None
        try:
            refused = common.refused_before_start(job.returncode, job.started, job.cancelled, job.written)
            if plan.undo is not None:  # refused before any work: the work folder as it was (an earlier render's)
                plan.undo.undo() if refused else plan.undo.discard()
        finally:
            self._release()  # the job has ended (and its undo is done): another render of the plate may start
        shot = "nothing of it was kept" if refused else f"shot {plan.shot_file}"
        if job.cancelled and refused:  # before vom's start event: nothing was computed, so nothing is cached (QA: a
            # cache to resume from was promised)
            self.report({"WARNING"}, "VOM Matte: cancelled before vom began rendering; nothing was rendered, and "
                                     "nothing of it was kept")
            return {"CANCELLED"}
        if job.cancelled:
            kept = [plan.timing.scene_frame(f) for f in job.written]
            what = (f"{len(kept)} of {job.total or '?'} frames kept (scene frames {core.frame_ranges(kept)}, in "
                    f"{plan.fields['out']}; any other frame there is an earlier render's, of the roto as it was "
                    f"then)" if kept else "no frame was complete")
            resume = (f"the next render computes every frame again (this one ran without the cache: {job.cache_off})"
                      if job.cache_off else "the next render resumes from the cache")
            self.report({"WARNING"}, f"VOM Matte: cancelled; {what}; {resume} ({shot})")
            return {"CANCELLED"}
        frames_note = core.file_frames_note(plan.timing)  # vom's words name file frames: said in failures and warnings
        colour = ("set the plate image's Color Space, or untick Colour space from plate and choose Input colour "
                  "space" if plan.colour_from_plate else None)
        try:
            table: Any = core.node_def()  # read once (review: a file read at each line of a failure's report)
        except (OSError, ValueError):
            table = {"knobs": []}  # vom's words as they are

        def in_node_terms(words: str) -> str:  # vom's advice, in this add-on's terms (QA: "use --device cpu")
            return str(common.in_node_terms(words, colour, "set the node's Cache folder to a writable folder", table))

        if job.returncode != 0:
            failure = job.failure()
            # only beside words that name a frame, as with warnings (QA: beside a bad weights file's error)
            frames = f"; {frames_note}" if frames_note and common.names_frames(failure) else ""
            self.report({"ERROR"}, f"VOM Matte: {common.name_rotos(job.failure(in_node_terms), plan.rotos)} "
                                   f"[{shot}{frames}]")
            return {"CANCELLED"}
        scene = bpy.data.scenes.get(plan.scene) if plan.scene else context.scene
        if scene is None:
            self.report({"ERROR"}, f"VOM Matte: scene {plan.scene!r} was renamed or deleted during the render; the "
                                   f"matte is in {plan.fields['out']}: render again to wire it")
            return {"CANCELLED"}
        if getattr(scene, "node_tree", None) is None or scene.node_tree.nodes.get(plan.plate_node) is None:
            self.report({"ERROR"}, f"VOM Matte: plate node {plan.plate_node!r} was renamed or deleted during the "
                                   f"render; the matte is in {plan.fields['out']}: render again to wire it")
            return {"CANCELLED"}
        try:
            node = wire_alpha(scene, plan)
        except (core.HostError, RuntimeError) as e:
            self.report({"ERROR"}, f"VOM Matte: {e}")
            return {"CANCELLED"}
        done = job.last.raw.get("frames_written") if job.last else None
        objects = list(plan.fields.get("objects") or {})
        where = (f" (objects {', '.join(objects)}: the Set Alpha takes {objects[0]}'s; "
                 + ("each object has its output there)" if core.OBJECT_TOKEN not in str(plan.fields["out"])
                    else "the others' in their own nodes)")) if len(objects) > 1 else ""
        outs = [o for _, o, _ in core.mattes(plan.fields)]
        earlier = core.earlier_frames(outs, str(plan.fields["frames"]), plan.timing)
        # Frames with a step (1-5x2): the frames between have no matte file, and the comp loses the plate there
        bare = core.unmatted_frames(outs, str(plan.fields["frames"]), plan.timing,
                                    (scene.frame_start, scene.frame_end))
        said = f"VOM Matte: {done} frames of {plan.fields['out']} in node {node.name!r}{where}"
        # what vom warned of (a plate read as another colour space than its header says, a cache turned off...), in
        # the one report that says the result: the status bar shows the last report only
        notes, numbered = [], False
        for warning in (job.last.raw.get("warnings") or []) if job.last and job.last.event == "done" else []:
            numbered = numbered or common.names_frames(str(warning))
            notes.append(common.name_rotos(in_node_terms(str(warning)), plan.rotos))
        if numbered and frames_note:  # only beside words that name file frames (not a cache turned off)
            notes.append(frames_note)
        # why a running worker did not take the render (vom says so on stderr, shown only on failure: every render of
        # a second Blender in another environment loaded torch again, and nobody said why: QA)
        notes.extend(common.worker_note(job.output_tail))
        if plan.cwd_out:
            notes.insert(0, f"Output {scene.vom_matte.out.strip()} is relative: written under Blender's working folder "
                            f"{plan.cwd_out}, not beside the .blend (write //{scene.vom_matte.out.strip()} for that)")
        if plan.moved:
            notes.insert(0, f"the links from {node.name!r}'s output{'s' if len(plan.moved) > 1 else ''} "
                            f"{', '.join(plan.moved)} now leave {'their' if len(plan.moved) > 1 else 'its'} own "
                            f"node{'s' if len(plan.moved) > 1 else ''} (each object in a sequence of its own)")
        if plan.dropped:  # objects reordered or removed: the node of one that is now first (its matte in the alpha
            # node) or gone, with links of the artist's from it
            notes.insert(0, f"removed {', '.join(plan.dropped)} and its links (its object is now first, in node "
                            f"{node.name!r}, or no longer in Objects): link from that node again")
        if bare:
            typed = str(scene.vom_matte.frames).strip()
            why = f"not in Frames {typed}" if typed else "outside the frames rendered: the scene's range"
            notes.insert(0, f"scene frames {core.frame_ranges(bare)} have no matte ({why}): the Set Alpha shows the "
                            f"plate transparent there")
        if earlier:  # a narrowed re-render: the other frames of the Output are still there, from the old roto
            notes.insert(0, f"scene frames {core.frame_ranges(earlier)} show an earlier render's matte (not rendered "
                            f"now: widen Frames to render them again)")
        if notes:
            self.report({"WARNING"}, f"{said}; " + "; ".join(notes))
        else:
            self.report({"INFO"}, said)
        return {"FINISHED"}

    def execute(self, context: Any) -> set[str]:
        """Blocking: scripts and background mode (no event loop to drive a modal operator)."""
        if not self._start(context):
            return {"CANCELLED"}
        assert self._job is not None
        last = [""]

        def show(_: core.Progress) -> None:
            _let_go_once_begun(self._job, self._plan)
            text = self._job.status() if self._job else ""
            if text != last[0]:
                print(text, flush=True)
                last[0] = text

        self._job.wait(on_progress=show)
        return self._finish(context)

    def invoke(self, context: Any, event: Any) -> set[str]:
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        context.workspace.status_text_set(self._job.status() if self._job else "")
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> set[str]:
        job = self._job
        assert job is not None
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel()
        if event.type in ("TIMER", "ESC"):
            job.poll()
            _let_go_once_begun(job, self._plan)
            context.workspace.status_text_set(job.status())
            pct = job.percent()
            if pct is not None:
                context.window_manager.progress_update(pct)
            if not job.running:
                self._cleanup(context)
                return self._finish(context)
            return {"RUNNING_MODAL"}
        return {"PASS_THROUGH"}

    def cancel(self, context: Any) -> None:  # Blender ends the operator (file closed, quit)
        if self._job is not None:
            self._job.cancel()
            self._job.wait()
            plan, job = self._plan, self._job
            if plan is not None and plan.undo is not None:  # before vom began: nothing of it kept
                refused = common.refused_before_start(job.returncode, job.started, True, job.written)
                plan.undo.undo() if refused else plan.undo.discard()
        self._release()
        self._cleanup(context)

    def _cleanup(self, context: Any) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)


class VOM_PT_matte(bpy.types.Panel):
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "VOM"
    bl_label = "VOM Matte"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return getattr(context.space_data, "tree_type", "") == "CompositorNodeTree"

    def draw(self, context: Any) -> None:
        layout, scene = self.layout, context.scene
        s, tree = scene.vom_matte, _tree(scene)
        if tree is None:
            layout.label(text="Tick Use Nodes to use VOM Matte", icon="INFO")
            return
        layout.prop_search(s, "plate_node", tree, "nodes")
        layout.prop(s, "roto_source", expand=True)
        if s.roto_source == "NODE":
            layout.prop_search(s, "roto_node", tree, "nodes")
        else:
            layout.prop(s, "roto_mask")
        for name in ("keyframes", "objects", "frames", "out"):
            layout.prop(s, name)
        layout.operator(VOM_OT_render_matte.bl_idname, icon="RENDER_STILL")
        box = layout.box()
        box.label(text="Settings")
        box.prop(s, "colorspace_from_plate")
        for knob in core.node_def()["knobs"]:
            if knob["name"] not in ("keyframes", "objects", "frames", "out"):
                box.prop(s, knob["name"])


_CLASSES: list[type] = []


def register() -> None:
    _CLASSES[:] = [_settings_class(), VOM_AP_preferences, VOM_OT_render_matte, VOM_PT_matte]
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.vom_matte = bpy.props.PointerProperty(type=_CLASSES[0])


def unregister() -> None:
    del bpy.types.Scene.vom_matte
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    _CLASSES.clear()
