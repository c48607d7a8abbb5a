"""Progress bars on standard error: tqdm where someone is watching, nothing elsewhere.

Every long-running piece of sgdnoise that shows progress (``sgdnoise verify``'s per-claim bars,
sweeps, the generalization comparison) asks :func:`progress_bar` for its bar, so all of them
follow one rule: a bar is drawn only when standard error is an interactive terminal (a log file,
a pipe, CI or a notebook cell capturing stderr get none), and never when the caller turns it
off (``--quiet``).  The object returned has the same few methods whether a bar is drawn or not,
so the calling code has no branches::

    from sgdnoise._progress import progress_bar

    with progress_bar(len(points), desc="sweep", unit="point") as bar:
        for p in points:
            run(p)
            bar.update()
            with bar.external_write_mode():   # a log line that does not tear the bar
                print(f"{p} done")

Bars are `tqdm <https://tqdm.github.io>`_ bars (``leave=False`` by default: a finished bar is
erased, so the log lines around it stay readable).

References
----------
tqdm documentation, https://tqdm.github.io (``tqdm.tqdm``, ``tqdm.external_write_mode``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO, Any, Self

__all__ = ["NoProgress", "progress_bar", "stderr_is_terminal"]


def stderr_is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default: the current ``sys.stderr``) is an interactive terminal.

    A stream without ``isatty``, a closed one, or one whose ``isatty`` fails counts as not
    a terminal.
    """
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


class NoProgress:
    """The bar that draws nothing: the part of ``tqdm.tqdm``'s interface that sgdnoise uses.

    Attributes
    ----------
    total : int or None
        As given.
    n : int
        Sum of the ``update`` increments so far (counted, so callers can read it either way).
    desc : str
        As given.
    disable : bool
        Always True (tqdm's attribute of the same name).
    """

    disable = True

    def __init__(self, total: int | None = None, *, desc: str = "") -> None:
        self.total, self.desc, self.n = total, desc, 0

    def update(self, n: int = 1) -> None:
        """Count ``n`` more finished items."""
        self.n += n

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Replace the description (kept, not shown)."""
        self.desc = desc or ""

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Ignored: nothing is drawn."""

    def reset(self, total: int | None = None) -> None:
        """Start counting again (with a new total if given)."""
        self.n = 0
        if total is not None:
            self.total = total

    def refresh(self) -> None:
        """Ignored: nothing is drawn."""

    def close(self) -> None:
        """Ignored: nothing is drawn."""

    @contextlib.contextmanager
    def external_write_mode(self, file: IO[str] | None = None, nolock: bool = False
                            ) -> Iterator[None]:
        """A context for writing other output; with no bar drawn there is nothing to clear."""
        yield

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: int | None, *, desc: str = "", unit: str = "it",
                 enabled: bool | None = None, leave: bool = False,
                 file: IO[str] | None = None, **tqdm_options: Any) -> Any:
    """A progress bar on standard error, or a :class:`NoProgress` that draws nothing.

    Parameters
    ----------
    total : int or None
        Number of items (None: unknown, tqdm then shows a counter and a rate).
    desc : str
        Text in front of the bar (e.g. a claim id).
    unit : str
        Name of one item (``"it"``, ``"point"``, ``"run"``…).
    enabled : bool or None
        True: always draw; False: never (``--quiet``); None (default): draw only when ``file``
        is an interactive terminal (:func:`stderr_is_terminal`), so logs, pipes and CI stay
        free of bar frames.
    leave : bool
        Keep the finished bar on screen (default: erase it).
    file : text stream, optional
        Where to draw (default: ``sys.stderr`` as it is at the call).
    **tqdm_options
        Passed to ``tqdm.tqdm`` (``mininterval``, ``position``…).

    Returns
    -------
    tqdm.tqdm or NoProgress
        Both offer ``update(n=1)``, ``set_description``, ``set_postfix_str``, ``reset``,
        ``refresh``, ``close``, ``external_write_mode()`` (clear the bar while other output is
        written) and use as a context manager (closing the bar on exit).

    Raises
    ------
    ValueError
        If ``enabled`` is not True, False or None, or ``total`` is negative.

    References
    ----------
    tqdm documentation, https://tqdm.github.io.
    """
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(f"enabled must be True, False or None; got {enabled!r}")
    if total is not None and (isinstance(total, bool) or int(total) != total or total < 0):
        raise ValueError(f"total must be a non-negative integer or None; got {total!r}")
    stream = sys.stderr if file is None else file
    if enabled is None:
        enabled = stderr_is_terminal(stream)
    if not enabled:
        return NoProgress(total, desc=desc)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=stream, dynamic_ncols=True,
                **tqdm_options)
