"""LaTeX in markdown cells as MathML, so that exported HTML shows formulas without MathJax.

Browsers render MathML natively (Chromium since version 109, Firefox, Safari). The markdown is
parsed by nbconvert's own math-aware parser (``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``,
``\\begin{env}...\\end{env}``), so exactly what JupyterLab shows as a formula is converted.
"""
from __future__ import annotations

import re
from html import escape

import latex2mathml.converter
from nbconvert.filters.markdown_mistune import IPythonRenderer

_XMLNS = re.compile(r'\s+xmlns="[^"]*"')
# latex2mathml passes a command it does not know through as text, e.g. <mi>\foo</mi>.
_UNKNOWN = re.compile(r">(\\[A-Za-z]+)<")


def latex_to_mathml(tex: str, *, display: bool) -> str:
    """One formula as a ``<math>`` element (HTML5: no namespace attribute needed).

    Raises:
        ValueError: when ``latex2mathml`` cannot convert it or leaves a command it does not know
            as text (the message names the formula).
    """
    try:
        mathml = latex2mathml.converter.convert(tex.strip(), display="block" if display else "inline")
    except Exception as exc:  # noqa: BLE001 - the converter raises many types; all mean "not converted"
        raise ValueError(f"Could not convert the LaTeX formula {tex.strip()!r} to MathML: "
                         f"{type(exc).__name__}: {exc}") from None
    unknown = _UNKNOWN.findall(mathml)
    if unknown:
        raise ValueError(f"Could not convert the LaTeX formula {tex.strip()!r} to MathML: "
                         f"{', '.join(sorted(set(unknown)))} not supported by latex2mathml")
    return _XMLNS.sub("", mathml, count=1)


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with formulas turned into MathML.

    A formula that cannot be converted is kept as its LaTeX source in ``<code class="tex">`` and
    recorded in :attr:`failures` (the exporter reports them).
    """

    def __init__(self, *args, failures: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.failures = failures if failures is not None else []

    def _math(self, tex: str, display: bool, source: str) -> str:
        try:
            return latex_to_mathml(tex, display=display)
        except ValueError as exc:
            self.failures.append(str(exc))
            return f'<code class="tex">{escape(source)}</code>'

    def block_math(self, body: str) -> str:
        """Display math (``$$...$$``, ``\\[...\\]``)."""
        return self._math(body, True, f"$${body}$$")

    def inline_math(self, body: str) -> str:
        """Inline math (``$...$``, ``\\(...\\)``)."""
        return self._math(body, False, f"${body}$")

    def latex_environment(self, name: str, body: str) -> str:
        """``\\begin{name}...\\end{name}``, displayed."""
        tex = f"\\begin{{{name}}}{body}\\end{{{name}}}"
        return self._math(tex, True, tex)
