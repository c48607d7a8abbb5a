"""Griffe extension: render the reST constructs of the package's numpydoc docstrings as Markdown.

mkdocstrings renders docstring text as Markdown, while the docstrings follow numpydoc and keep the
reST markup that Sphinx and ``help()`` readers expect.  This extension rewrites each docstring's
value when griffe loads the object, before the numpydoc sections are parsed:

* ``.. math::`` directives, one-line or indented blocks, become ``$$`` display blocks (multi-line
  equations with ``\\`` or ``&`` are wrapped in ``aligned``); ``:math:`x``` becomes ``$x$``.
  ``pymdownx.arithmatex`` (generic mode) keeps both away from Markdown, so ``\\|``, ``\\\\`` and
  ``_`` survive.
* Cross-reference roles (``:func:``, ``:class:``, ``:meth:``, ``:attr:``, ``:mod:``, ``:data:``,
  ``:obj:``, ``:exc:``, ``:const:``) become code spans; ``~a.b.c`` shows ``c``, as in Sphinx.
* A paragraph ending in ``::`` followed by an indented block becomes a fenced code block
  (``python`` when the block parses as Python, ``text`` otherwise).
* Simple tables (``=====  =====`` borders) become Markdown tables.
* Sphinx-style ``#:`` comments directly above an assignment become that attribute's docstring
  (griffe itself only reads a string literal below the assignment).

Registered in ``mkdocs.yml`` under the python handler's ``options: extensions:``.
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any

import griffe

__all__ = ["RstToMarkdown", "rst_to_markdown"]

_MATH_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::(?P<rest>.*)$")
_DIRECTIVE_OPTION = re.compile(r"^:[A-Za-z-]+:")
_LITERAL_INTRO = re.compile(r"^(?P<indent>[ \t]*)(?P<text>.*?)(?P<marker>[ \t]*::)[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
_TABLE_BORDER = re.compile(r"^(?P<indent>[ \t]*)=+(?: +=+)+[ \t]*$")
_MATH_ROLE = re.compile(r":math:`(?P<body>[^`]+)`")
_XREF_ROLE = re.compile(
    r"(?::py)?:(?:func|class|meth|attr|mod|data|obj|exc|const|ref|doc|term):`(?P<body>[^`]+)`"
)
_UNESCAPED_AMPERSAND = re.compile(r"(?<!\\)&")
_ODD_TRAILING_BACKSLASH = re.compile(r"(?<!\\)(?:\\\\)*\\$")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_extent(lines: list[str], start: int, base: int) -> int:
    """End (exclusive) of the lines from ``start`` that are blank or indented deeper than ``base``.

    Trailing blank lines are left out of the block.
    """
    end = start
    last = start
    while end < len(lines) and (not lines[end].strip() or _indent_of(lines[end]) > base):
        end += 1
        if lines[end - 1].strip():
            last = end
    return last


def _equations(content: list[str]) -> list[list[str]]:
    """Split math content at blank lines (one equation each, as Sphinx does)."""
    out: list[list[str]] = [[]]
    for line in content:
        if line.strip():
            out[-1].append(line.rstrip())
        elif out[-1]:
            out.append([])
    return [eq for eq in out if eq]


def _display_math(eq: list[str], indent: str) -> list[str]:
    body = textwrap.dedent("\n".join(eq)).split("\n")
    # TeX reads a backslash before a line break as a control space; keep it one explicitly
    body = [line + " " if _ODD_TRAILING_BACKSLASH.search(line) else line for line in body]
    joined = "\n".join(body)
    if ("\\\\" in joined or _UNESCAPED_AMPERSAND.search(joined)) and "\\begin{" not in joined:
        body = ["\\begin{aligned}", *body, "\\end{aligned}"]
    return [f"{indent}$$", *(f"{indent}{line}" if line else "" for line in body), f"{indent}$$"]


def _convert_math_block(lines: list[str], i: int) -> tuple[list[str], int]:
    """Rewrite the ``.. math::`` directive at line ``i``; return its lines and the next index."""
    m = _MATH_DIRECTIVE.match(lines[i])
    indent = m.group("indent")
    first = m.group("rest").strip()
    end = _block_extent(lines, i + 1, len(indent))
    rest = textwrap.dedent("\n".join(lines[i + 1:end])).split("\n") if end > i + 1 else []
    if not first:
        while rest and (not rest[0].strip() or _DIRECTIVE_OPTION.match(rest[0].strip())):
            rest = rest[1:]
    content = ([first] if first else []) + rest
    out: list[str] = []
    for eq in _equations(content):
        if out:
            out.append("")
        out.extend(_display_math(eq, indent))
    return out, end


def _code_language(code: str) -> str:
    try:
        ast.parse(code)
    except SyntaxError:
        return "text"
    return "python"


def _convert_literal_block(lines: list[str], i: int) -> tuple[str | None, list[str], int] | None:
    """Rewrite a ``text::`` paragraph end and its indented block, or None if it is not one.

    Returns the rewritten last line of the paragraph (None for a lone ``::``), the fenced block
    and the index of the line after the block.
    """
    m = _LITERAL_INTRO.match(lines[i])
    if m is None or m.group("text").lstrip().startswith(".."):
        return None
    # the block must be separated by a blank line and indented deeper than the paragraph
    j = i + 1
    if j >= len(lines) or lines[j].strip():
        return None
    while j < len(lines) and not lines[j].strip():
        j += 1
    indent = m.group("indent")
    if j >= len(lines) or _indent_of(lines[j]) <= len(indent):
        return None
    end = _block_extent(lines, j, len(indent))
    code = textwrap.dedent("\n".join(lines[j:end]))
    text, marker = m.group("text"), m.group("marker")
    # "text::" keeps one colon, "text ::" drops both, a lone "::" disappears (reST's rules)
    intro = f"{indent}{text}{':' if marker == '::' else ''}" if text.strip() else None
    out = [f"{indent}```{_code_language(code)}"]
    out.extend(f"{indent}{line}" if line else "" for line in code.split("\n"))
    out.append(f"{indent}```")
    return intro, out, end


def _table_cells(line: str, columns: list[tuple[int, int]]) -> list[str]:
    cells = []
    for k, (start, _) in enumerate(columns):
        stop = columns[k + 1][0] if k + 1 < len(columns) else len(line)
        cells.append(line[start:stop].strip().replace("|", "\\|"))
    return cells


def _convert_table(lines: list[str], i: int) -> tuple[list[str], int] | None:
    """Rewrite the reST simple table whose top border is line ``i``, or None if it is not one."""
    indent = _TABLE_BORDER.match(lines[i]).group("indent")
    columns = [(mm.start(), mm.end()) for mm in re.finditer(r"=+", lines[i])]
    borders = [
        k for k in range(i + 1, len(lines))
        if _TABLE_BORDER.match(lines[k])
        and [(mm.start(), mm.end()) for mm in re.finditer(r"=+", lines[k])] == columns
    ]
    if not borders:
        return None
    mid = borders[0]
    # header when a second border follows directly after the body (no blank line in between)
    if (len(borders) > 1 and mid + 1 < len(lines) and lines[mid + 1].strip()
            and all(lines[k].strip() for k in range(mid + 1, borders[1]))):
        header_lines, body_lines, end = lines[i + 1:mid], lines[mid + 1:borders[1]], borders[1] + 1
    else:
        header_lines, body_lines, end = [], lines[i + 1:mid], mid + 1

    def rows(block: list[str]) -> list[list[str]]:
        out: list[list[str]] = []
        for line in block:
            if not line.strip():
                continue
            cells = _table_cells(line, columns)
            if out and not cells[0]:  # continuation line: first column blank
                out[-1] = [f"{a} {b}".strip() for a, b in zip(out[-1], cells, strict=True)]
            else:
                out.append(cells)
        return out

    header = rows(header_lines)
    head = [" ".join(col).strip() for col in zip(*header, strict=True)] if header else [""] * len(
        columns)
    body = rows(body_lines)

    def fmt(cells: list[str]) -> str:
        return f"{indent}| " + " | ".join(cells) + " |"

    out = [fmt(head), f"{indent}|" + "|".join(" --- " for _ in columns) + "|"]
    out.extend(fmt(r) for r in body)
    return out, end


def _inline_math(m: re.Match[str]) -> str:
    body = " ".join(part.strip() for part in m.group("body").split("\n")).strip()
    return f"${body}$"


def _xref(m: re.Match[str]) -> str:
    body = m.group("body").strip()
    title = re.match(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$", body, re.DOTALL)
    if title:
        body = title.group("title")
    body = body.lstrip("!")
    if body.startswith("~"):
        body = body[1:].rsplit(".", 1)[-1]
    return f"`{body}`"


def _convert_inline(text: str) -> str:
    return _XREF_ROLE.sub(_xref, _MATH_ROLE.sub(_inline_math, text))


def _pad(out: list[str], block: list[str]) -> None:
    """Append ``block`` to ``out`` with one blank line on each side."""
    if out and out[-1].strip():
        out.append("")
    out.extend(block)
    out.append("")


def rst_to_markdown(text: str) -> str:
    """Rewrite the reST markup of a docstring (math, roles, literal blocks, tables) as Markdown.

    Text that is already Markdown passes through unchanged, so the rewrite is idempotent.
    """
    lines = text.split("\n")
    out: list[str] = []
    pending: list[str] = []  # plain text lines, converted inline when flushed

    def flush() -> None:
        if pending:
            out.extend(_convert_inline("\n".join(pending)).split("\n"))
            pending.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):  # an existing fenced block: copy verbatim
            flush()
            fence = line.strip()[:3]
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(fence):
                end += 1
            out.extend(lines[i:end + 1])
            i = end + 1
            continue
        converted: tuple[list[str], int] | None = None
        if _MATH_DIRECTIVE.match(line):
            converted = _convert_math_block(lines, i)
        elif _TABLE_BORDER.match(line):
            converted = _convert_table(lines, i)
        elif line.rstrip().endswith("::"):
            literal = _convert_literal_block(lines, i)
            if literal is not None:
                intro, block, end = literal
                if intro is not None:
                    pending.append(intro)  # the paragraph goes on, now ending in one colon
                converted = block, end
        if converted is None:
            pending.append(line)
            i += 1
            continue
        flush()
        block, i = converted
        if _TABLE_BORDER.match(line):
            block = [_convert_inline(row) for row in block]
        _pad(out, block)
        while i < len(lines) and not lines[i].strip():
            i += 1
    flush()
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


def _comment_docstring(lines: list[str], lineno: int) -> tuple[str, int, int] | None:
    """The ``#:`` comment lines right above line ``lineno`` (1-based), joined, with their span."""
    k = lineno - 2
    found: list[str] = []
    while k >= 0 and lines[k].lstrip().startswith("#:"):
        found.append(lines[k].lstrip()[2:].removeprefix(" "))
        k -= 1
    if not found:
        return None
    return "\n".join(reversed(found)), k + 2, lineno - 1


class RstToMarkdown(griffe.Extension):
    """Rewrite every loaded docstring with :func:`rst_to_markdown`; read ``#:`` comments."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        """Called by griffe for every object it creates, before docstrings are parsed."""
        if (obj.docstring is None and obj.is_attribute and isinstance(node, ast.AST)
                and isinstance(getattr(agent, "code", None), str)):
            found = _comment_docstring(agent.code.split("\n"), node.lineno)
            if found is not None:
                value, lineno, endlineno = found
                obj.docstring = griffe.Docstring(
                    value, lineno=lineno, endlineno=endlineno, parent=obj,
                    parser=agent.docstring_parser, parser_options=agent.docstring_options,
                )
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
