"""Executed notebooks and HTML that read well everywhere: offline, without a kernel, on GitHub.

nbconvert's HTML loads require.js, MathJax, the widget manager (and, for diagrams, mermaid) from
CDNs, so offline the formulas stay raw ``$$...$$`` and widgets stay blank. Here:

* formulas become MathML at export time (:mod:`._mathml`), which browsers render natively;
* the lab template is used without those script tags;
* widget views and widget state are dropped (:func:`strip_widgets`): what remains of a
  :class:`~hybridkit.viz.FieldPlayer` output is its static fallback, a self-contained animation;
* :func:`remote_assets` lists anything left that a browser would fetch from the network.
"""
from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from bs4 import BeautifulSoup
from nbconvert import HTMLExporter
from nbconvert.preprocessors import Preprocessor

from .._io import atomic_write
from ._mathml import MathMLRenderer

try:  # jinja2 < 3.1 / >= 3.1, as nbconvert itself does
    from jinja2 import contextfilter  # type: ignore[attr-defined]
except ImportError:
    from jinja2 import pass_context as contextfilter

WIDGET_MIMETYPES = ("application/vnd.jupyter.widget-view+json",
                    "application/vnd.jupyter.widget-state+json")

# The lab template without its CDN scripts; MathML gets a little room, the animation is centred.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}
<style type="text/css">
math[display="block"] { display: block math; margin: 0.7em 0; font-size: 1.12em; }
math { font-size: 1.08em; }
code.tex { color: var(--jp-warn-color1, #c00); }
.jp-OutputArea-output .animation { display: block; }
</style>
{% endblock extra_css %}
"""


def strip_widgets(nb) -> int:
    """Remove widget views and widget state from a notebook, in place.

    An output that held only a widget view (and its plain-text repr) is removed; an output with
    a fallback (``text/html``, ``image/png``, e.g. a ``FieldPlayer``'s animation) keeps it.

    Returns:
        The number of widget views removed.
    """
    nb.metadata.pop("widgets", None)
    removed = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None and any(m in data for m in WIDGET_MIMETYPES):
                removed += WIDGET_MIMETYPES[0] in data
                for m in WIDGET_MIMETYPES:
                    data.pop(m, None)
                if set(data) <= {"text/plain"}:
                    continue  # the widget's repr alone says nothing where it cannot render
            kept.append(out)
        cell["outputs"] = kept
    return removed


class StripWidgets(Preprocessor):
    """nbconvert preprocessor form of :func:`strip_widgets`."""

    def preprocess(self, nb, resources):
        """Strip the widget views and state of ``nb`` (in place)."""
        strip_widgets(nb)
        return nb, resources


class OfflineHTMLExporter(HTMLExporter):
    """nbconvert's lab HTML without anything loaded from the network; formulas as MathML.

    Attributes:
        math_failures: messages for formulas that could not be converted (kept as LaTeX code).
    """

    def __init__(self, **kwargs):
        super().__init__(raw_template=_TEMPLATE, **kwargs)
        self.register_preprocessor(StripWidgets, enabled=True)
        self.math_failures: list[str] = []

    @contextfilter
    def markdown2html(self, context, source):
        """Markdown to HTML with formulas as MathML (the parent's filter, another renderer)."""
        cell = context.get("cell", {})
        path = context.get("resources", {}).get("metadata", {}).get("path", "")
        renderer = MathMLRenderer(escape=False, attachments=cell.get("attachments", {}),
                                  embed_images=self.embed_images, path=path,
                                  anchor_link_text=self.anchor_link_text,
                                  exclude_anchor_links=self.exclude_anchor_links,
                                  failures=self.math_failures, **self.lexer_options)
        from nbconvert.filters.markdown_mistune import MarkdownWithMath

        return MarkdownWithMath(renderer=renderer).render(source)


def offline_html(nb, *, name: str = "notebook") -> tuple[str, list[str]]:
    """A notebook as one self-contained HTML page (the notebook itself is not changed).

    Args:
        nb: an ``nbformat`` notebook (version 4), typically executed.
        name: the page title when the notebook's metadata has none.

    Returns:
        ``(html, math_failures)``: the page, and a message per formula kept as LaTeX source.
    """
    exporter = OfflineHTMLExporter()
    html, _ = exporter.from_notebook_node(copy.deepcopy(nb), resources={"metadata": {"name": name}})
    return _without_css_comments(html), list(exporter.math_failures)


_REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*['"]?([^'"()\s;]+)""", re.IGNORECASE)
_JS_IMPORT = re.compile(r"""(?:\bimport\s*\(\s*|\bimport\b[^'"();]*?\bfrom\s*|\bimport\s+)['"]([^'"]+)['"]""")
_LOADING_ATTRS = {"script": ("src",), "link": ("href",), "img": ("src", "srcset"), "iframe": ("src",),
                  "embed": ("src",), "object": ("data",), "source": ("src", "srcset"),
                  "video": ("src", "poster"), "audio": ("src",), "track": ("src",), "input": ("src",)}


def remote_assets(html: str) -> list[str]:
    """The URLs in ``html`` that a browser would fetch from the network while showing it.

    Looks at the attributes that load something (``<script src>``, ``<link href>``, ``<img
    src>``, ...; not ``<a href>``, a link the reader may follow), at ``url(...)`` / ``@import`` in
    styles, and at ``import`` in module scripts. ``data:`` URIs and relative paths are local.

    Returns:
        The remote URLs, in document order (empty for a self-contained page).
    """
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for tag in soup.find_all(True):
        for attr in _LOADING_ATTRS.get(tag.name, ()):
            value = tag.get(attr)
            if value and _REMOTE.match(value):
                found.append(value)
        style = tag.get("style")
        if style:
            found += [u for u in _CSS_URL.findall(style) if _REMOTE.match(u)]
    for tag in soup.find_all("style"):
        found += [u for u in _CSS_URL.findall(tag.get_text()) if _REMOTE.match(u)]
    for tag in soup.find_all("script"):
        found += [u for u in _JS_IMPORT.findall(tag.get_text()) if _REMOTE.match(u)]
    return found


def count_animations(html: str) -> int:
    """Self-contained animations in ``html``: players' fallbacks and matplotlib ``to_jshtml``."""
    return html.count('class="hk-animation"') + html.count('<div class="animation">')


_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_STYLE = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.DOTALL | re.IGNORECASE)


def _without_css_comments(html: str) -> str:
    # The lab theme's comments cite web pages (plain text, nothing is loaded); without them a
    # search of the page for "http" finds only what a reader could follow.
    return _STYLE.sub(lambda m: m.group(1) + _CSS_COMMENT.sub("", m.group(2)) + m.group(3), html)


@dataclass(frozen=True)
class NotebookExport:
    """What :func:`export_notebook` wrote and measured."""

    notebook: Path  # the executed .ipynb (widget views stripped, fallbacks kept)
    html: Path | None  # the self-contained HTML, None when not asked for
    execute_s: float  # seconds spent running the cells (0 without execution)
    export_s: float  # seconds spent converting to HTML
    remote: tuple[str, ...]  # URLs the HTML still loads from the network (empty when offline-safe)
    math_failures: tuple[str, ...]  # formulas kept as LaTeX source
    animations: int  # self-contained animations in the HTML


def export_notebook(source: str | Path, out_dir: str | Path, *, execute: bool = True,
                    html: bool = True, timeout: int = 1800, kernel_name: str = "python3",
                    cwd: str | Path | None = None) -> NotebookExport:
    """Execute a notebook headless and write it, with a self-contained HTML copy, to ``out_dir``.

    What ``python -m hybridkit notebooks`` does per notebook. The written ``.ipynb`` has no widget
    views or widget state (they only show an error without the kernel that made them); a player's
    fallback (an animation) stays. Files are written atomically.

    Args:
        source: the ``.ipynb`` to run.
        out_dir: where ``<name>.ipynb`` and ``<name>.html`` go (created if needed).
        execute: run the cells first (else convert the stored outputs).
        html: also write the HTML.
        timeout: seconds per cell.
        kernel_name: the Jupyter kernel to run it with.
        cwd: the working directory of the kernel (default: the notebook's folder).

    Returns:
        A :class:`NotebookExport` with the paths, times and checks of the HTML.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        nbclient.exceptions.CellExecutionError: a cell raised; the notebook as far as it ran is
            written to ``out_dir`` first, so its outputs show where.
    """
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"Expected a notebook file, got {source} (not found). "
                                "Fix: pass the path of an existing .ipynb.")
    out_dir = Path(out_dir)
    nb = nbformat.read(source, as_version=4)
    target = out_dir / source.name
    t0 = time.perf_counter()
    if execute:
        from nbconvert.preprocessors import ExecutePreprocessor

        runner = ExecutePreprocessor(timeout=int(timeout), kernel_name=kernel_name, store_widget_state=False)
        try:
            runner.preprocess(nb, {"metadata": {"path": str(cwd if cwd is not None else source.parent)}})
        finally:
            strip_widgets(nb)
            atomic_write(target, nbformat.writes(nb))
    else:
        strip_widgets(nb)
        atomic_write(target, nbformat.writes(nb))
    execute_s = time.perf_counter() - t0 if execute else 0.0
    if not html:
        return NotebookExport(target, None, execute_s, 0.0, (), (), 0)
    t1 = time.perf_counter()
    page, failures = offline_html(nb, name=source.stem)
    page_path = atomic_write(target.with_suffix(".html"), page)
    return NotebookExport(target, page_path, execute_s, time.perf_counter() - t1, tuple(remote_assets(page)),
                          tuple(failures), count_animations(page))
