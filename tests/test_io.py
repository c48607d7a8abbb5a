"""Output folders (what may be replaced) and folder locks (stale-lock detection)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sgdnoise import _io
from sgdnoise._io import (
    FolderLock,
    FolderLockedError,
    OutputFolderError,
    OutputLayout,
    check_output_file,
    check_output_folder,
    lock_is_stale,
    pid_alive,
    read_lock,
    remove_own_folder,
    remove_temp_folder,
)

LAYOUT = OutputLayout(command="sgdnoise demo", marker="result.json",
                      recognise=lambda p: isinstance(p, dict) and p.get("format") == "demo/1",
                      files=("result.json", "data.npz"))


def _earlier_output(folder: Path) -> Path:
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps({"format": "demo/1"}), encoding="utf-8")
    (folder / "data.npz").write_bytes(b"x")
    return folder


def test_absent_empty_and_earlier_output_folders_may_be_used(tmp_path):
    assert check_output_folder(tmp_path / "new", LAYOUT) == (tmp_path / "new").resolve()
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty", LAYOUT) == (tmp_path / "empty").resolve()
    out = _earlier_output(tmp_path / "old")
    (out / ".result.json.abc123").write_text("{", encoding="utf-8")  # an interrupted write
    (out / ".DS_Store").write_bytes(b"")                              # a file manager's
    assert check_output_folder(out, LAYOUT) == out.resolve()
    link = tmp_path / "link"
    link.symlink_to(out)
    assert check_output_folder(link, LAYOUT) == out.resolve()     # the folder it points to


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d.write_text("x"), r"is a file, not a folder; .* does not replace files"),
    (lambda d: (d.mkdir(), (d / "thesis.tex").write_text("x")),
     (r"is not empty and is not the output of an earlier sgdnoise demo \(it holds thesis\.tex\)"
      r".*give another folder, or empty or remove")),
    (lambda d: (d.mkdir(), (d / "result.json").write_text('{"format": "other"}')),
     r"not the output of an earlier sgdnoise demo \(it holds result\.json\)"),
    (lambda d: (_earlier_output(d), (d / "notes.txt").write_text("x")),
     (r"holds the output of an earlier sgdnoise demo but also files it did not write "
      r"\(notes\.txt\)")),
    (lambda d: (_earlier_output(d), (d / "sub").mkdir()), r"did not write \(sub/\)"),
    (lambda d: (d.mkdir(), (d / "result.json").write_text('{"format": "dem')),
     r"result\.json' is not valid JSON .* damaged, for instance truncated"),
])
def test_folders_holding_what_the_command_did_not_write_are_refused(tmp_path, make, message):
    target = tmp_path / "d"
    make(target)
    before = sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*"))
    with pytest.raises(OutputFolderError, match=message):
        check_output_folder(target, LAYOUT)
    assert sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*")) == before


def test_protected_folders_are_refused(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    for path, why in ((".", "the current folder"), ("..", "a folder above the current folder"),
                      (str(tmp_path), "a folder above the current folder"),
                      (os.sep, "the root of the file system"),
                      (str(tmp_path / "home"), "your home folder")):
        with pytest.raises(OutputFolderError, match=f"is {why}; sgdnoise demo needs a folder"):
            check_output_folder(path, LAYOUT)
    conf = tmp_path / "conf" / "x"
    conf.mkdir(parents=True)
    for path in (conf, conf.parent):
        with pytest.raises(OutputFolderError, match="is (the|a) folder (of|above)"):
            check_output_folder(path, LAYOUT, protect=[conf])
    assert check_output_folder(conf / "out", LAYOUT, protect=[conf]) == conf / "out"


def test_output_file_is_only_overwritten_when_it_is_an_earlier_output(tmp_path):
    def ok(payload):
        return isinstance(payload, dict) and "claims" in payload

    assert check_output_file(tmp_path / "r.json", ok, "cmd") == tmp_path / "r.json"
    (tmp_path / "r.json").write_text('{"claims": []}')
    check_output_file(tmp_path / "r.json", ok, "cmd")
    (tmp_path / "thesis.tex").write_text("x")
    with pytest.raises(OutputFolderError, match="exists and is not the output of an earlier cmd"):
        check_output_file(tmp_path / "thesis.tex", ok, "cmd")
    with pytest.raises(OutputFolderError, match="is a folder"):
        check_output_file(tmp_path, ok, "cmd")


def test_removal_only_touches_what_this_package_wrote(tmp_path):
    out = _earlier_output(tmp_path / "old")
    assert remove_own_folder(out, LAYOUT.files) and not out.exists()
    out = _earlier_output(tmp_path / "old")
    (out / "mine.txt").write_text("keep")
    assert not remove_own_folder(out, LAYOUT.files)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    for name in ("data", "tmp-1", ".x"):
        (tmp_path / name).mkdir()
        with pytest.raises(ValueError, match="is not a temporary folder of this package"):
            remove_temp_folder(tmp_path / name, ".tmp-")
        assert (tmp_path / name).is_dir()
    (tmp_path / ".tmp-1").mkdir()
    (tmp_path / ".tmp-1" / "f").write_text("x")
    remove_temp_folder(tmp_path / ".tmp-1", ".tmp-")
    assert not (tmp_path / ".tmp-1").exists()


# ------------------------------------------------------------------------------------ locks
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_is_exclusive_names_its_owner_and_is_released(tmp_path):
    path = tmp_path / "x.lock"
    with FolderLock(path, folder=tmp_path, command="sgdnoise demo") as lock:
        owner = read_lock(path)
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        assert owner["command"] == "sgdnoise demo" and owner["token"] == lock.token
        with pytest.raises(FolderLockedError, match=rf"is in use by sgdnoise demo \(process "
                                                    rf"{os.getpid()} on host .*, started "):
            FolderLock(path, folder=tmp_path, command="sgdnoise demo").acquire()
    assert not path.exists()
    with pytest.raises(RuntimeError, match="boom"), FolderLock(path, folder=tmp_path,
                                                               command="c"):
        raise RuntimeError("boom")
    assert not path.exists()
    with pytest.raises(KeyboardInterrupt), FolderLock(path, folder=tmp_path, command="c"):
        raise KeyboardInterrupt
    assert not path.exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    path = tmp_path / "x.lock"
    dead = _dead_pid()
    stale = {"pid": dead, "host": socket.gethostname(), "started": "2020-01-01T00:00:00+00:00",
             "command": "sgdnoise sweep", "token": "old"}
    assert not pid_alive(dead) and lock_is_stale(stale)
    path.write_text(json.dumps(stale), encoding="utf-8")
    notes = []
    with FolderLock(path, folder=tmp_path, command="sgdnoise sweep", warn=notes.append) as lock:
        assert read_lock(path)["token"] == lock.token
    assert notes == [(f"taking over the lock of sgdnoise sweep (process {dead} on host "
                      f"{socket.gethostname()}, started 2020-01-01T00:00:00+00:00), which is "
                      f"no longer running")]
    assert not path.exists() and not (tmp_path / "x.lock.takeover").exists()


def test_locks_that_are_not_stale(tmp_path):
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    assert not lock_is_stale(me)
    assert not lock_is_stale({"pid": _dead_pid(), "host": "another-host.example"})
    assert not lock_is_stale({"host": socket.gethostname()})           # no pid: cannot tell
    path = tmp_path / "x.lock"
    path.write_text(json.dumps({**me, "pid": _dead_pid(), "host": "another-host.example"}))
    with pytest.raises(FolderLockedError, match="runs on another host, so whether it still runs "
                                                "cannot be checked from here; if it is no "
                                                "longer running, remove"):
        FolderLock(path, folder=tmp_path, command="c").acquire()
    path.write_text("")                                    # being written, or damaged
    with pytest.raises(FolderLockedError, match="the lock file .* cannot be read"):
        FolderLock(path, folder=tmp_path, command="c").acquire()
    assert path.read_text() == ""


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/stat").exists(), reason="needs /proc")
def test_a_reused_process_id_does_not_keep_a_lock_alive():
    start = _io._process_start(os.getppid())
    assert start is not None and pid_alive(os.getppid(), start)
    assert not pid_alive(os.getppid(), str(int(start) + 1))  # same id, another process
    assert lock_is_stale({"pid": os.getppid(), "host": socket.gethostname(),
                          "proc_start": str(int(start) + 1)})


def test_release_never_removes_another_owners_lock(tmp_path):
    path = tmp_path / "x.lock"
    lock = FolderLock(path, folder=tmp_path, command="c").acquire()
    path.write_text(json.dumps({"pid": 1, "host": "h", "token": "someone else"}))
    lock.release()
    assert path.exists()
