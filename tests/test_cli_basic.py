"""The `vom` entry point: version, info, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

from vom_plugin import __version__
from vom_plugin.cli import main


def test_version_prints_package_version() -> None:
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0
    assert r.stdout.strip() == f"vom {__version__}"


def test_info_json_names_versions_and_locations(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VOM_CACHE_DIR", str(tmp_path / "c"))
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    import OpenImageIO
    import torch

    assert info["vom"] == __version__
    assert info["torch"] == torch.__version__
    assert info["OpenImageIO"] == OpenImageIO.__version__
    assert info["cache_dir"] == str(tmp_path / "c")
    assert info["devices"][0] == "cpu"
    assert "weights_dir" in info


def test_unknown_command_is_usage_error() -> None:
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "invalid choice: 'frobnicate'" in r.stderr
