"""Writing results to disk atomically, with provenance."""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from sgdnoise import backends


def provenance(**extra: Any) -> dict[str, Any]:
    """Versions, platform, command line and UTC timestamp, plus any ``extra`` (seed, backend…)."""
    return {
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "versions": backends.info(),
        **extra,
    }


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write JSON to ``path`` via a temporary file and rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, ensure_ascii=False, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["provenance", "write_json_atomic"]
