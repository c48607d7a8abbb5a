"""Progress bars: tqdm on a terminal, nothing elsewhere, one interface either way."""

import io

import pytest

from sgdnoise import _progress
from sgdnoise._progress import NoProgress, progress_bar, stderr_is_terminal


class _Terminal(io.StringIO):
    def isatty(self):
        return True


class _Broken(io.StringIO):
    def isatty(self):
        raise ValueError("I/O operation on closed file")


def test_not_a_terminal_gives_the_silent_bar():
    stream = io.StringIO()
    bar = progress_bar(5, desc="x", file=stream)
    assert isinstance(bar, NoProgress)
    with bar:
        bar.update()
        bar.update(2)
        bar.set_postfix_str("p")
        bar.set_description("y")
        with bar.external_write_mode():
            stream.write("line\n")
    assert bar.n == 3 and bar.desc == "y" and bar.total == 5
    bar.reset(7)
    assert bar.n == 0 and bar.total == 7
    assert stream.getvalue() == "line\n"


def test_a_terminal_gets_a_tqdm_bar_that_is_erased_when_closed():
    from tqdm import tqdm

    stream = _Terminal()
    with progress_bar(4, desc="claims", unit="claim", file=stream, mininterval=0) as bar:
        assert isinstance(bar, tqdm)
        for _ in range(4):
            bar.update()
        with bar.external_write_mode(file=stream):
            stream.write("a log line\n")
    out = stream.getvalue()
    assert "claims" in out and "4/4" in out and "a log line\n" in out
    assert out.endswith("\r")                       # leave=False: the bar is erased at the end


@pytest.mark.parametrize(("enabled", "stream", "drawn"), [
    (None, _Terminal(), True), (None, io.StringIO(), False), (None, _Broken(), False),
    (True, io.StringIO(), True), (False, _Terminal(), False),
])
def test_enabled_decides_and_none_means_only_on_a_terminal(enabled, stream, drawn):
    bar = progress_bar(2, enabled=enabled, file=stream)
    bar.close()
    assert (not isinstance(bar, NoProgress)) == drawn


def test_the_default_stream_is_stderr_at_the_call(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert stderr_is_terminal()
    bar = progress_bar(1, mininterval=0)
    bar.update()
    bar.close()
    assert "1/1" in terminal.getvalue()
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not stderr_is_terminal() and isinstance(progress_bar(1), NoProgress)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"total": -1}, "total"), ({"total": 2.5}, "total"), ({"total": True}, "total"),
    ({"total": 3, "enabled": "yes"}, "enabled"),
])
def test_invalid_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        progress_bar(**kwargs)


def test_all_names_are_exported():
    assert set(_progress.__all__) == {"NoProgress", "progress_bar", "stderr_is_terminal"}
