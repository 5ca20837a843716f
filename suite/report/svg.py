"""A small builder for inline SVG charts.

Elements are built with `xml.etree.ElementTree`, so every label and tooltip (pod names, event
messages) is escaped by the serializer, never pasted into markup by hand. Fills pair a colour with
a pattern (hatch, dots, cross...), so a chart printed in black and white, or seen without
colour, still tells its series apart; every series is also named in a legend or a direct label.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

FONT_PX = 11
#: Rough width of one character at FONT_PX (for deciding whether a label fits; no font metrics).
CHAR_PX = 6.2


@dataclass(frozen=True)
class Look:
    """How one series or state is drawn: a colour and a pattern over it."""

    colour: str
    pattern: str = "solid"  # solid | hatch | backhatch | dots | cross | grid | horizontal
    ink: str = "#000"  # the pattern's lines


#: Okabe-Ito colours (distinguishable with the common colour-vision deficiencies).
BLUE, ORANGE, SKY, GREEN, YELLOW, VERMILION, PURPLE, GREY = (
    "#0072B2",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#D55E00",
    "#CC79A7",
    "#9a9a9a",
)
#: Series looks, in order: colour and pattern both change from one to the next.
SERIES = (
    Look(BLUE),
    Look(SKY, "dots"),
    Look(YELLOW, "hatch"),
    Look(PURPLE, "backhatch"),
    Look(GREEN, "horizontal"),
    Look(GREY, "grid"),
)
FAILED = Look(VERMILION, "cross")
#: Typographic signs (escaped here so the source stays plain ASCII).
TIMES, MINUS, ARROW = "\u00d7", "\u2212", "\u2192"


@dataclass(frozen=True)
class Stroke:
    """How one line series is drawn: colour, dash pattern and width (dashes tell lines apart
    without colour)."""

    colour: str
    dash: str | None = None
    width: float = 2.0

    def attrs(self) -> dict[str, object]:
        """Attributes for a `<path>` or `<line>`."""
        return {
            "stroke": self.colour,
            "stroke_width": self.width,
            "stroke_dasharray": self.dash,
            "fill": "none",
        }


def fmt_number(value: float, digits: int = 0) -> str:
    """A number with thin spaces between thousands: 1 234, 12 345.6."""
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\u202f")


def nice_step(span: float, target: int) -> float:
    """A 1-2-5 step that cuts `span` into about `target` pieces."""
    if span <= 0:
        return 1.0
    raw = span / max(1, target)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values covering [lo, hi]."""
    step = nice_step(hi - lo, target)
    first = math.ceil(lo / step - 1e-9) * step
    values = []
    value = first
    while value <= hi + step * 1e-6:
        values.append(round(value, 10))
        value += step
    return values


def tick_label(value: float) -> str:
    """A tick label without needless decimals."""
    if abs(value - round(value)) < 1e-9:
        return fmt_number(value)
    return f"{value:g}"


@dataclass(frozen=True)
class Scale:
    """Linear map from data to pixels."""

    lo: float
    hi: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        if self.hi == self.lo:
            return self.start
        fraction = (value - self.lo) / (self.hi - self.lo)
        return round(self.start + fraction * (self.end - self.start), 2)


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


class Svg:
    """One inline SVG image, with its own pattern definitions (ids prefixed, so several charts
    live on one page)."""

    def __init__(self, width: int, height: int, *, prefix: str, label: str, kind: str) -> None:
        self.width = width
        self.height = height
        self.prefix = prefix
        self.root = ET.Element(
            "svg",
            {
                "viewBox": f"0 0 {width} {height}",
                "width": str(width),
                "height": str(height),
                "role": "img",
                "aria-label": label,
                "class": kind,
                "preserveAspectRatio": "xMinYMin meet",
            },
        )
        ET.SubElement(self.root, "title").text = label
        self.defs = ET.SubElement(self.root, "defs")
        self._patterns: dict[Look, str] = {}

    # -- elements --------------------------------------------------------------------------------

    def el(
        self, parent: ET.Element | None, tag: str, content: str | None = None, /, **attrs: object
    ) -> ET.Element:
        """A child element; attribute names use `_` for `-` (`stroke_width`), `cls` for class."""
        clean = {}
        for key, value in attrs.items():
            if value is None:
                continue
            name = "class" if key == "cls" else key.replace("_", "-")
            clean[name] = _num(value) if isinstance(value, int | float) else str(value)
        element = ET.SubElement(self.root if parent is None else parent, tag, clean)
        if content is not None:
            element.text = content
        return element

    def group(self, parent: ET.Element | None = None, **attrs: object) -> ET.Element:
        """A `<g>`."""
        return self.el(parent, "g", **attrs)

    def tip(self, element: ET.Element, text: str) -> ET.Element:
        """A tooltip (the browser shows an element's `<title>` on hover)."""
        ET.SubElement(element, "title").text = text
        return element

    def text(
        self,
        parent: ET.Element | None,
        x: float,
        y: float,
        text: str,
        *,
        anchor: str = "start",
        cls: str | None = None,
        **attrs: object,
    ) -> ET.Element:
        """A label."""
        return self.el(parent, "text", text, x=x, y=y, text_anchor=anchor, cls=cls, **attrs)

    def fill(self, look: Look) -> str:
        """The fill for a look: a colour, or a pattern defined once in this image."""
        if look.pattern == "solid":
            return look.colour
        if look not in self._patterns:
            pattern_id = f"{self.prefix}-p{len(self._patterns)}"
            self._patterns[look] = pattern_id
            self._define(pattern_id, look)
        return f"url(#{self._patterns[look]})"

    def _define(self, pattern_id: str, look: Look) -> None:
        size = 6
        rotate = {"hatch": 45, "backhatch": -45, "cross": 45}.get(look.pattern)
        pattern = self.el(
            self.defs,
            "pattern",
            id=pattern_id,
            width=size,
            height=size,
            patternUnits="userSpaceOnUse",
            patternTransform=f"rotate({rotate})" if rotate is not None else None,
        )
        self.el(pattern, "rect", width=size, height=size, fill=look.colour)
        line = {"stroke": look.ink, "stroke_opacity": 0.55, "stroke_width": 1.6}
        if look.pattern in ("hatch", "backhatch", "cross", "grid"):
            self.el(pattern, "line", x1=1, y1=0, x2=1, y2=size, **line)
        if look.pattern in ("cross", "grid", "horizontal"):
            self.el(pattern, "line", x1=0, y1=1, x2=size, y2=1, **line)
        if look.pattern == "dots":
            self.el(pattern, "circle", cx=3, cy=3, r=1.3, fill=look.ink, fill_opacity=0.6)

    def swatch(self, parent: ET.Element | None, x: float, y: float, look: Look) -> ET.Element:
        """A legend swatch (12 x 12) whose top-left corner is at (x, y)."""
        return self.el(
            parent, "rect", x=x, y=y, width=12, height=12, fill=self.fill(look), cls="swatch"
        )

    def legend(
        self, x: float, y: float, entries: Iterable[tuple[Look | Stroke, str]], *, width: float
    ) -> float:
        """Swatches (or line samples) with labels, wrapped to `width`; returns the y below."""
        group = self.group(cls="legend")
        cx, cy = x, y
        for look, label in entries:
            needed = 18 + len(label) * CHAR_PX + 16
            if cx > x and cx + needed > x + width:
                cx, cy = x, cy + 18
            if isinstance(look, Look):
                self.swatch(group, cx, cy, look)
            else:
                self.el(group, "line", x1=cx, y1=cy + 6, x2=cx + 14, y2=cy + 6, **look.attrs())
            self.text(group, cx + 18, cy + 10, label)
            cx += needed
        return cy + 18

    def markup(self) -> Markup:
        """The serialized image, safe to put into the page as it is."""
        return Markup(ET.tostring(self.root, encoding="unicode", short_empty_elements=True))  # noqa: S704


def path_of(points: Sequence[tuple[float, float]]) -> str:
    """An SVG path through `points`."""
    return " ".join(
        f"{'M' if index == 0 else 'L'}{_num(x)},{_num(y)}" for index, (x, y) in enumerate(points)
    )


def step_points(samples: Sequence[tuple[float, float]], end: float) -> list[tuple[float, float]]:
    """A step function: each value holds until the next sample (and the last one until `end`)."""
    points: list[tuple[float, float]] = []
    for index, (t, value) in enumerate(samples):
        if points:
            points.append((t, points[-1][1]))
        points.append((t, value))
        if index == len(samples) - 1 and end > t:
            points.append((end, value))
    return points
