"""A player's frames as one self-contained HTML animation: the static fallback of a FieldPlayer.

The frames are drawn fast (the static parts of the figure once, then only the moving artists per
frame: matplotlib's blitting on an Agg canvas), stored as 256-colour PNGs (about a quarter of
the size of matplotlib's own, and indistinguishable for plots), and played by a few lines of
inline JavaScript: an image, a frame slider and buttons. Nothing is loaded from the network;
the first frame is the image's initial source, so it shows even where scripts do not run (a
sanitised notebook view, GitHub).
"""
from __future__ import annotations

import base64
import html
import io
import json
import uuid

from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from .._checks import check_count, check_real
from ._animate import frame_indices
from ._frames import FrameFigure

MAX_FRAMES = 24  # frames embedded at most (evenly spaced, first and last kept)
DPI = 72  # resolution of the embedded frames (a 1D player: ~17 kB per frame)
MAX_KB = 450  # budget of the embedded frames (base64), so that a stored notebook stays small


class _HTML(str):
    """An HTML string that Jupyter renders as HTML when it is the value of a cell."""

    def _repr_html_(self) -> str:
        return str(self)


class _FrameRenderer:
    """Fast PNGs (256 colours) of a :class:`FrameFigure`'s frames; a context manager that leaves
    the figure as it found it (frame, dpi, canvas).

    Everything that does not move (axes, ticks, colorbars) is drawn once; per frame only the
    field artists, the legends and the time title are drawn over it.
    """

    def __init__(self, frames: FrameFigure, dpi: int):
        self.frames, self.dpi = frames, dpi
        self._cache: dict[int, bytes] = {}

    def __enter__(self) -> "_FrameRenderer":
        fig = self.frames.figure
        self._saved = (self.frames.frame, fig.dpi, fig.canvas)
        self._moving = [*self.frames.artists.values(), self.frames.title]
        # Legends that overlap a moving artist are redrawn over it (those outside the axes, as
        # in the 1D player, stay in the background).
        self._moving += [ax.get_legend() for ax in fig.axes
                         if ax.get_legend() is not None and _inside(ax.get_legend(), ax)]
        self._moving += [s for ax in fig.axes if ax.images and ax in {a.axes for a in self.frames.artists.values()}
                         for s in ax.spines.values()]  # an image would cover half of its frame
        fig.set_dpi(self.dpi)
        self._canvas = FigureCanvasAgg(fig)
        for artist in self._moving:
            artist.set_animated(True)
        self._canvas.draw()
        self._background = self._canvas.copy_from_bbox(fig.bbox)
        return self

    def __exit__(self, *exc) -> None:
        frame, dpi, canvas = self._saved
        fig = self.frames.figure
        for artist in self._moving:
            artist.set_animated(False)
        fig.set_dpi(dpi)
        fig.set_canvas(canvas)
        self.frames.show(frame)

    def png(self, k: int) -> bytes:
        """Frame ``k`` as PNG bytes."""
        if k not in self._cache:
            self.frames.show(k)
            self._canvas.restore_region(self._background)
            for artist in self._moving:
                (artist.axes or self.frames.figure).draw_artist(artist)
            self._cache[k] = _png(self._canvas)
        return self._cache[k]


def _inside(legend, ax) -> bool:
    box, frame = legend.get_window_extent(), ax.get_window_extent()
    return box.overlaps(frame) and box.y0 < frame.y1 - 1


def _png(canvas: FigureCanvasAgg) -> bytes:
    width, height = canvas.get_width_height()
    rgba = Image.frombuffer("RGBA", (width, height), bytes(canvas.buffer_rgba()), "raw", "RGBA", 0, 1)
    out = io.BytesIO()
    rgba.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, format="png")
    return out.getvalue()


def animation_html(frames: FrameFigure, *, max_frames: int = MAX_FRAMES, dpi: int = DPI,
                   max_kb: float = MAX_KB, interval_ms: int = 200) -> str:
    """``frames`` as a self-contained HTML animation whose embedded frames stay within ``max_kb``.

    At most ``max_frames`` frames are embedded, evenly spaced with the first and the last; fewer
    when at ``dpi`` they would exceed ``max_kb`` kilobytes (base64, all embedded images counted),
    but never fewer than 2.
    The frames are drawn on ``frames``' own figure, which is left as it was (frame, dpi).

    Returns:
        The HTML (a ``str`` that Jupyter renders as HTML).

    Raises:
        ValueError: for a ``max_frames`` / ``dpi`` that is not a positive count, or ``max_kb <= 0``.
    """
    check_count(max_frames, "max_frames", minimum=1)
    check_count(dpi, "dpi", minimum=10)
    max_kb = check_real(max_kb, "max_kb", minimum=0.0, strict_minimum=True,
                        fix="pass the size budget of the embedded frames in kB, e.g. 450.")
    count = frames.num_frames
    with _FrameRenderer(frames, dpi) as draw:
        per_frame = 4 / 3 * max(len(draw.png(0)), len(draw.png(count - 1))) + 30  # base64, JS line
        budget = max_kb * 1024 - per_frame  # the first frame is embedded twice (the image's src)
        shown = frame_indices(count, max(min(2, count), min(int(max_frames), int(budget // per_frame))))
        pngs = [draw.png(k) for k in shown]
        total = sum(4 / 3 * len(p) + 30 for p in pngs)
        if total > budget and len(shown) > 2:  # the two ends were smaller than the rest
            keep = frame_indices(len(shown), max(2, int(len(shown) * budget / total)))
            shown, pngs = [shown[i] for i in keep], [pngs[i] for i in keep]
    labels = [frames.times.title(k) for k in shown]
    width, height = Image.open(io.BytesIO(pngs[0])).size
    return _HTML(player_html(pngs, labels, interval_ms=interval_ms, size=(width, height),
                             alt=f"animation of {', '.join(p.title for p in frames.panels)}"))


_SYMBOLS = {"first": "|&#x25C0;&#xFE0E;&#x25C0;&#xFE0E;", "previous": "|&#x25C0;&#xFE0E;",
            "play": "&#x25B6;&#xFE0E;", "pause": "&#x275A;&#x275A;", "next": "&#x25B6;&#xFE0E;|",
            "last": "&#x25B6;&#xFE0E;&#x25B6;&#xFE0E;|"}

_TEMPLATE = """<div class="hk-animation" id="{id}" style="display:inline-block;text-align:center;max-width:100%">
<img class="hk-frame" alt="{alt}" width="{width}" height="{height}" style="max-width:100%;height:auto" src="{first}">
<div class="hk-controls" style="margin:4px 0;font-family:sans-serif">
<button type="button" data-act="first" title="First frame" aria-label="First frame">{s_first}</button>
<button type="button" data-act="previous" title="Previous frame" aria-label="Previous frame">{s_previous}</button>
<button type="button" data-act="play" title="Play / pause" aria-label="Play">{s_play}</button>
<button type="button" data-act="next" title="Next frame" aria-label="Next frame">{s_next}</button>
<button type="button" data-act="last" title="Last frame" aria-label="Last frame">{s_last}</button>
<input type="range" class="hk-slider" min="0" max="{last}" step="1" value="0" aria-label="Frame" style="vertical-align:middle;width:40%">
<span class="hk-label" style="font-size:small">{label}</span>
</div>
</div>
<script>
(function () {{
  var me = document.currentScript, tries = 0;
  var frames = {frames};
  var labels = {labels};
  function init() {{
    var root = document.getElementById("{id}");
    if (!root) {{ if (tries++ < 200) setTimeout(init, 50); return; }}  // not in the page yet
    if (root.getAttribute("data-ready")) return;
    root.setAttribute("data-ready", "1");
    var img = root.querySelector(".hk-frame"), slider = root.querySelector(".hk-slider");
    var label = root.querySelector(".hk-label"), play = root.querySelector('[data-act="play"]');
    var k = 0, timer = null;
    function show(i) {{
      k = (i + frames.length) % frames.length;
      img.src = frames[k]; slider.value = k; label.textContent = labels[k];
    }}
    function stop() {{
      if (timer) {{ clearInterval(timer); timer = null; }}
      play.innerHTML = "{s_play}"; play.setAttribute("aria-label", "Play");
    }}
    function start() {{
      if (timer) return;
      timer = setInterval(function () {{ show(k + 1); }}, {interval});
      play.innerHTML = "{s_pause}"; play.setAttribute("aria-label", "Pause");
    }}
    var acts = {{first: function () {{ show(0); }}, previous: function () {{ show(k - 1); }},
                next: function () {{ show(k + 1); }}, last: function () {{ show(frames.length - 1); }}}};
    Object.keys(acts).forEach(function (name) {{
      root.querySelector('[data-act="' + name + '"]').addEventListener("click", function () {{
        stop(); acts[name]();
      }});
    }});
    play.addEventListener("click", function () {{ if (timer) stop(); else start(); }});
    slider.addEventListener("input", function () {{ stop(); show(parseInt(slider.value, 10)); }});
  }}
  init();
}})();
</script>
"""


def player_html(pngs: list[bytes], labels: list[str], *, interval_ms: int, size: tuple[int, int],
                alt: str) -> str:
    """The HTML of an image player over ``pngs`` (one label per frame shown next to the slider)."""
    uris = ["data:image/png;base64," + base64.b64encode(p).decode("ascii") for p in pngs]
    symbols = {f"s_{k}": v for k, v in _SYMBOLS.items()}
    return _TEMPLATE.format(
        id=f"hk-anim-{uuid.uuid4().hex}", alt=html.escape(alt), width=size[0], height=size[1],
        first=uris[0], last=len(uris) - 1, label=html.escape(labels[0]),
        frames=_js_list(uris), labels=_js_list(labels), interval=max(int(interval_ms), 10), **symbols,
    )


def _js_list(items: list[str]) -> str:
    # JSON is valid JavaScript; "</" is escaped so that no string can close the <script> element.
    return json.dumps(items).replace("</", "<\\/")
