"""Host adapters: the Nuke gizmo generator (gizmo.py) and adapter (nuke.py, stdlib + nuke only), the Blender
add-on (blender_addon/, stdlib + bpy only) and the generator of its knob table (blender_knobs.py)."""
