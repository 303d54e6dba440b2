"""Atomic file writes: a crash mid-write never leaves a truncated file behind.

The new content goes to a temporary file next to the target (``.<name>.<pid>.<random><suffix>``),
is flushed to disk (``fsync``), and is renamed over the target; the folder is synced too, so the
rename survives a power cut. A process killed mid-write leaves its temporary file behind: the next
save of the same target removes temporaries whose writing process is gone.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "stale_temporaries"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def stale_temporaries(path: str | os.PathLike, suffix: str = ".tmp") -> list[Path]:
    """Temporary files of earlier saves of ``path`` whose writing process no longer runs."""
    if not isinstance(suffix, str):
        raise TypeError(f"suffix must be a string such as '.tmp', got {type(suffix).__name__}")
    path = Path(path)
    prefix = _temp_prefix(path)
    stale = []
    if not path.parent.is_dir():
        return stale
    for candidate in path.parent.iterdir():
        name = candidate.name
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        pid_text = name[len(prefix):].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            stale.append(candidate)
    return stale


def _fsync_file(name: str) -> None:
    fd = os.open(name, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_name)`` on a temporary file next to ``path``, fsync it, then rename it into place.

    The rename is atomic on POSIX file systems, so readers see either the old
    file or the complete new one. On any error the temporary file is removed
    and the old ``path`` (if any) is left untouched. Temporaries left by a
    killed earlier save of the same ``path`` are removed first.
    """
    if not callable(write):
        raise TypeError(f"write must be a callable taking the temporary file name, got {type(write).__name__}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"path {path} is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(path, suffix):
        try:
            stale.unlink()
        except OSError:
            pass
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp_name)
        _fsync_file(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise
    _fsync_dir(path.parent)
    return path
