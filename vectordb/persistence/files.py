"""Small file operations that durability depends on: syncing and atomic replacement."""

from __future__ import annotations

import os


def fsync_path(path: str) -> None:
    """Flush a file's (or a folder's) contents to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str) -> None:
    """Flush a folder's entries (so a rename in it survives a crash), where the OS allows it."""
    try:
        fsync_path(folder)
    except OSError:
        pass


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new content, never a mix."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
