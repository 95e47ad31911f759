"""vom_plugin chooses how OpenMP threads wait (before torch loads): short spin when idle, sleep when busy."""

from __future__ import annotations

import os

import pytest

import vom_plugin


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    return monkeypatch


def test_idle_machine_gets_a_short_spin(clean_env):
    clean_env.setattr(os, "getloadavg", lambda: (0.2, 0.5, 0.5))
    vom_plugin._openmp_wait_default()
    assert os.environ["GOMP_SPINCOUNT"] == "10000" and "OMP_WAIT_POLICY" not in os.environ


def test_busy_machine_gets_sleeping_threads(clean_env):
    clean_env.setattr(os, "getloadavg", lambda: (1.7, 0.5, 0.5))
    vom_plugin._openmp_wait_default()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in os.environ


def test_no_load_average_means_sleeping_threads(clean_env):
    def unavailable():
        raise OSError("no load average")

    clean_env.setattr(os, "getloadavg", unavailable)
    vom_plugin._openmp_wait_default()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


@pytest.mark.parametrize("name, value", [("OMP_WAIT_POLICY", "ACTIVE"), ("GOMP_SPINCOUNT", "50")])
def test_a_users_setting_wins(clean_env, name, value):
    clean_env.setenv(name, value)
    clean_env.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    vom_plugin._openmp_wait_default()
    assert os.environ[name] == value
    other = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} - {name}
    assert not other & set(os.environ)
