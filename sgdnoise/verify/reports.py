"""Reports of a ``sgdnoise verify`` run: ``results.json``, ``report.md`` and ``report.html``.

:func:`write_report` writes the three files of an output folder (``sgdnoise verify --out DIR``)
from the :class:`~sgdnoise.verify.ClaimResult` objects of a run and its provenance; the figures
and tables the claims saved in ``DIR/figures`` are shown in the section of their claim (a file
belongs to claim ``A6`` when its name is ``A6`` followed by a character that is not a letter or a
digit, e.g. ``A6_powerlaw.png`` or ``A6_gamma_table.md``).

The Markdown report links the figures by relative path; the HTML report is one self-contained
file (figures embedded as base64 ``data:`` URIs, inline CSS, no JavaScript, nothing fetched from
the network) in which every piece of text is escaped. Each file is written to a temporary file
and renamed, so a reader never sees half a report; ``sgdnoise verify`` rewrites all three after
every claim, and a report of an unfinished run lists the claims that did not run.

Re-render the report of an earlier run from its ``results.json``::

    import json
    from sgdnoise.verify.reports import write_report

    with open("sgdnoise-results/results.json", encoding="utf-8") as fh:
        data = json.load(fh)
    write_report(data["claims"], "sgdnoise-results", provenance=data["provenance"])
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from sgdnoise import _io
from sgdnoise.verify._registry import ClaimResult, _jsonable

#: File types shown as figures, with their MIME types (used for the HTML ``data:`` URIs).
IMAGE_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
}
#: Suffix of the Markdown tables a claim may save beside its figures.
TABLE_SUFFIX = ".md"

_MAX_DEPTH = 4            # nested dicts of ``values`` flattened to this depth
_MAX_VALUE_ROWS = 80      # rows of the flattened-values table per claim
_MAX_RECORDS = 40         # a list of at most this many flat dicts is shown as its own table
_MAX_INLINE = 6           # lists of at most this many scalars are written out in full
_MAX_TEXT = 120           # longer strings in ``values`` are cut
_MAX_ONE_LINE = 90        # width of prediction / measurement in the summary table
_MAX_EMBED_BYTES = 20 * 2**20
_VERDICT_CLASS = {"pass": "pass", "FAIL": "fail", "ERROR": "error", "not run": "notrun"}


# --------------------------------------------------------------------------- inputs


def _records(results: Any) -> list[dict[str, Any]]:
    """ClaimResults or their ``to_dict()`` records → JSON-ready dicts, checked."""
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence):
        raise ValueError(  # noqa: TRY004
            "results must be a sequence of ClaimResult objects or of their to_dict() records; "
            f"got {type(results).__name__}")
    out = []
    for i, r in enumerate(results):
        if isinstance(r, ClaimResult):
            out.append(r.to_dict())
        elif isinstance(r, Mapping):
            if not isinstance(r.get("id"), str) or not r["id"]:
                raise ValueError(f"results[{i}] has no claim id (a non-empty string under 'id')")
            rec = _jsonable(dict(r))
            if "verdict" not in rec:
                rec["verdict"] = ("ERROR" if rec.get("error") is not None
                                  else "pass" if rec.get("passed") else "FAIL")
            out.append(rec)
        else:
            raise ValueError(  # noqa: TRY004
                f"results[{i}] must be a ClaimResult or a mapping; got {type(r).__name__}")
    return out


def _check_provenance(provenance: Any) -> dict[str, Any]:
    if not isinstance(provenance, Mapping):
        raise ValueError(  # noqa: TRY004
            f"provenance must be a mapping; got {type(provenance).__name__}")
    return dict(provenance)


def _not_run(records: list[dict[str, Any]], prov: Mapping[str, Any]) -> list[str]:
    done = {r["id"] for r in records}
    planned = prov.get("claims") or []
    return [str(c) for c in planned if c not in done]


def claim_files(figures_dir: str | os.PathLike[str] | None, claim_id: str) -> list[Path]:
    """The figures and tables of one claim in ``figures_dir``, sorted by name.

    A file belongs to the claim when its name starts with ``claim_id`` followed by a character
    that is not a letter or a digit (``A6_powerlaw.png`` and ``A6.png`` belong to ``A6``;
    ``A61_x.png`` does not) and its suffix is one of :data:`IMAGE_TYPES` or
    :data:`TABLE_SUFFIX`.

    Parameters
    ----------
    figures_dir : path or None
        The folder the claims saved their files in; ``None`` or a missing folder gives ``[]``.
    claim_id : str
        Spec id of the claim, e.g. ``"A6"``.

    Returns
    -------
    list of Path
    """
    if not isinstance(claim_id, str) or not claim_id:
        raise ValueError(f"claim_id must be a non-empty string; got {claim_id!r}")
    if figures_dir is None:
        return []
    folder = Path(figures_dir)
    if not folder.is_dir():
        return []
    n = len(claim_id)
    found = []
    for path in folder.iterdir():
        name = path.name
        if not name.startswith(claim_id) or not path.is_file():
            continue
        if len(name) > n and name[n].isalnum():
            continue
        if path.suffix.lower() in IMAGE_TYPES or path.suffix.lower() == TABLE_SUFFIX:
            found.append(path)
    return sorted(found, key=lambda p: p.name)


# --------------------------------------------------------------------------- formatting


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.6g}" if math.isfinite(x) else str(x)
    text = str(x)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _is_scalar(x: Any) -> bool:
    return x is None or isinstance(x, (bool, int, float, str))


def _summarise_list(v: Sequence[Any]) -> str:
    if len(v) == 0:
        return "[]"
    if all(_is_scalar(e) for e in v) and len(v) <= _MAX_INLINE:
        return "[" + ", ".join(_fmt(e) for e in v) + "]"
    if all(isinstance(e, bool) for e in v):
        return f"{len(v)} booleans, {sum(v)} true"
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        return f"list of {len(v)} items"
    finite = arr[np.isfinite(arr)]
    what = f"{arr.size} values" if arr.ndim == 1 else f"array of shape {arr.shape}"
    if finite.size == 0:
        return f"{what}, none finite"
    text = (f"{what}: min {_fmt(float(finite.min()))}, median {_fmt(float(np.median(finite)))}, "
            f"max {_fmt(float(finite.max()))}")
    if finite.size < arr.size:
        text += f" ({arr.size - finite.size} non-finite)"
    return text


def _flatten_values(values: Mapping[str, Any]) -> tuple[list[tuple[str, str]],
                                                         list[tuple[str, list[Mapping]]], int]:
    """(key, text) rows of the scalar numbers, tables of flat records, and rows left out."""
    rows: list[tuple[str, str]] = []
    tables: list[tuple[str, list[Mapping]]] = []

    def walk(d: Mapping[str, Any], prefix: str, depth: int) -> None:
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if (depth == 0 and k == "figures" and isinstance(v, list)
                    and all(isinstance(e, str) for e in v)):
                continue  # paths of the figures, which are shown as figures
            if isinstance(v, Mapping):
                if not v:
                    rows.append((key, "{}"))
                elif depth + 1 >= _MAX_DEPTH:
                    rows.append((key, f"{{…}} ({len(v)} entr{'y' if len(v) == 1 else 'ies'})"))
                else:
                    walk(v, key, depth + 1)
            elif isinstance(v, (list, tuple)):
                if (v and len(v) <= _MAX_RECORDS and all(isinstance(e, Mapping) for e in v)
                        and all(_is_scalar(x) or isinstance(x, (list, tuple))
                                for e in v for x in e.values())):
                    tables.append((key, list(v)))
                else:
                    rows.append((key, _summarise_list(v)))
            else:
                rows.append((key, _fmt(v)))

    walk(values, "", 0)
    left_out = max(0, len(rows) - _MAX_VALUE_ROWS)
    return rows[:_MAX_VALUE_ROWS], tables, left_out


def _record_columns(records: list[Mapping]) -> list[str]:
    cols: list[str] = []
    for rec in records:
        cols.extend(str(k) for k in rec if str(k) not in cols)
    return cols


def _cell(x: Any) -> str:
    return _summarise_list(x) if isinstance(x, (list, tuple)) else _fmt(x)


def _one_line(text: Any) -> str:
    lines = [ln.strip() for ln in str(text if text is not None else "—").splitlines()]
    lines = [ln for ln in lines if ln] or ["—"]
    first = lines[0]
    if len(first) > _MAX_ONE_LINE:
        first = first[: _MAX_ONE_LINE - 1] + "…"
    if len(lines) > 1:
        first += f" (+{len(lines) - 1} more line{'s' if len(lines) > 2 else ''})"
    return first


def _seconds(x: Any) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "—"
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def _counts(records: list[dict[str, Any]], not_run: list[str]) -> str:
    verdicts = [r.get("verdict") for r in records]
    parts = [f"{verdicts.count('pass')} passed", f"{verdicts.count('FAIL')} failed"]
    if verdicts.count("ERROR"):
        parts.append(f"{verdicts.count('ERROR')} error(s)")
    if not_run:
        parts.append(f"{len(not_run)} not run")
    return ", ".join(parts)


def _status(prov: Mapping[str, Any], records: list[dict[str, Any]], not_run: list[str]) -> str:
    status = prov.get("status")
    total = len(records) + len(not_run)
    if status == "interrupted":
        return f"interrupted after {len(records)} of {total} claim(s)"
    if not_run:
        return (f"incomplete: {len(records)} of {total} claim(s) run (the run is in progress, "
                "or it stopped before the others)")
    return "complete"


def _provenance_rows(prov: Mapping[str, Any], records: list[dict[str, Any]],
                     not_run: list[str]) -> list[tuple[str, str]]:
    versions = prov.get("versions") or {}
    argv = prov.get("argv") or []
    rows = [("sgdnoise", _fmt(versions.get("sgdnoise")))]
    if argv:
        rows.append(("command", "sgdnoise " + shlex.join(str(a) for a in argv[1:])))
    rows += [("seed", _fmt(prov.get("seed"))), ("backend", _fmt(prov.get("backend"))),
             ("scale", _fmt(prov.get("scale"))), ("started (UTC)", _fmt(prov.get("timestamp")))]
    if prov.get("finished"):
        rows.append(("finished (UTC)", _fmt(prov.get("finished"))))
    rows.append(("status", _status(prov, records, not_run)))
    machine = _fmt(versions.get("platform"))
    if versions.get("cpu_count"):
        machine += f", {versions['cpu_count']} CPUs"
    rows.append(("machine", machine))
    cupy = versions.get("cupy")
    if isinstance(cupy, Mapping):
        gpu = ", ".join(map(str, cupy.get("devices") or [])) or f"none ({cupy.get('error', '')})"
        rows.append(("GPU", gpu))
    elif "cupy" in versions:
        rows.append(("GPU", "not used (CuPy absent)"))
    blas = versions.get("blas")
    if blas:
        rows.append(("BLAS", "; ".join(
            f"{b.get('internal_api', '?')} {b.get('version', '?')} ({b.get('num_threads', '?')} "
            "threads)" for b in blas if isinstance(b, Mapping))))
    if versions.get("backends"):
        rows.append(("backends available", ", ".join(map(str, versions["backends"]))))
    return rows


def _package_rows(prov: Mapping[str, Any]) -> list[tuple[str, str]]:
    versions = prov.get("versions") or {}
    rows = []
    for name in ("python", "numpy", "scipy", "sympy", "hypothesis", "numba", "cupy"):
        if name not in versions:
            continue
        v = versions[name]
        if v is None:
            text = "absent"
        elif isinstance(v, Mapping):
            text = _fmt(v.get("version"))
            if v.get("threads"):
                text += f" ({v['threads']} threads)"
        else:
            text = _fmt(v)
        rows.append((name, text))
    return rows


def _claim_fields(r: Mapping[str, Any]) -> list[tuple[str, str]]:
    fields = [("statement", r.get("statement")), ("source", r.get("source")),
              ("prediction", r.get("prediction")), ("measurement", r.get("measurement")),
              ("tolerance", r.get("tolerance")), ("verdict", r.get("verdict")),
              ("run", (f"seed {_fmt(r.get('seed'))}, backend {_fmt(r.get('backend'))}, "
                       f"scale {_fmt(r.get('scale'))}, {_seconds(r.get('seconds'))}"))]
    if r.get("error") is not None:
        fields.append(("error", r.get("error")))
    return [(k, "—" if v is None else str(v)) for k, v in fields]


def _anchor(claim_id: str) -> str:
    return "claim-" + re.sub(r"[^A-Za-z0-9_-]", "-", claim_id)


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: Any) -> str:
    """Escape Markdown markup so text renders literally (newlines kept)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def _md_cell(text: Any) -> str:
    return _md(" ".join(str(text).split()))


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _md_block(text: str) -> list[str]:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", *text.splitlines(), fence]


def _md_link(path: Path, report_dir: Path) -> str:
    try:
        rel = Path(os.path.relpath(path, report_dir)).as_posix()
    except ValueError:  # another drive (Windows): an absolute link
        return path.resolve().as_uri()
    return quote(rel, safe="/")


def render_markdown(results: Sequence[ClaimResult | Mapping[str, Any]], *,
                    provenance: Mapping[str, Any],
                    figures_dir: str | os.PathLike[str] | None = None,
                    report_dir: str | os.PathLike[str] | None = None) -> str:
    """The report of a ``sgdnoise verify`` run as Markdown.

    Sections: provenance (version, command, seed, backend, scale, date, machine, package
    versions), a summary table (id, verdict, seconds, one line of prediction and measurement),
    the claims that did not run, then one section per claim with its statement, source,
    prediction, measurement, tolerance, verdict, error, a table of the scalar numbers of its
    ``values`` (nested dicts flattened; long lists summarised by count, min, median and max),
    its figures (linked) and its Markdown tables (included).

    Parameters
    ----------
    results : sequence of ClaimResult or dict
        The results of the run, in order; dicts as written by ``ClaimResult.to_dict`` (the
        ``claims`` of a ``results.json``).
    provenance : mapping
        As written by ``sgdnoise verify`` (``versions``, ``seed``, ``backend``, ``scale``,
        ``timestamp``, ``argv``, ``claims``: the ids planned, ``status``).
    figures_dir : path, optional
        Folder holding the claims' figures and tables (see :func:`claim_files`).
    report_dir : path, optional
        Folder the Markdown will be saved in: figure links are relative to it (default: the
        parent of ``figures_dir``, the layout of :func:`write_report`).

    Returns
    -------
    str
        The Markdown text; all text from the results is escaped.
    """
    records = _records(results)
    prov = _check_provenance(provenance)
    not_run = _not_run(records, prov)
    figures = Path(figures_dir) if figures_dir is not None else None
    base = Path(report_dir) if report_dir is not None else (
        figures.parent if figures is not None else Path.cwd())

    out = ["# sgdnoise verify report", "",
           f"**{_md(_counts(records, not_run))}** — {_md(_status(prov, records, not_run))}", ""]
    out += ["## Provenance", ""]
    out += _md_table(["", ""], _provenance_rows(prov, records, not_run))
    pkgs = _package_rows(prov)
    if pkgs:
        out += ["", "Package versions:", ""]
        out += _md_table(["package", "version"], pkgs)
    out += ["", "## Summary", ""]
    summary = [(f"[{r['id']}](#{_anchor(r['id']).lower()})", r.get("verdict", "—"),
                _seconds(r.get("seconds")), _one_line(r.get("prediction")),
                _one_line(r.get("measurement"))) for r in records]
    summary += [(cid, "not run", "—", "—", "—") for cid in not_run]
    lines = _md_table(["id", "verdict", "time", "prediction", "measurement"], [])
    for row in summary:
        # the id cell is a link built here; only its text is escaped
        cells = [row[0] if row[0].startswith("[") else _md_cell(row[0])]
        cells += [_md_cell(c) for c in row[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    out += lines
    if not_run:
        out += ["", f"Not run: {_md(', '.join(not_run))}."]

    for r in records:
        cid = r["id"]
        out += ["", f'<a id="{_anchor(cid).lower()}"></a>', "",
                f"## {_md(cid)}: {_md(r.get('verdict', '—'))}", ""]
        for label, text in _claim_fields(r):
            if "\n" in text.strip():
                out += ["", f"**{label}:**", "", *_md_block(text.strip("\n")), ""]
            else:
                out += [f"- **{label}:** {_md(text)}"]
        rows, tables, left_out = _flatten_values(r.get("values") or {})
        if rows:
            out += ["", "**values**", ""]
            out += _md_table(["quantity", "value"], rows)
            if left_out:
                out += ["", f"… and {left_out} more in results.json."]
        for key, recs in tables:
            cols = _record_columns(recs)
            out += ["", f"**{_md(key)}** ({len(recs)} records)", ""]
            out += _md_table(cols, [[_cell(rec.get(c)) for c in cols] for rec in recs])
        for path in claim_files(figures, cid):
            if path.suffix.lower() == TABLE_SUFFIX:
                try:
                    table = path.read_text(encoding="utf-8").strip("\n")
                except (OSError, UnicodeDecodeError) as exc:
                    table = _md(f"(could not read {path.name}: {exc})")
                out += ["", f"**{_md(path.name)}**", "", table]
            else:
                out += ["", f"![{_md(path.name)}]({_md_link(path, base)})"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- HTML

#: No scripts, no network: only inline styles and ``data:`` images may load.
_CSP = ('<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">")
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:72rem;
margin:2rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;
padding-bottom:.2rem}h3{font-size:1rem;margin-top:1.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d0d0d0;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}table.fields th{width:8rem;background:#fafafa}
.num{font-variant-numeric:tabular-nums}
pre{margin:0;white-space:pre-wrap;font-size:.85rem}
.verdict{font-weight:600;padding:0 .35rem;border-radius:.2rem}
.pass{color:#0a5d1f;background:#e3f4e6}.fail{color:#8a1010;background:#fbe3e3}
.error{color:#7a4b00;background:#fdf0d5}.notrun{color:#555;background:#eee}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}.note{color:#555;font-size:.9rem}
"""


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _verdict_html(verdict: Any) -> str:
    cls = _VERDICT_CLASS.get(str(verdict), "notrun")
    return f'<span class="verdict {cls}">{_h(verdict)}</span>'


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A table of already-escaped HTML cells."""
    out = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    out.append("</table>")
    return out


def _fields_html(fields: Sequence[tuple[str, str]]) -> list[str]:
    """A label/value table of already-escaped HTML."""
    return ['<table class="fields">', *(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in fields),
            "</table>"]


_SEPARATOR = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def _split_row(line: str) -> list[str]:
    line = line.strip()
    line = line.removeprefix("|")
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)]


def _markdown_table_html(text: str) -> list[str]:
    """A claim's Markdown table file as HTML (pipe tables; other lines as escaped paragraphs)."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            if len(block) >= 2 and _SEPARATOR.match(block[1].strip()):
                header = [_h(c) for c in _split_row(block[0])]
                rows = [[_h(c) for c in _split_row(b)] for b in block[2:]]
                out += _html_table(header, rows)
            else:
                out.append("<pre>" + _h("\n".join(block)) + "</pre>")
            continue
        if line.strip():
            out.append(f"<p>{_h(line.strip())}</p>")
        i += 1
    return out


def _figure_html(path: Path) -> list[str]:
    try:
        size = path.stat().st_size
        if size > _MAX_EMBED_BYTES:
            return [(f'<p class="note">{_h(path.name)}: {size / 2**20:.1f} MiB, too large to '
                     "embed; see the figures folder.</p>")]
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        return [f'<p class="note">could not read {_h(path.name)}: {_h(exc)}</p>']
    mime = IMAGE_TYPES[path.suffix.lower()]
    return ["<figure>", f'<img src="data:{mime};base64,{data}" alt="{_h(path.name)}">',
            f"<figcaption>{_h(path.name)}</figcaption>", "</figure>"]


def render_html(results: Sequence[ClaimResult | Mapping[str, Any]], *,
                provenance: Mapping[str, Any],
                figures_dir: str | os.PathLike[str] | None = None) -> str:
    """The report of a ``sgdnoise verify`` run as one self-contained HTML page.

    Same content as :func:`render_markdown`; the figures are embedded as base64 ``data:`` URIs,
    the style sheet is inline, the page holds no JavaScript and loads nothing from the network
    (a Content-Security-Policy ``<meta>`` forbids it), and all text is HTML-escaped.

    Parameters
    ----------
    results : sequence of ClaimResult or dict
        The results of the run, in order (see :func:`render_markdown`).
    provenance : mapping
        Provenance of the run (see :func:`render_markdown`).
    figures_dir : path, optional
        Folder holding the claims' figures and tables (see :func:`claim_files`).

    Returns
    -------
    str
        The HTML document.
    """
    records = _records(results)
    prov = _check_provenance(provenance)
    not_run = _not_run(records, prov)
    figures = Path(figures_dir) if figures_dir is not None else None

    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           _CSP,
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>sgdnoise verify report</title>", f"<style>{_CSS}</style>", "</head>",
           "<body>", "<h1>sgdnoise verify report</h1>",
           (f"<p><strong>{_h(_counts(records, not_run))}</strong> — "
            f"{_h(_status(prov, records, not_run))}</p>"), "<h2>Provenance</h2>"]
    out += _fields_html([(_h(k), _h(v)) for k, v in _provenance_rows(prov, records, not_run)])
    pkgs = _package_rows(prov)
    if pkgs:
        out += _html_table(["package", "version"], [(_h(k), _h(v)) for k, v in pkgs])
    out.append("<h2>Summary</h2>")
    rows = [(f'<a href="#{_h(_anchor(r["id"]))}">{_h(r["id"])}</a>',
             _verdict_html(r.get("verdict", "—")), _h(_seconds(r.get("seconds"))),
             _h(_one_line(r.get("prediction"))), _h(_one_line(r.get("measurement"))))
            for r in records]
    rows += [(_h(cid), _verdict_html("not run"), "—", "—", "—") for cid in not_run]
    out += _html_table(["id", "verdict", "time", "prediction", "measurement"], rows)
    if not_run:
        out.append(f'<p class="note">Not run: {_h(", ".join(not_run))}.</p>')

    for r in records:
        cid = r["id"]
        out += [f'<section id="{_h(_anchor(cid))}">',
                f"<h2>{_h(cid)} {_verdict_html(r.get('verdict', '—'))}</h2>"]
        fields = []
        for label, text in _claim_fields(r):
            value = (_verdict_html(text) if label == "verdict"
                     else f"<pre>{_h(text.strip())}</pre>" if "\n" in text.strip()
                     else _h(text))
            fields.append((_h(label), value))
        out += _fields_html(fields)
        vrows, tables, left_out = _flatten_values(r.get("values") or {})
        if vrows:
            out.append("<h3>values</h3>")
            out += _html_table(["quantity", "value"],
                               [(_h(k), f'<span class="num">{_h(v)}</span>') for k, v in vrows])
            if left_out:
                out.append(f'<p class="note">… and {left_out} more in results.json.</p>')
        for key, recs in tables:
            cols = _record_columns(recs)
            out.append(f"<h3>{_h(key)} ({len(recs)} records)</h3>")
            out += _html_table([_h(c) for c in cols],
                               [[_h(_cell(rec.get(c))) for c in cols] for rec in recs])
        for path in claim_files(figures, cid):
            if path.suffix.lower() == TABLE_SUFFIX:
                out.append(f"<h3>{_h(path.name)}</h3>")
                try:
                    out += _markdown_table_html(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError) as exc:
                    out.append(f'<p class="note">could not read {_h(path.name)}: {_h(exc)}</p>')
            else:
                out += _figure_html(path)
        out.append("</section>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- files


def is_results_payload(payload: Any) -> bool:
    """Whether ``payload`` (parsed JSON) is a ``results.json`` of ``sgdnoise verify``: an object
    with a ``claims`` list and a ``provenance`` object holding the ``versions``."""
    return (isinstance(payload, dict) and isinstance(payload.get("claims"), list)
            and isinstance(payload.get("provenance"), dict)
            and "versions" in payload["provenance"])


def _foreign_figures(folder: Path) -> list[str]:
    """Entries of ``figures/`` other than images and tables (what the claims draw)."""
    return [e.name + ("/" if e.is_dir() else "") for e in folder.iterdir()
            if e.is_symlink() or not e.is_file()
            or (e.suffix.lower() not in IMAGE_TYPES and e.suffix.lower() != TABLE_SUFFIX
                and e.name not in _io.SYSTEM_FILES)]


#: The output folder of ``sgdnoise verify --out``: recognised by a ``results.json`` (see
#: :func:`is_results_payload`), holding nothing but ``results.json``, ``report.md``,
#: ``report.html`` and a ``figures`` folder of images and Markdown tables.
VERIFY_OUTPUT = _io.OutputLayout(
    command="sgdnoise verify", marker="results.json", recognise=is_results_payload,
    files=("results.json", "report.md", "report.html"), folders=("figures",),
    check_folder=_foreign_figures)


def _write_text_atomic(path: Path, text: str) -> Path:
    """Write via a temporary file in the same folder and rename; permissions follow the umask
    (``mkstemp`` alone would leave the report readable by its owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def results_payload(results: Sequence[ClaimResult | Mapping[str, Any]], *,
                    provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The content of ``results.json``: ``{"provenance": ..., "claims": [...]}``.

    Parameters
    ----------
    results : sequence of ClaimResult or dict
        The results of the run, in order.
    provenance : mapping
        Provenance of the run.

    Returns
    -------
    dict
        JSON-ready (non-finite floats of ``values`` become strings).
    """
    return {"provenance": _jsonable(_check_provenance(provenance)),
            "claims": _records(results)}


def write_report(results: Sequence[ClaimResult | Mapping[str, Any]],
                 out_dir: str | os.PathLike[str], *, provenance: Mapping[str, Any],
                 figures_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Write ``results.json``, ``report.md`` and ``report.html`` to ``out_dir``.

    Each file is written to a temporary file in ``out_dir`` and renamed over the old one, so
    calling this after every claim of a run keeps a complete, readable report of what has run.

    Parameters
    ----------
    results : sequence of ClaimResult or dict
        The results so far, in order; dicts as in the ``claims`` of a ``results.json``.
    out_dir : path
        The output folder (created if missing).
    provenance : mapping
        Provenance of the run (:func:`sgdnoise._io.provenance` plus ``seed``, ``backend``,
        ``scale``, ``claims``: every id planned, so the report can list those not run, and
        ``status``: ``"running"``, ``"interrupted"`` or ``"complete"``).
    figures_dir : path, optional
        Folder of the claims' figures and tables (default ``out_dir / "figures"``).

    Returns
    -------
    dict of str to Path
        ``{"json": ..., "markdown": ..., "html": ...}``.
    """
    payload = results_payload(results, provenance=provenance)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder; {str(out)!r} is a file")
    figures = Path(figures_dir) if figures_dir is not None else out / "figures"
    records, prov = payload["claims"], payload["provenance"]
    # everything is rendered before anything is written: a failure leaves the old files alone
    texts = {
        # the layout of sgdnoise._io.write_json_atomic (indent 2, UTF-8, no NaN)
        "json": json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
        "markdown": render_markdown(records, provenance=prov, figures_dir=figures,
                                    report_dir=out),
        "html": render_html(records, provenance=prov, figures_dir=figures),
    }
    names = {"json": "results.json", "markdown": "report.md", "html": "report.html"}
    out.mkdir(parents=True, exist_ok=True)
    return {key: _write_text_atomic(out / names[key], text) for key, text in texts.items()}


__all__ = [
    "IMAGE_TYPES",
    "TABLE_SUFFIX",
    "VERIFY_OUTPUT",
    "claim_files",
    "is_results_payload",
    "render_html",
    "render_markdown",
    "results_payload",
    "write_report",
]
