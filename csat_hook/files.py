"""Files that hold customer data, readable by their owner only, whatever the umask.

Captured webhook payloads, the dry-run reply file and the SQLite database (with its ``-wal``
and ``-shm`` files) hold customer names, emails and texts: they are created ``0600`` and the
folders csat-hook creates for them ``0700``. A file or folder that already exists keeps its
place; a file csat-hook opens again is brought back to ``0600``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


def written_out(path: str, *, example: str = "/home/app/...") -> str:
    """``path``, a configured file or folder, when it is written out, without the spaces and
    line breaks around it; ValueError when it starts with ``~`` or holds a ``$`` (``$HOME``):
    nothing expands them in a path (the configuration's own ``${VAR}`` is expanded before),
    so a folder named ``~`` or ``$HOME`` was made where the process started and the data kept
    there, or a file looked for there for ever.

    A ``${VAR}`` read from a file or a Kubernetes secret ends with a newline: the report was
    written into a new folder ``var/csat-report\n`` beside the one looked in, silently.

    ValueError too when it holds a NUL, which no file system takes in a name: the error
    came from wherever the path was first used (``embedded null byte``, naming no key; a
    SQLite ``database.url`` so written broke ``db upgrade`` with a traceback)."""
    path = path.strip()
    if "\x00" in path:
        raise ValueError("holds a NUL character, which no file or folder name can hold")
    if path.startswith("~") or "$" in path:
        raise ValueError(
            f"~ and $VARIABLES are not expanded in a path: write it out ({example}), "
            "or use ${VAR} for a variable"
        )
    return path


def stored_path(path: str | os.PathLike[str]) -> str:
    """``path`` as text the database can hold, where it names a configured file or folder (the
    CSV export an unverified answer was read from, and by its name what its last read found;
    the folder a report went to): as it is, unless it holds a byte that is not UTF-8 (a file
    or folder named in Latin-1, given by a ``${VAR}`` or found in the working directory).
    Python carries such a byte as a lone surrogate, which neither SQLite's driver nor
    PostgreSQL's encodes: every sync failed with an internal UnicodeEncodeError. That byte
    is written ``\\xNN`` instead, so two such paths stay two."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")  # the bytes the OS has
        except UnicodeEncodeError:  # a surrogate no OS byte stands for: "\ud800" itself
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")
    return text


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and its missing parents as ``0700`` folders; existing ones are left
    as they are. Returns the path."""
    folder = Path(path)
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for item in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            item.mkdir(mode=DIR_MODE)
            os.chmod(item, DIR_MODE)  # mkdir's mode is filtered by the umask
    return folder


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a new file (never an existing one) readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)
        handle.write(data)


def replace_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` as the owner-only file at ``path``, replacing any file there (whatever
    its mode: a file written ``0644`` by an older version is ``0600`` after): written beside
    it, then renamed over it. An OSError is raised with no temporary file left."""
    temporary = Path(f"{os.fspath(path)}.{os.getpid()}.new")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a run that stopped before its rename
    try:
        write_private(temporary, data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


@contextlib.contextmanager
def append_private(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """Open a text file for appending, created (or brought back to) owner-only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)
        yield handle


@contextlib.contextmanager
def append_private_locked(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """:func:`append_private` under an exclusive lock of the file (``flock``), taken again
    on the new file when :func:`rewrite_private` replaced it while this one waited: a line
    appended is never written to a file no longer at ``path``."""
    while True:
        with append_private(path) as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file is closed
            if _still_at(handle.fileno(), path):
                yield handle
                return


def rewrite_private(path: str | os.PathLike[str], rewrite: Callable[[str], str]) -> bool:
    """Replace the text file at ``path`` by ``rewrite`` of its text, under the lock
    :func:`append_private_locked` takes (no line appended meanwhile is lost): written to a
    new owner-only file beside it, flushed to disk, then renamed over it, so a reader or a
    crash sees the old text or the new one, never a part. False when ``path`` is not there
    or ``rewrite`` changed nothing (the file is left as it was). An OSError writing or
    renaming is raised with the file left as it was and no temporary file beside it."""
    while True:
        try:
            handle = open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
        except FileNotFoundError:
            return False
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            if not _still_at(handle.fileno(), path):
                continue  # replaced meanwhile: lock the one there now
            text = handle.read()
            new = rewrite(text)
            if new == text:
                return False
            temporary = Path(f"{os.fspath(path)}.{os.getpid()}.rewrite")
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()  # left by a run that stopped before its rename
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
                    os.fchmod(out.fileno(), FILE_MODE)
                    out.write(new)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                # Not renamed (a full disk, a folder that refuses it): the file at ``path`` is
                # the old one, whole; the new text, part of it perhaps, goes too.
                with contextlib.suppress(OSError):
                    temporary.unlink()
                raise
            return True


def _still_at(fd: int, path: str | os.PathLike[str]) -> bool:
    """Whether the open file ``fd`` is still the one at ``path``."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def touch_private(path: str | os.PathLike[str]) -> None:
    """Create an empty owner-only file at ``path``, or bring an existing one back to
    owner-only (for files another library writes: SQLite's database)."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, FILE_MODE)
    try:
        with contextlib.suppress(PermissionError):  # another user's file: theirs to set
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def prune(
    folder: str | os.PathLike[str],
    prefix: str,
    *,
    max_age_seconds: float,
    max_files: int,
    max_bytes: int,
    now: float | None = None,
) -> int:
    """Delete the files of ``folder`` whose name starts with ``prefix`` that are older than
    ``max_age_seconds``, then the oldest ones until at most ``max_files`` files and
    ``max_bytes`` bytes are left. Returns how many were deleted."""
    now = time.time() if now is None else now
    files = []
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(prefix) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    stat = entry.stat(follow_symlinks=False)
                    files.append((stat.st_mtime, entry.name, stat.st_size, entry.path))
    files.sort()  # oldest first
    total = sum(size for _mtime, _name, size, _path in files)
    kept = len(files)
    deleted = 0
    for mtime, _name, size, path in files:
        if now - mtime <= max_age_seconds and kept <= max_files and total <= max_bytes:
            break
        with contextlib.suppress(FileNotFoundError):  # another thread got there first
            os.unlink(path)
            deleted += 1
        kept -= 1
        total -= size
    return deleted
