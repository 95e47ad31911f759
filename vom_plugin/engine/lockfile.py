"""Lock files that many users and processes share (the render cache's ``.vom-cache.lock``, a training run's
``.vom-train.lock``): opened without following a link, made whole with their folder's group permissions, and
checked to be still the file at their path once locked. No import beyond the standard library: training imports it
on machines without the render's io modules."""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from pathlib import Path


def still_at(fd: int, path: Path) -> bool:
    """Whether the file open at ``fd`` is still the one at ``path``."""
    try:
        st, now = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino)


def open_lock(path: Path) -> int:
    """The lock file's descriptor. Made whole with the root's group permissions (``share_fd``; made by a temporary
    file linked into place, so no other user meets it private: a teammate's umask 077 left a lock no other member
    could open, which turned every render of theirs uncached, QA); another user's lock left read-only to us is
    opened read-only: flock needs no write access."""
    flags = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(3):  # opened as it is, or made (one removed in between by a clear: made again)
        try:
            fd = os.open(path, os.O_RDWR | flags)
        except FileNotFoundError:
            pass
        except PermissionError:
            try:
                return os.open(path, os.O_RDONLY | flags)
            except FileNotFoundError:
                continue
            except PermissionError as e:
                raise PermissionError(e.errno, f"{e.strerror} (the lock {path} is its owner's alone)",
                                      str(path)) from None
        else:
            share_fd(fd, path.parent)  # this user's lock left private by an older vom
            return fd
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")  # `vom cache clear` knows these
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | flags, 0o666)
        try:
            share_fd(fd, path.parent)
            os.link(tmp, path)
        except FileExistsError:
            os.close(fd)
            continue
        except OSError:  # a file system without hard links (FAT, some SMB and FUSE mounts): made in place
            os.close(fd)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | flags, 0o666)
            except FileExistsError:
                continue
            share_fd(fd, path.parent)
        except BaseException:
            os.close(fd)
            raise
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return fd
    fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o666)
    share_fd(fd, path.parent)
    return fd


def share_fd(fd: int, root: Path) -> None:
    """Give the file or folder open at ``fd`` (this user's) the cache ``root``'s group permissions that the umask took
    away (folders rwx, files rw), where it belongs to the root's group (a setgid root's, or a member's primary
    group that is the root's): a shared cache (a setgid 2775 root) went unusable for the team where one member's
    umask was 022 or 077 (QA). Never the others' permissions (a world-writable root, /tmp: anyone could forge
    entries), never a file of another group (review), through the descriptor (never a path a teammate could swap
    for a link, review); a failure changes nothing (the render goes on as before)."""
    try:
        root_st, st = os.stat(root), os.fstat(fd)
        if st.st_uid != os.getuid() or st.st_gid != root_st.st_gid:
            return
        want = stat.S_IMODE(root_st.st_mode) & (0o070 if stat.S_ISDIR(st.st_mode) else 0o060)
        mode = stat.S_IMODE(st.st_mode)
        if want & ~mode:
            os.fchmod(fd, mode | want)
    except (OSError, AttributeError):
        pass
