"""Numeric environment settings: defaults, values, and errors that name the variable."""

from __future__ import annotations

import pytest

from vom_plugin.engine.cache import max_bytes_from_env
from vom_plugin.engine.runner import state_interval
from vom_plugin.envvars import env_float
from vom_plugin.errors import InputError


def test_unset_or_empty_gives_the_default(monkeypatch):
    monkeypatch.delenv("VOM_TEST_X", raising=False)
    assert env_float("VOM_TEST_X", 3.5, expected="x") == 3.5
    monkeypatch.setenv("VOM_TEST_X", "  ")
    assert env_float("VOM_TEST_X", 3.5, expected="x") == 3.5
    monkeypatch.setenv("VOM_TEST_X", "0.25")
    assert env_float("VOM_TEST_X", 3.5, expected="x") == 0.25


@pytest.mark.parametrize("value, allow_zero, message", [
    ("lots", True, "VOM_TEST_X 'lots': expected seconds"),
    ("-1", True, "VOM_TEST_X '-1': expected seconds, finite and >= 0"),
    ("nan", True, "VOM_TEST_X 'nan': expected seconds, finite and >= 0"),
    ("inf", True, "VOM_TEST_X 'inf': expected seconds, finite and >= 0"),
    ("0", False, "VOM_TEST_X '0': expected seconds, finite and > 0"),
])
def test_bad_values_name_the_variable(monkeypatch, value, allow_zero, message):
    monkeypatch.setenv("VOM_TEST_X", value)
    with pytest.raises(InputError, match=message):
        env_float("VOM_TEST_X", 1.0, expected="seconds", allow_zero=allow_zero)


def test_the_two_settings_use_it(monkeypatch):
    monkeypatch.setenv("VOM_CACHE_MAX_GB", "0")
    with pytest.raises(InputError, match="VOM_CACHE_MAX_GB '0': expected a number of GiB, e.g. 20, finite and > 0"):
        max_bytes_from_env()
    monkeypatch.setenv("VOM_STATE_INTERVAL_S", "0")
    assert state_interval() == 0.0  # 0 = save a state after every frame
    monkeypatch.setenv("VOM_STATE_INTERVAL_S", "soon")
    with pytest.raises(InputError, match="VOM_STATE_INTERVAL_S 'soon': expected seconds between saved memory"):
        state_interval()


def test_folders_in_the_environment_are_read_as_shot_files_read_paths(monkeypatch, tmp_path):
    # VOM_CACHE_DIR='~/vc' made a folder named '~' wherever vom ran (a worker's own folder for a worker render)
    from vom_plugin import locations
    from vom_plugin.worker import environment

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOM_CACHE_DIR", " ~/vc ")
    monkeypatch.setenv("VOM_WEIGHTS_DIR", "w")
    monkeypatch.setenv("VOM_CLIPS_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", "~/xdg")
    assert locations.default_cache_dir() == tmp_path / "home" / "vc"
    assert locations.weights_dir() == tmp_path / "w"
    assert locations.clip_library_dir() == tmp_path / "home" / "xdg" / "vom-clips"
    env = environment()["env"]
    assert env["VOM_CACHE_DIR"] == str(tmp_path / "home" / "vc") and env["VOM_WEIGHTS_DIR"] == str(tmp_path / "w")
