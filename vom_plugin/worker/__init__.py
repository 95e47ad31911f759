"""``vom worker``: a process that keeps torch and the weights loaded, and renders what ``vom render`` hands it.

A ``vom render`` process spends more than a second importing torch and loading the weights before its first
frame: for a 24-frame re-render after a roto edit that is half of the artist's wait. When a worker is
listening, ``vom render`` (and so the Nuke and Blender hosts and farm tasks, which run ``vom render``)
validates its flags, hands the shot to the worker over a local Unix socket, and relays the worker's progress
events, errors and exit code as if it had rendered itself; SIGINT/SIGTERM to ``vom render`` stop the render
in the worker after the frame in hand, as in-process. With no worker, or one that cannot take the render
(busy, another vom version or environment), ``vom render`` renders in its own process.

Safety: the socket lives in a folder only its user can enter (``$XDG_RUNTIME_DIR``, else a 0700
``vom-UID`` folder in the temporary folder; ``VOM_WORKER_SOCKET`` names another path, whose folder must be
as private), the socket itself is 0600, and the worker checks the peer's user id on every connection.
Messages are JSON lines (never pickles).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any

from vom_plugin.errors import InputError

__all__ = ["environment", "private_folder_problem", "recv_lines", "send", "socket_path"]

# Environment that changes what a render computes or where it writes: a worker renders only for clients
# whose values are its own (threads change float sums; the cache and weights folders come from here).
# (ATEN_CPU_CAPABILITY picks torch's CPU kernels, ONEDNN_/DNNL_ oneDNN's arithmetic, NVIDIA_TF32_OVERRIDE the GPU's:
# each changes pixels, and a worker of another served clients its own, QA)
_ENV_PREFIXES = ("VOM_", "OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "CUDA_", "PYTORCH_", "TORCH_", "ATEN_",
                 "ONEDNN_", "DNNL_", "NVIDIA_TF32_")
_ENV_NAMES = ("HOME", "XDG_CACHE_HOME", "TMPDIR", "LD_PRELOAD")
# change no pixel; OpenMP's wait policy is also chosen by each vom process from the machine's load when it starts
# (``vom_plugin._openmp_wait_default``), so a worker and its clients differed at random and renders were refused
_ENV_IGNORED = ("VOM_WORKER_SOCKET", "VOM_WORKER_MEMO_MB", "VOM_EXECUTABLE", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                "ONEDNN_VERBOSE", "DNNL_VERBOSE")  # (oneDNN's logging)
# Folders given in the environment: compared as the folder each process means (a relative VOM_WEIGHTS_DIR
# names another folder in a worker started elsewhere), and the worker renders only when they agree.
_ENV_PATHS = ("VOM_WEIGHTS_DIR", "VOM_CACHE_DIR", "XDG_CACHE_HOME", "TMPDIR", "HOME")


def socket_path() -> Path:
    """``VOM_WORKER_SOCKET``, else ``$XDG_RUNTIME_DIR/vom-worker.sock``, else ``<tmp>/vom-UID/worker.sock``."""
    env = os.environ.get("VOM_WORKER_SOCKET", "").strip()
    if env:
        return Path(env).expanduser().absolute()
    runtime = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime:
        return Path(runtime) / "vom-worker.sock"
    return Path(tempfile.gettempdir()) / f"vom-{os.getuid()}" / "worker.sock"


def private_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` is not fit to hold the worker's socket (not a real folder, another owner, others may
    enter it), or None."""
    try:
        st = os.lstat(folder)
    except OSError as e:
        return f"{folder}: {e.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{folder} is not a folder"
    if st.st_uid != os.getuid():
        return f"{folder} belongs to another user (uid {st.st_uid})"
    if st.st_mode & 0o077:
        return f"{folder} can be entered by other users (mode {stat.S_IMODE(st.st_mode):o}; expected 700)"
    return None


def make_private_folder(folder: Path) -> None:
    """Create the socket's folder (0700) when missing, itself only (a mistyped VOM_WORKER_SOCKET made a chain of
    folders from the root); InputError when it cannot be made or is not private."""
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as e:
        missing = " (its parent folder does not exist: create it, or set another VOM_WORKER_SOCKET)" \
            if isinstance(e, FileNotFoundError) else ""
        raise InputError(f"worker socket folder {folder} cannot be created: {e.strerror}{missing}") from None
    problem = private_folder_problem(folder)
    if problem:
        raise InputError(f"worker socket folder: {problem}; the worker only listens where no other user can "
                         f"reach it (VOM_WORKER_SOCKET chooses another path)")


def environment() -> dict[str, Any]:
    """What a client and its worker must share for the worker's render to equal the client's own."""
    from vom_plugin import __version__, farm_threads
    from vom_plugin.locations import PACKAGE_DIR, env_folder

    env = {k: v for k, v in os.environ.items()
           if (k.startswith(_ENV_PREFIXES) or k in _ENV_NAMES) and k not in _ENV_IGNORED}
    for k in _ENV_PATHS:
        folder = env_folder(k)  # the folder each process means (a relative one names another elsewhere)
        if folder is not None:
            env[k] = str(folder)
    mask = os.umask(0)
    os.umask(mask)
    # the groups files are made with and folders opened by (a group joined since the worker started, or `sg show`:
    # its render was refused a folder the client may write, exit 1, or wrote files of another group: QA)
    groups = [os.getgid(), sorted(set(os.getgroups()))] if hasattr(os, "getgroups") else []
    return {"vom": __version__, "package": str(PACKAGE_DIR), "code": code_fingerprint(),
            "libraries": library_versions(), "env": dict(sorted(env.items())), "umask": mask, "cpus": usable_cpus(),
            "groups": groups, "farm_threads": farm_threads()}  # OpenCue's CUE_THREADS, where it counts


LIBRARIES = ("torch", "numpy", "OpenImageIO", "opencolorio", "safetensors", "zstandard")


def library_versions() -> dict[str, str]:
    """The installed versions of the libraries a render's pixels depend on, from their package metadata (torch is
    not imported): a worker records them when it starts, so one whose torch was upgraded under it (pip in the same
    environment) is told apart from the libraries a client would load now."""
    from importlib import metadata

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # a build of one's own, not installed by pip: nothing to compare
            out[name] = ""
    return out


def usable_cpus() -> int:
    """The CPUs this process may run on (``taskset``, a farm slot's affinity): torch's thread count follows them,
    and the thread count changes float sums (a 1-core render differs from a 2-core one by up to 2.4e-4)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def code_fingerprint() -> str:
    """A digest of the package's source files and the node definition (names, sizes, modification times): an
    editable install updated by a checkout keeps its version number, and a worker started before it would
    render with the old code. A stat a file (about 110): a few ms a request."""
    import hashlib

    from vom_plugin.nodedef import code_files

    h = hashlib.sha256()
    for f in code_files():
        try:
            st = f.stat()
        except OSError:  # removed while listed: part of the change
            continue
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall((json.dumps(message, default=str) + "\n").encode())


def recv_lines(sock: socket.socket, buffer: bytearray) -> list[dict[str, Any]] | None:
    """The complete JSON messages that arrived (waiting for at least one), or None at the end of the stream."""
    while b"\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)
        if len(buffer) > 64 << 20:
            raise ValueError("worker message over 64 MB")
    *lines, rest = bytes(buffer).split(b"\n")
    buffer[:] = rest
    return [json.loads(line) for line in lines if line.strip()]
