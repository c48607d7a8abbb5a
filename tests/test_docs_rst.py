"""The docs' griffe extension rewrites reST docstring markup as Markdown for mkdocstrings."""

import importlib.util
import inspect
import textwrap
from pathlib import Path

import pytest

griffe = pytest.importorskip("griffe")

EXTENSION = Path(__file__).resolve().parents[1] / "docs" / "griffe_rst.py"


def _load_extension():
    spec = importlib.util.spec_from_file_location("griffe_rst", EXTENSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ext = _load_extension()


def convert(text: str) -> str:
    return ext.rst_to_markdown(textwrap.dedent(text).strip("\n"))


def test_one_line_math_directive_becomes_display_block():
    out = convert(r"""
        Summary.

        .. math:: \|CH - HC\|_F \le \sqrt{2}\, \|C\|_F \|H\|_F

        After.
        """)
    assert out == textwrap.dedent(r"""
        Summary.

        $$
        \|CH - HC\|_F \le \sqrt{2}\, \|C\|_F \|H\|_F
        $$

        After.""").strip("\n")


def test_one_line_math_directive_keeps_continuation_lines():
    out = convert(r"""
        .. math:: a = b,
                  \qquad c = d
        """)
    assert out.split("\n") == ["$$", "a = b,", r"\qquad c = d", "$$"]


def test_indented_math_block_inside_a_section_keeps_its_indentation():
    out = convert(r"""
        Parameters
        ----------
        x : float
            Defined by

            .. math::
                x = \frac{a_1}{b_1}

            and positive.
        """)
    assert "    $$\n    x = \\frac{a_1}{b_1}\n    $$\n\n    and positive." in out
    assert ".. math::" not in out


def test_multiline_math_with_line_breaks_is_wrapped_in_aligned():
    out = convert(r"""
        .. math::
            a &= b, \\
            c &= d
        """)
    assert out.split("\n") == [
        "$$", r"\begin{aligned}", r"a &= b, \\", "c &= d", r"\end{aligned}", "$$",
    ]


def test_math_separated_by_blank_lines_gives_one_block_per_equation():
    out = convert("""
        .. math::

            a = b

            c = d
        """)
    assert out.split("\n") == ["$$", "a = b", "$$", "", "$$", "c = d", "$$"]


def test_trailing_backslash_in_math_stays_a_control_space():
    out = convert("""
        .. math:: a,\\
                  b
        """)
    assert out.split("\n") == ["$$", "a,\\ ", "b", "$$"]


def test_math_role_becomes_inline_math():
    out = convert(r"so that :math:`M - H^2 \succeq 0` holds")
    assert out == r"so that $M - H^2 \succeq 0$ holds"


def test_math_role_spanning_lines_is_joined():
    assert convert(":math:`a +\n    b` end") == "$a + b$ end"


@pytest.mark.parametrize(
    ("rst", "md"),
    [
        (":func:`sgdnoise.theory.fit_power_law`", "`sgdnoise.theory.fit_power_law`"),
        (":class:`LayerMoments.K`", "`LayerMoments.K`"),
        (":mod:`sgdnoise.verify.strategies`", "`sgdnoise.verify.strategies`"),
        (":meth:`Claim.check`", "`Claim.check`"),
        (":attr:`EigenBasis.lam`", "`EigenBasis.lam`"),
        (":py:func:`ols_slope`", "`ols_slope`"),
        (":func:`~sgdnoise.theory.ols_slope`", "`ols_slope`"),
        (":func:`the slope <sgdnoise.theory.ols_slope>`", "`the slope`"),
    ],
)
def test_cross_reference_roles_become_code_spans(rst, md):
    assert convert(f"See {rst}.") == f"See {md}."


def test_literal_block_becomes_fenced_python():
    out = convert("""
        Example::

            import numpy as np
            x = np.zeros(3)

        Text after.
        """)
    assert out.split("\n") == [
        "Example:", "", "```python", "import numpy as np", "x = np.zeros(3)", "```", "",
        "Text after.",
    ]


def test_literal_block_keeps_its_paragraph_and_reST_colon_rules():
    out = convert("""
        First line of a paragraph,
        last line ::

            print(1)
        """)
    assert out.split("\n") == [
        "First line of a paragraph,", "last line", "", "```python", "print(1)", "```",
    ]
    assert "::" not in convert("::\n\n    x = 1\n")


def test_literal_block_that_is_not_python_gets_a_text_fence():
    out = convert("""
        Output::

            +---+ not ( python
        """)
    assert "```text" in out


def test_double_colon_without_an_indented_block_is_left_alone():
    text = "A line ending in two colons::\nand no block."
    assert convert(text) == text


def test_simple_table_becomes_markdown_table():
    out = convert("""
        Families:

        ==========================  =====================  =========
        constructor                 h_p                    γ
        ==========================  =====================  =========
        :func:`identical_hessians`  H for every p          2 exactly
        :func:`random_rank_r`       rank-r PSD, random     data
                                    eigenvectors
        ==========================  =====================  =========

        After.
        """)
    assert out.split("\n") == [
        "Families:",
        "",
        "| constructor | h_p | γ |",
        "| --- | --- | --- |",
        "| `identical_hessians` | H for every p | 2 exactly |",
        "| `random_rank_r` | rank-r PSD, random eigenvectors | data |",
        "",
        "After.",
    ]


def test_table_without_header_gets_an_empty_header():
    out = convert("""
        =====  =====
        a      b
        c      d
        =====  =====
        """)
    assert out.split("\n") == ["|  |  |", "| --- | --- |", "| a | b |", "| c | d |"]


def test_existing_fenced_blocks_and_markdown_are_untouched():
    text = "Text with `code` and $x$.\n\n```python\nx = 1  # :func:`not a role`\n```"
    assert convert(text) == text


def test_conversion_is_idempotent_on_package_docstrings():
    from sgdnoise.sim import families
    from sgdnoise.theory import _symbolic
    from sgdnoise.verify import strategies

    for obj in (families, strategies, _symbolic, _symbolic.linear_regression_gradient_moments):
        once = ext.rst_to_markdown(inspect.getdoc(obj))
        assert ext.rst_to_markdown(once) == once
        assert ".. math::" not in once and ":math:`" not in once and ":func:`" not in once


def test_extension_converts_docstrings_and_reads_comment_docstrings(tmp_path):
    package = tmp_path / "rstpkg"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent('''
        r"""Package.

        .. math:: a = b
        """

        #: Names of the modes, see :func:`f`.
        MODES = ("a", "b")

        UNDOCUMENTED = 1


        def f(x):
            r"""Uses :math:`x^2`.

            Parameters
            ----------
            x : float
                Input.
            """
            return x * x
    '''))
    loader = griffe.GriffeLoader(
        extensions=griffe.load_extensions(str(EXTENSION)),
        search_paths=[str(tmp_path)],
        docstring_parser="numpy",
    )
    module = loader.load("rstpkg")
    assert module.docstring.value == "Package.\n\n$$\na = b\n$$"
    assert module["MODES"].docstring.value == "Names of the modes, see `f`."
    assert module["UNDOCUMENTED"].docstring is None
    assert module["f"].docstring.value.startswith("Uses $x^2$.")
    assert module["f"].docstring.parsed[1].value[0].name == "x"
