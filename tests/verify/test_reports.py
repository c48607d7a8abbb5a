"""Reports of a verify run: results.json, report.md and a self-contained report.html."""

import base64
import json
import re
import struct
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest

from sgdnoise.verify import reports
from sgdnoise.verify._registry import ClaimResult
from sgdnoise.verify.reports import (
    claim_files,
    render_html,
    render_markdown,
    results_payload,
    write_report,
)

HOSTILE = '<script>alert("x")</script> & a|b *bold* _it_ [link](http://example.com)'


def _png(width=3, height=2):
    """A valid RGB PNG, built by hand (no image library needed)."""
    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _result(cid, *, passed=True, error=None, values=None, statement="A statement.",
            measurement="m = 1.0"):
    return ClaimResult(
        id=cid, source=f"Paper {cid}", statement=statement, prediction="p ≤ 1",
        measurement=measurement, tolerance="|z| ≤ 4", passed=passed and error is None,
        values=values or {}, seed=3, backend="numpy", scale="quick", seconds=12.345,
        error=error)


LONG = np.linspace(0.0, 1.0, 501)


@pytest.fixture
def run(tmp_path):
    """Three results (pass, FAIL with rich values, ERROR), a planned claim that did not run,
    and a figures folder with files of several claims."""
    values = {
        "margin": {"inner": {"a": 1.5, "b": -2e-17}, "flag": True},
        "deep": {"l1": {"l2": {"l3": {"l4": 1}}}},
        "curve": LONG,                                    # long array: summarised
        "pair": [0.25, float("nan")],                     # short list: written out
        "grid": np.arange(12.0).reshape(3, 4),
        "rows": [{"layer": 0, "gamma": 1.25, "ok": True},
                 {"layer": 1, "gamma": 0.75, "ok": False}],
        "label": HOSTILE,
        "figures": ["/somewhere/A1_plot.png"],
    }
    results = [
        _result("A1", statement=HOSTILE),
        _result("A2", passed=False, values=values,
                measurement="row one\nrow two | with pipe\nrow three"),
        _result("A3", error="RuntimeError: boom <b>"),
    ]
    prov = {
        "timestamp": "2026-01-02T03:04:05+00:00",
        "argv": ["/x/sgdnoise", "verify", "--out", "o"],
        "versions": {"sgdnoise": "9.9.9", "python": "3.11.7", "platform": "Linux-test",
                     "cpu_count": 2, "numpy": "2.4.6", "scipy": "1.17.1", "sympy": "1.14.0",
                     "hypothesis": "6.1", "numba": {"version": "0.68.1", "threads": 2},
                     "cupy": None, "backends": ["numpy", "numba"]},
        "seed": 3, "backend": "numpy", "scale": "quick",
        "claims": ["A1", "A2", "A3", "B9"], "status": "running",
    }
    figures = tmp_path / "out" / "figures"
    figures.mkdir(parents=True)
    png = _png()
    for name in ("A1_plot.png", "A1.png", "A10_other.png", "B9_x.png"):
        (figures / name).write_bytes(png)
    (figures / "A1_data.csv").write_text("1,2\n")
    (figures / "A2_table.md").write_text(
        "| name | value |\n|---|---|\n| <i>x</i> | 1 \\| 2 |\n\nnote <b>here</b>\n",
        encoding="utf-8")
    return results, prov, figures, png


def _section(text, start, end):
    i = text.index(start)
    j = text.index(end, i) if end else len(text)
    return text[i:j]


class _Checker(HTMLParser):
    """Every non-void element closed in order; collects tags and attributes."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


# ---------------------------------------------------------------------- files


def test_write_report_writes_three_files(run, tmp_path):
    results, prov, _, _ = run
    paths = write_report(results, tmp_path / "out", provenance=prov)
    assert set(paths) == {"json", "markdown", "html"}
    assert [p.name for p in paths.values()] == ["results.json", "report.md", "report.html"]
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data == results_payload(results, provenance=prov)
    assert [c["id"] for c in data["claims"]] == ["A1", "A2", "A3"]
    assert [c["verdict"] for c in data["claims"]] == ["pass", "FAIL", "ERROR"]
    assert data["claims"][1]["values"]["pair"][1] == "nan"  # no NaN in the JSON
    assert data["provenance"]["seed"] == 3
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_results_json_round_trip_renders_the_same_report(run, tmp_path):
    results, prov, figures, _ = run
    paths = write_report(results, tmp_path / "out", provenance=prov)
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    again = render_markdown(data["claims"], provenance=data["provenance"], figures_dir=figures)
    assert again == paths["markdown"].read_text(encoding="utf-8")
    assert render_html(data["claims"], provenance=data["provenance"],
                       figures_dir=figures) == paths["html"].read_text(encoding="utf-8")


def test_a_failed_render_leaves_the_old_report(run, tmp_path, monkeypatch):
    results, prov, _, _ = run
    out = tmp_path / "out"
    write_report(results[:1], out, provenance=prov)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def broken(*args, **kwargs):
        raise RuntimeError("render failed")

    monkeypatch.setattr(reports, "render_html", broken)
    with pytest.raises(RuntimeError, match="render failed"):
        write_report(results, out, provenance=prov)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_an_interrupted_write_leaves_no_half_file(run, tmp_path, monkeypatch):
    results, prov, _, _ = run
    out = tmp_path / "out"
    write_report(results[:1], out, provenance=prov)
    old = (out / "results.json").read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(reports.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(results, out, provenance=prov)
    assert (out / "results.json").read_bytes() == old
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # temporary file removed


def test_report_files_are_readable_by_others_as_the_umask_allows(run, tmp_path):
    import os

    results, prov, _, _ = run
    paths = write_report(results, tmp_path / "out", provenance=prov)
    umask = os.umask(0)
    os.umask(umask)
    for p in paths.values():
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------------- Markdown


def test_markdown_header_summary_and_sections(run):
    results, prov, figures, _ = run
    md = render_markdown(results, provenance=prov, figures_dir=figures)
    head = _section(md, "# sgdnoise verify report", "## Summary")
    for text in ("9.9.9", "sgdnoise verify --out o", "| seed | 3 |", "| backend | numpy |",
                 "| scale | quick |", "2026-01-02T03:04:05+00:00", "Linux-test, 2 CPUs",
                 "| numpy | 2.4.6 |", "| numba | 0.68.1 (2 threads) |", "| cupy | absent |"):
        assert text in head, text
    assert "1 passed, 1 failed, 1 error(s), 1 not run" in md
    assert "incomplete: 3 of 4 claim(s) run" in md
    summary = _section(md, "## Summary", '<a id="claim-a1">')
    rows = [ln for ln in summary.splitlines() if ln.startswith("| ")]
    assert len(rows) == 1 + 4  # header + A1, A2, A3 and B9 (not run)
    for row in rows:  # escaped pipes keep every row at five cells
        assert len(re.findall(r"(?<!\\)\|", row)) == 6, row
    assert "| [A2](#claim-a2) | FAIL | 12.3 s | p ≤ 1 | row one (+2 more lines) |" in summary
    assert "| B9 | not run | — | — | — |" in summary
    assert "Not run: B9." in summary
    a3 = _section(md, "## A3: ERROR", None)
    assert "- **error:** RuntimeError: boom \\<b\\>" in a3
    assert "- **run:** seed 3, backend numpy, scale quick, 12.3 s" in a3


def test_markdown_escapes_text_and_keeps_multiline_measurements(run):
    results, prov, figures, _ = run
    md = render_markdown(results, provenance=prov, figures_dir=figures)
    assert "<script>" not in md
    a1 = _section(md, "## A1: pass", "## A2")
    assert ("\\<script\\>alert(\"x\")\\</script\\> & a\\|b \\*bold\\* \\_it\\_ "
            "\\[link\\](http://example.com)") in a1
    a2 = _section(md, "## A2: FAIL", "## A3")
    assert "```text\nrow one\nrow two | with pipe\nrow three\n```" in a2


def test_markdown_values_table(run):
    results, prov, figures, _ = run
    md = render_markdown(results, provenance=prov, figures_dir=figures)
    a2 = _section(md, "## A2: FAIL", "## A3")
    assert "| margin.inner.a | 1.5 |" in a2
    assert "| margin.inner.b | -2e-17 |" in a2
    assert "| margin.flag | true |" in a2
    assert "| deep.l1.l2.l3 | {…} (1 entry) |" in a2   # flattened to depth 4, then summarised
    assert "| pair | \\[0.25, nan\\] |" in a2
    # 501 values 0, 1/500, …, 1: median 0.5 exactly
    assert "| curve | 501 values: min 0, median 0.5, max 1 |" in a2
    assert "| grid | array of shape (3, 4): min 0, median 5.5, max 11 |" in a2
    assert "| label | \\<script\\>" in a2
    assert "/somewhere/A1_plot.png" not in md  # values['figures'] are shown as figures
    assert "**rows** (2 records)" in a2
    assert "| layer | gamma | ok |" in a2 and "| 1 | 0.75 | false |" in a2


def test_values_table_is_capped_and_says_how_many_rows_it_left_out():
    values = {f"k{i:03d}": float(i) for i in range(reports._MAX_VALUE_ROWS + 20)}
    md = render_markdown([_result("A1", values=values)], provenance={})
    rows = [ln for ln in md.splitlines() if ln.startswith("| k")]
    assert len(rows) == reports._MAX_VALUE_ROWS and rows[-1].startswith(
        f"| k{reports._MAX_VALUE_ROWS - 1:03d} |")
    assert "… and 20 more in results.json." in md
    page = render_html([_result("A1", values=values)], provenance={})
    assert "… and 20 more in results.json." in page


def test_markdown_figures_and_tables_belong_to_their_claim(run):
    results, prov, figures, _ = run
    md = render_markdown(results, provenance=prov, figures_dir=figures)
    a1 = _section(md, "## A1: pass", "## A2")
    assert "![A1.png](figures/A1.png)" in a1
    assert "![A1\\_plot.png](figures/A1_plot.png)" in a1
    assert "A10_other" not in md and "A1_data.csv" not in md and "B9_x" not in md
    a2 = _section(md, "## A2: FAIL", "## A3")
    assert "| <i>x</i> | 1 \\| 2 |" in a2  # the claim's own Markdown table, as written
    # links are relative to the folder the report is saved in
    md_elsewhere = render_markdown(results, provenance=prov, figures_dir=figures,
                                   report_dir=figures.parent.parent)
    assert "![A1.png](out/figures/A1.png)" in md_elsewhere


# ---------------------------------------------------------------------- HTML


def test_html_is_self_contained_and_well_formed(run):
    results, prov, figures, png = run
    page = render_html(results, provenance=prov, figures_dir=figures)
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    tags = [t for t, _ in checker.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert not re.search(r"\son[a-z]+\s*=", page)           # no event-handler attributes
    assert "http://" not in page.replace("http://example.com", "")
    assert "https://" not in page
    images = [a for t, a in checker.tags if t == "img"]
    assert len(images) == 2                                 # A1.png and A1_plot.png
    for attrs in images:
        head, data = attrs["src"].split(",", 1)
        assert head == "data:image/png;base64"
        assert base64.b64decode(data) == png
    assert any(t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
               and "default-src 'none'" in a["content"] for t, a in checker.tags)
    assert "<style>" in page


def test_html_escapes_all_text(run):
    results, prov, figures, _ = run
    page = render_html(results, provenance=prov, figures_dir=figures)
    assert "<script" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; a|b" in page
    assert "RuntimeError: boom &lt;b&gt;" in page
    assert "<td>&lt;i&gt;x&lt;/i&gt;</td><td>1 | 2</td>" in page   # the claim's table, parsed
    assert "<p>note &lt;b&gt;here&lt;/b&gt;</p>" in page


def test_html_content_matches_markdown(run):
    results, prov, figures, _ = run
    page = render_html(results, provenance=prov, figures_dir=figures)
    for text in ("9.9.9", "Linux-test, 2 CPUs", "1 passed, 1 failed, 1 error(s), 1 not run",
                 '<span class="verdict fail">FAIL</span>', "Not run: B9.", "margin.inner.a",
                 "501 values: min 0, median 0.5, max 1", "<h3>rows (2 records)</h3>",
                 '<a href="#claim-A2">A2</a>', '<section id="claim-A2">',
                 "<pre>row one\nrow two | with pipe\nrow three</pre>"):
        assert text in page, text


def test_complete_and_interrupted_status(run):
    results, prov, _, _ = run
    done = dict(prov, claims=["A1", "A2", "A3"], status="complete")
    assert "— complete" in render_markdown(results, provenance=done)
    stopped = dict(prov, status="interrupted")
    md = render_markdown(results, provenance=stopped)
    assert "interrupted after 3 of 4 claim(s)" in md and "Not run: B9." in md


def test_real_provenance_renders(tmp_path):
    from sgdnoise import backends
    from sgdnoise._io import provenance

    prov = provenance(seed=0, backend="numpy", scale="quick", claims=["A1"], status="complete")
    paths = write_report([_result("A1")], tmp_path, provenance=prov)
    md = paths["markdown"].read_text(encoding="utf-8")
    info = backends.info()
    assert f"| numpy | {info['numpy']} |" in md
    assert f"{info['cpu_count']} CPUs" in md
    assert "sgdnoise" in md and "| status | complete |" in md


# ---------------------------------------------------------------------- helpers and errors


def test_claim_files_match_the_id_prefix_only(tmp_path):
    for name in ("A1.png", "A1_x.png", "A1-y.jpg", "A1_t.md", "A10_z.png", "A1_data.csv",
                 "B1_x.png", "a1_x.png", "XA1.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "A1_dir.png").mkdir()
    assert [p.name for p in claim_files(tmp_path, "A1")] == [
        "A1-y.jpg", "A1.png", "A1_t.md", "A1_x.png"]
    assert claim_files(tmp_path / "missing", "A1") == []
    assert claim_files(None, "A1") == []


def test_records_from_dicts_get_a_verdict():
    md = render_markdown([{"id": "Z1", "passed": False, "error": None},
                          {"id": "Z2", "passed": True}], provenance={})
    assert "| Z1 | FAIL |" in md.replace("[Z1](#claim-z1)", "Z1")
    assert "## Z2: pass" in md


@pytest.mark.parametrize(("call", "match"), [
    (lambda p: render_markdown("A1", provenance={}), "results"),
    (lambda p: render_markdown({"id": "A1"}, provenance={}), "results"),
    (lambda p: render_html(3, provenance={}), "results"),
    (lambda p: render_html([3], provenance={}), r"results\[0\]"),
    (lambda p: render_markdown([{"verdict": "pass"}], provenance={}), r"results\[0\]"),
    (lambda p: render_markdown([{"id": ""}], provenance={}), r"results\[0\]"),
    (lambda p: render_html([], provenance=["seed"]), "provenance"),
    (lambda p: results_payload([], provenance=None), "provenance"),
    (lambda p: write_report([], p / "file.txt", provenance={}), "out_dir"),
    (lambda p: claim_files(p, ""), "claim_id"),
    (lambda p: claim_files(p, None), "claim_id"),
])
def test_invalid_inputs_name_the_argument(tmp_path, call, match):
    (tmp_path / "file.txt").write_text("not a folder")
    with pytest.raises(ValueError, match=match):
        call(tmp_path)
