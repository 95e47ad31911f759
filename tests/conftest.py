"""Shared fixtures. Tests run on the CPU with small sizes; nothing here needs a GPU or the network."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

# Tests need nothing outside the checkout: data is made by the tests or ships in it (the demo shot,
# vom_plugin/data/demo, is the furry_cube validation shot).
REPO = Path(__file__).resolve().parents[1]

# Two cores are shared by the whole suite; keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Waiting threads sleep instead of spinning: on the shared, oversubscribed machine spinning made a
# 60-frame propagation test take 21 s instead of 1.9 s (see vom_plugin/engine/__init__.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def inst() -> types.ModuleType:
    """install.py loaded as a module (it is a script next to the package, not part of it)."""
    spec = importlib.util.spec_from_file_location("vom_install_under_test", REPO / "install.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
