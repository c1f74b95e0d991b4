"""Unwritable output and a full disk: one-line errors, and never a partial or temporary file."""

import errno
import json
import os

import pytest

from avalanche_hsf.errors import UserError
from avalanche_hsf.lab import files
from tests.helpers import FAST, assert_clean_error, files_under, run_cli, temporary_files

# --- unwritable output and a full disk -----------------------------------------------------

def test_output_directory_with_a_nul_byte(capsys, write_scenario, tmp_path):
    code, err = run_cli(capsys, "run", str(write_scenario()), "--out", str(tmp_path / "a\x00b"), *FAST)
    assert_clean_error(code, err, "is not writable: embedded null byte")


def test_output_directory_without_write_permission(capsys, write_scenario, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):  # root ignores chmod, so refuse the way the OS would
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(files.tempfile, "TemporaryFile", refuse)
    code, err = run_cli(capsys, "run", str(write_scenario()), "--out", str(tmp_path / "out"), *FAST)
    assert_clean_error(code, err, "output directory", "is not writable: Permission denied")
    assert files_under(tmp_path / "out") == []


class _HalfWrite:
    """A file that writes half of what it is given, then finds the disk full."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, data):
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _raise(exception):
    def fail(*args, **kwargs):
        raise exception
    return fail


# (os function, its replacement given the real one, the exception the caller sees)
@pytest.mark.parametrize("target, replace, expected", [
    ("fsync", lambda real: _raise(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))), UserError),
    ("fdopen", lambda real: lambda fd, mode: _HalfWrite(real(fd, mode)), UserError),
    ("replace", lambda real: _raise(OSError(errno.EXDEV, os.strerror(errno.EXDEV))), UserError),
    ("fsync", lambda real: _raise(KeyboardInterrupt()), KeyboardInterrupt),
], ids=["disk-full-at-fsync", "disk-full-mid-write", "rename-fails", "interrupted"])
def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch, target, replace, expected):
    old = tmp_path / "results.json"
    old.write_text('{"old": true}\n')
    monkeypatch.setattr(files.os, target, replace(getattr(os, target)))
    with pytest.raises(expected) as raised:
        files.atomic_write_json(old, {"new": list(range(1000))})
    monkeypatch.undo()
    assert json.loads(old.read_text()) == {"old": True}
    assert files_under(tmp_path) == ["results.json"]
    if expected is UserError:
        assert str(old) in str(raised.value) and "\n" not in str(raised.value)


def test_disk_full_while_writing_results_keeps_the_older_results(capsys, write_scenario, tmp_path, monkeypatch):
    out = tmp_path / "out"
    (out / "tiny").mkdir(parents=True)
    (out / "tiny" / "results.json").write_text('{"old": true}\n')
    results_fds = set()
    real_mkstemp, real_fsync = files.tempfile.mkstemp, os.fsync

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        if ".results.json." in name:
            results_fds.add(fd)
        return fd, name

    def fsync(fd):
        if fd in results_fds:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(files.os, "fsync", fsync)
    code, err = run_cli(capsys, "run", str(write_scenario()), "--out", str(out), *FAST)
    assert_clean_error(code, err, "results.json: No space left on device")
    assert results_fds  # the failure really hit results.json
    assert json.loads((out / "tiny" / "results.json").read_text()) == {"old": True}
    assert temporary_files(out) == []
