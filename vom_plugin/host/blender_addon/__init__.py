"""VOM Matte for Blender's compositor: a Blender add-on (bpy and the standard library only, no torch).

``install.py --blender`` copies this folder into Blender's add-ons as ``vom_matte`` and records the project
environment's ``vom`` beside it; the operator runs ``vom render --progress json`` as a subprocess. The
bpy half is ``ui.py`` (imported on register only, so ``core.py`` is testable without Blender).
"""

# Blender reads bl_info without running the module: it must stay a literal.
bl_info = {
    "name": "VOM Matte",
    "author": "vom",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Compositor > Sidebar (N) > VOM",
    "description": "Video object matting: one coarse roto in, a soft, temporally stable alpha for every frame out",
    "category": "Compositing",
}


def register() -> None:
    from . import ui

    ui.register()


def unregister() -> None:
    from . import ui

    ui.unregister()
