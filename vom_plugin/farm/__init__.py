"""Render-farm jobs built from a shot: Open Job Description bundles (openjd.py), OpenCue outlines (opencue.py)."""
