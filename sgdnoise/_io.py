"""Writing results to disk: atomic files, provenance, output folders and their locks.

Output folders
--------------
Every command that writes a folder (``sgdnoise run``, ``sweep``, ``verify --out``,
``generalization``, ``table1``) describes what it writes with an :class:`OutputLayout` and
calls :func:`check_output_folder` before writing anything.  A folder may be used when it

* does not exist yet, or is empty; or
* is recognisably an earlier output of the *same* command: it holds the layout's marker file
  (``result.json`` for ``run``, ``sweep.json`` for ``sweep``, …) with the keys that command
  writes, and nothing but the files and folders that command writes (plus temporary files of
  an interrupted write and the metadata files an operating system drops into folders,
  :data:`SYSTEM_FILES`).

Anything else is refused with an :class:`OutputFolderError` that says what is in the way, and
so are the file-system root, the home folder, the current folder and every folder above it (and
any folder a caller protects, e.g. the one holding the configuration file).  No command deletes
or moves a file it did not write: a folder is only ever removed by :func:`remove_own_folder`
(which deletes the files a layout names and then the then-empty folder) or, for a temporary
folder this package created itself with :func:`tempfile.mkdtemp`, by :func:`remove_temp_folder`.

Locks
-----
:class:`FolderLock` is an exclusive lock on an output folder: a file created atomically with
``O_CREAT | O_EXCL`` that holds the owner's process id, host, start time and command.  A second
process gets a :class:`FolderLockedError` naming the owner; a lock left by a process that is no
longer running on this host is detected (:func:`lock_is_stale`) and taken over.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from sgdnoise import backends

#: Files an operating system or a file manager creates inside folders on its own; they never
#: stop a folder from being recognised as an earlier output, and are removed with it.
SYSTEM_FILES: frozenset[str] = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def provenance(**extra: Any) -> dict[str, Any]:
    """Versions, platform, command line and UTC timestamp, plus any ``extra`` (seed, backend…)."""
    return {
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "versions": backends.info(),
        **extra,
    }


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write JSON to ``path`` via a temporary file and rename: a crash never leaves half a file.

    The temporary file is ``.<name>.<random>`` in the same folder; the permissions of the
    result follow the umask (as for any file a program creates), not ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, ensure_ascii=False, allow_nan=False)
            fh.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- output folders
class OutputFolderError(ValueError):
    """An output folder (``out_dir``, ``--out``) that may not be used, and why.

    Raised before anything is written: the folder is a file, a protected location (the
    file-system root, the home folder, the current folder or a folder above it), or holds files
    the command did not write.  The message names the folder, what is in the way and how to
    proceed.
    """


class FolderLockedError(OutputFolderError):
    """The output folder is locked by another running process (see :class:`FolderLock`).

    Attributes
    ----------
    owner : dict or None
        The lock file's content (``pid``, ``host``, ``started``, ``command``), None if it
        could not be read.
    lock_file : Path
    """

    def __init__(self, message: str, *, owner: dict[str, Any] | None, lock_file: Path) -> None:
        super().__init__(message)
        self.owner, self.lock_file = owner, lock_file


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON in the file ``path``; a damaged file is an :class:`OutputFolderError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OutputFolderError(
            f"{str(path)!r} is not valid JSON ({exc}); it is damaged, for instance truncated "
            f"by a full disk or a copy that did not finish") from None


@dataclass(frozen=True)
class OutputLayout:
    """What one command writes into its output folder, and how an earlier output is recognised.

    Attributes
    ----------
    command : str
        The command, for messages (``"sgdnoise run"``).
    marker : str
        The file that identifies an earlier output (``"result.json"``).
    recognise : callable
        ``recognise(payload) -> bool`` on the marker's parsed JSON: whether it has the keys
        the command writes.
    files : tuple of str
        Every file the command writes at the top of the folder (the marker included).
    folders : tuple of str
        Sub-folders the command writes.
    check_folder : callable, optional
        ``check_folder(sub_folder) -> list of str``: entries of a sub-folder the command did
        not write (default: sub-folders are not looked into).
    marker_optional : bool
        A folder holding only what the command writes is recognised even without the marker
        (only for layouts whose sub-folders are checked, such as a sweep's ``points``).
    recover : str
        What to do when the marker is damaged (added to the message).
    transient : tuple of str
        Files that do not count as content (the lock of a running command): a folder holding
        only these is treated as empty.
    """

    command: str
    marker: str
    recognise: Callable[[Any], bool]
    files: tuple[str, ...]
    folders: tuple[str, ...] = ()
    check_folder: Callable[[Path], list[str]] | None = None
    marker_optional: bool = False
    recover: str = field(default="")
    transient: tuple[str, ...] = ()

    def owns(self, entry: Path) -> bool:
        """Whether ``entry`` (a direct child of an output folder) is something this command
        writes: one of its files or folders, a temporary file ``.<file>.<random>`` of an
        interrupted atomic write, or a :data:`SYSTEM_FILES` entry."""
        return owns_name(entry, self.files, self.folders)


def owns_name(entry: Path, files: Iterable[str], folders: Iterable[str] = ()) -> bool:
    """Whether ``entry`` is one of ``files`` (a regular file, not a link), one of ``folders`` (a
    folder, not a link), a temporary file ``.<file>.<random>`` left by an interrupted
    :func:`write_json_atomic` of one of ``files``, or a :data:`SYSTEM_FILES` entry."""
    name = entry.name
    if entry.is_symlink():
        return False
    if name in folders:
        return entry.is_dir()
    if not entry.is_file():
        return False
    return name in files or name in SYSTEM_FILES or any(
        name.startswith(f".{f}.") for f in files)


def _describe(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _protected(folder: Path, protect: Iterable[str | os.PathLike[str]]) -> str | None:
    """Why ``folder`` (resolved) must not be an output folder, or None."""
    if folder == Path(folder.anchor):
        return "the root of the file system"
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError, OSError):
        home = None
    if folder == home:
        return "your home folder"
    cwd = Path.cwd().resolve()
    if folder == cwd:
        return "the current folder"
    if folder in cwd.parents:
        return "a folder above the current folder"
    for p in protect:
        p = Path(p).resolve()
        if folder == p:
            return f"the folder of {p}"
        if folder in p.parents:
            return f"a folder above {p}"
    return None


def _check_writable(given: str, folder: Path) -> None:
    """The folder, or the nearest existing folder above it, must be writable."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFolderError(
            f"output folder {given!r} cannot be written: {str(existing)!r} is on a read-only "
            f"file system or not writable by you; give another folder")


def check_output_folder(path: str | os.PathLike[str], layout: OutputLayout, *,
                        protect: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Check that ``path`` may be used as ``layout``'s output folder; return it resolved.

    The rule (module docstring): the folder is absent, empty, or an earlier output of the same
    command (its marker file recognised and nothing but what the command writes in it); it
    is not the file-system root, the home folder, the current folder or a folder above it, nor
    a folder in ``protect`` or above one; and it (or, for a new folder, the nearest existing
    folder above it) is writable.

    Parameters
    ----------
    path : path
        The output folder; a symbolic link is followed (the folder it points to is checked).
    layout : OutputLayout
    protect : iterable of paths
        Further folders that must not be used or replaced (e.g. the configuration's folder).

    Returns
    -------
    Path
        ``path`` resolved (absolute, links followed).

    Raises
    ------
    OutputFolderError
        ``path`` may not be used; the message says what is in the way and how to proceed.
    """
    given = str(path)
    folder = Path(path).resolve()
    why = _protected(folder, protect)
    if why is not None:
        raise OutputFolderError(
            f"output folder {given!r} is {why}; {layout.command} needs a folder of its own "
            f"(it may replace what it wrote there): give a new folder, e.g. {given.rstrip('/')}"
            f"/{layout.command.split()[-1]}-out")
    if not folder.exists():
        if Path(path).is_symlink():
            raise OutputFolderError(f"output folder {given!r} is a link to {str(folder)!r}, "
                                    f"which does not exist; give a folder")
        _check_writable(given, folder)
        return folder
    if not folder.is_dir():
        raise OutputFolderError(
            f"output folder {given!r} is a file, not a folder; {layout.command} does not "
            f"replace files: give another folder name")
    _check_writable(given, folder)
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise OutputFolderError(f"output folder {given!r} cannot be read: "
                                f"{exc.strerror or exc}") from None
    if all(e.name in layout.transient and layout.owns(e) for e in entries):
        return folder
    foreign = [e.name + ("/" if e.is_dir() else "") for e in entries if not layout.owns(e)]
    if layout.check_folder is not None:
        for sub in layout.folders:
            if (folder / sub).is_dir() and not (folder / sub).is_symlink():
                foreign += [f"{sub}/{n}" for n in layout.check_folder(folder / sub)]
    marker = folder / layout.marker
    recognised = False
    if marker.is_file():
        try:
            payload = read_json(marker)
        except OutputFolderError as exc:
            raise OutputFolderError(f"output folder {given!r}: {exc}"
                                    + (f"; {layout.recover}" if layout.recover else "")) from None
        recognised = bool(layout.recognise(payload))
    elif layout.marker_optional:
        recognised = not foreign and any((folder / sub).is_dir() for sub in layout.folders)
    if not recognised:
        listed = _describe([e.name + ("/" if e.is_dir() else "") for e in entries])
        raise OutputFolderError(
            f"output folder {given!r} is not empty and is not the output of an earlier "
            f"{layout.command} (it holds {listed}); {layout.command} never deletes or "
            f"overwrites files it did not write: give another folder, or empty or remove "
            f"{given!r} yourself if you no longer need its content")
    if foreign:
        raise OutputFolderError(
            f"output folder {given!r} holds the output of an earlier {layout.command} but also "
            f"files it did not write ({_describe(foreign)}); {layout.command} never deletes or "
            f"overwrites those: move them out of the folder, or give another folder")
    return folder


def check_output_file(path: str | os.PathLike[str], recognise: Callable[[Any], bool],
                      command: str) -> Path:
    """Check that the file ``path`` may be (over)written by ``command``: absent, or a JSON file
    ``recognise`` accepts (an earlier output).  Returns ``path``; raises
    :class:`OutputFolderError` otherwise."""
    path = Path(path)
    given = str(path)
    if path.is_dir():
        raise OutputFolderError(f"{given!r} is a folder; give the path of a file")
    if path.exists():
        try:
            ok = recognise(read_json(path))
        except (OutputFolderError, OSError):
            ok = False
        if not ok:
            raise OutputFolderError(
                f"{given!r} exists and is not the output of an earlier {command}; "
                f"{command} never overwrites files it did not write: give another file name, "
                f"or remove {given!r} yourself")
    return path


def remove_own_folder(folder: str | os.PathLike[str], files: Iterable[str],
                      folders: Iterable[str] = ()) -> bool:
    """Delete a folder this package wrote: the entries :func:`owns_name` accepts, then the folder.

    Only the named files (with their temporary files and :data:`SYSTEM_FILES`) are deleted;
    a named sub-folder is removed the same way, recursively, only when it is empty after that.
    If anything else is in the folder it is left in place, with the foreign entries.

    Returns
    -------
    bool
        True when the folder is gone.
    """
    folder = Path(folder)
    files, folders = tuple(files), tuple(folders)
    for entry in list(folder.iterdir()):
        if owns_name(entry, files) and entry.is_file():
            entry.unlink(missing_ok=True)
        elif entry.name in folders and entry.is_dir() and not entry.is_symlink():
            try:
                entry.rmdir()
            except OSError:
                pass
    try:
        folder.rmdir()
    except OSError:
        return False
    return True


def remove_temp_folder(folder: str | os.PathLike[str], prefix: str) -> None:
    """Delete a temporary folder this package made with ``tempfile.mkdtemp(prefix=prefix)``.

    The name is checked first: a folder whose name does not start with ``prefix`` (always a
    hidden name such as ``.tmp-<id>-`` or ``.<name>.tmp-``) is not touched.
    """
    folder = Path(folder)
    if not prefix.startswith(".") or not folder.name.startswith(prefix) or folder.is_symlink():
        raise ValueError(f"folder: {str(folder)!r} is not a temporary folder of this package "
                         f"(expected a name starting with {prefix!r})")
    shutil.rmtree(folder, ignore_errors=True)  # a mkdtemp folder made by this package


# ------------------------------------------------------------------------------------ locks
def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of a process from ``/proc``, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    if len(fields) < 20:
        return None
    return fields[0], fields[19]


def _process_start(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` of this host is running (and, with ``start``, is the process
    that started at that ``/proc`` start time rather than a later one reusing the id).

    Where this cannot be told (Windows), the process is taken to be running.
    """
    if pid == os.getpid():
        return True
    if pid <= 0 or os.name == "nt":
        return pid > 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a process of another user
    except OSError:
        return True
    stat = _proc_stat(pid)
    if stat is not None:
        state, started = stat
        if state in ("Z", "X"):  # a zombie has exited
            return False
        if start is not None and started != start:
            return False
    return True


def lock_is_stale(owner: dict[str, Any]) -> bool:
    """Whether a lock's owner (the lock file's content) is a process of this host that is no
    longer running.  A lock from another host is never taken to be stale."""
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or isinstance(pid, bool) \
            or not isinstance(pid, int):
        return False
    start = owner.get("proc_start")
    return not pid_alive(pid, start if isinstance(start, str) else None)


def read_lock(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The content of a lock file; None when there is none; ``{}`` when it cannot be read (a
    lock being written this instant, or a damaged one)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _owner_text(owner: dict[str, Any]) -> str:
    return (f"process {owner.get('pid', '?')} on host {owner.get('host', '?')}, started "
            f"{owner.get('started', '?')}")


class FolderLock:
    """An exclusive lock on an output folder, held by one process at a time.

    The lock is the file ``path``, created atomically with ``O_CREAT | O_EXCL``; it holds JSON
    with the owner's ``pid``, ``host``, ``started`` (UTC), ``command``, ``argv``, a random
    ``token`` and, on Linux, the process start time ``proc_start`` (so a later process that
    reuses the id is not mistaken for the owner).  Use it as a context manager; it is released
    on normal exit, on an exception and on Ctrl-C.

    A lock whose owner is a process of this host that is no longer running is stale: it is taken
    over (under a second, short-lived lock ``path + ".takeover"`` so two processes cannot both
    take it over) and ``warn`` is called with a message.  A lock from another host is never
    taken over (whether its owner runs cannot be checked from here).

    Parameters
    ----------
    path : path
        The lock file.
    folder : path
        The folder it protects (for messages).
    command : str
        The command taking it (``"sgdnoise sweep"``), recorded and shown to a second process.
    warn : callable, optional
        Called with one line of text when a stale lock is taken over.
    """

    def __init__(self, path: str | os.PathLike[str], *, folder: str | os.PathLike[str],
                 command: str, warn: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.folder = Path(folder)
        self.command = command
        self.warn = warn or (lambda _line: None)
        self.token = uuid.uuid4().hex
        self.held = False

    def _content(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(),
                "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "command": self.command, "argv": list(sys.argv), "token": self.token,
                "proc_start": _process_start(os.getpid())}

    def _refuse(self, owner: dict[str, Any] | None) -> FolderLockedError:
        if not owner:
            msg = (f"output folder {str(self.folder)!r} is locked, but the lock file "
                   f"{str(self.path)!r} cannot be read (it is being written this instant, or "
                   f"is damaged); if no sgdnoise command is using the folder, remove "
                   f"{str(self.path)!r} and run the command again")
        else:
            remote = owner.get("host") != socket.gethostname()
            msg = (f"output folder {str(self.folder)!r} is in use by "
                   f"{owner.get('command', 'another sgdnoise command')} ({_owner_text(owner)})"
                   f"; wait for it to finish or stop it, or give another folder. "
                   + ("That process runs on another host, so whether it still runs cannot be "
                      "checked from here; if" if remote else "If")
                   + f" it is no longer running, remove {str(self.path)!r} and run the "
                     f"command again")
        return FolderLockedError(msg, owner=owner or None, lock_file=self.path)

    def _take_over(self, owner: dict[str, Any]) -> None:
        guard = self.path.with_name(self.path.name + ".takeover")
        try:
            fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise FolderLockedError(
                f"output folder {str(self.folder)!r}: another process is taking over the stale "
                f"lock {str(self.path)!r} this instant; run the command again (if this "
                f"persists and no sgdnoise command is running, remove {str(guard)!r})",
                owner=owner, lock_file=self.path) from None
        try:
            if read_lock(self.path) == owner:  # still the stale lock, not a new owner's
                self.path.unlink(missing_ok=True)
                self.warn(f"taking over the lock of {owner.get('command', 'a command')} "
                          f"({_owner_text(owner)}), which is no longer running")
        finally:
            os.close(fd)
            guard.unlink(missing_ok=True)

    def acquire(self) -> Self:
        """Take the lock; raise :class:`FolderLockedError` when another process holds it."""
        if self.held:
            return self
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = read_lock(self.path)
                if owner is None:  # released meanwhile
                    continue
                if owner and lock_is_stale(owner):
                    self._take_over(owner)
                    continue
                raise self._refuse(owner) from None
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(self._content(), fh, indent=2)
                    fh.write("\n")
            except BaseException:
                self.path.unlink(missing_ok=True)
                raise
            self.held = True
            return self
        raise self._refuse(read_lock(self.path))

    def release(self) -> None:
        """Remove the lock file if this lock holds it (never another owner's lock)."""
        if not self.held:
            return
        self.held = False
        owner = read_lock(self.path)
        if owner is not None and owner.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


__all__ = [
    "SYSTEM_FILES",
    "FolderLock",
    "FolderLockedError",
    "OutputFolderError",
    "OutputLayout",
    "check_output_file",
    "check_output_folder",
    "lock_is_stale",
    "owns_name",
    "pid_alive",
    "provenance",
    "read_json",
    "read_lock",
    "remove_own_folder",
    "remove_temp_folder",
    "write_json_atomic",
]
