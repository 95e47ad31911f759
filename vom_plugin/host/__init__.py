"""Host adapters: the Nuke gizmo generator (gizmo.py) and the Nuke adapter (nuke.py, stdlib + nuke only)."""
