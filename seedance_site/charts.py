"""Small charts drawn on the server as SVG: nothing to load, nothing for the CSP to refuse.

The bars are an SVG stretched to its box (`preserveAspectRatio="none"`), while every word —
legend, axis labels — is HTML beside it, so the text stays the page's own size from a 390 px
phone to a desktop, where scaled SVG text would shrink to nothing or swell. Each chart names
itself to screen readers (the SVG's <title> and <desc>) and carries its figures as a table too.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import count

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

WIDTH = 300  # the viewBox's own units; the SVG is stretched to the box it is given
HEIGHT = 100
_ids = count(1)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    color: int = 0  # the palette slot (charts.css: .c0 … .c7), so a colour keeps its meaning across charts


def days_ending(last: date, n: int = 30) -> list[date]:
    """The n days up to and including `last`, oldest first."""
    return [last - timedelta(days=n - 1 - i) for i in range(n)]


def day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


def _nice_top(peak: float, *, whole: bool = False) -> float:
    """A round top for the scale just above the highest value (1, 2, 2.5, 5 times 10^k); for counts
    (`whole`) one whose half is a whole number too (2, 4, 10, 20, 40, 100 …)."""
    if peak <= 0:
        return 2.0 if whole else 1.0
    magnitude = 10 ** (len(str(int(peak))) - 1) if peak >= 1 else 1.0
    while magnitude > peak:
        magnitude /= 10
    steps = (2, 4, 10) if whole else (1, 2, 2.5, 5, 10)
    if whole and magnitude < 1:
        magnitude = 1.0
    for step in steps:
        if step * magnitude >= peak:
            return step * magnitude
    return 10 * magnitude


def _fmt(number: float) -> str:
    return f"{number:.3f}".rstrip("0").rstrip(".")


def chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    value_format: Callable[[float], str] = lambda v: f"{v:,.0f}",
    kind: str = "stacked",
    summary: str = "",
    empty: str = "Nothing in these days.",
    whole: bool = False,
) -> SafeString:
    """A bar chart, one bar (or group, `kind="grouped"`) per label, or `kind="line"`.

    `summary` is the sentence a screen reader hears before the figures (totals, the peak day);
    `whole` says the values are counts, so the scale's marks are whole numbers.
    """
    if kind not in ("stacked", "grouped", "line"):
        raise ValueError(f"Unknown chart kind {kind!r}.")
    n = len(labels)
    if any(len(s.values) != n for s in series):
        raise ValueError("Every series needs one value per label.")
    if kind == "stacked":
        peak = max((sum(s.values[i] or 0 for s in series) for i in range(n)), default=0)
    else:  # a line may have gaps (None: a day with nothing to measure)
        peak = max((v for s in series for v in s.values if v is not None), default=0)
    top = _nice_top(peak, whole=whole)
    slot = WIDTH / n if n else WIDTH
    gap = slot * 0.2
    shapes: list[dict] = []
    lines: list[dict] = []
    for i in range(n):
        x = i * slot + gap / 2
        width = slot - gap
        tip = "; ".join(f"{s.name}: {value_format(s.values[i] or 0)}" for s in series)
        if kind == "stacked":
            base = 0.0
            for s in series:
                value = s.values[i] or 0
                if value > 0:
                    h = HEIGHT * value / top
                    shapes.append(
                        {
                            "x": _fmt(x),
                            "y": _fmt(HEIGHT - base - h),
                            "w": _fmt(width),
                            "h": _fmt(h),
                            "color": s.color,
                            "tip": f"{labels[i]}: {tip}",
                        }
                    )
                    base += h
        elif kind == "grouped":
            each = width / max(len(series), 1)
            for j, s in enumerate(series):
                value = s.values[i] or 0
                if value > 0:
                    h = HEIGHT * value / top
                    shapes.append(
                        {
                            "x": _fmt(x + j * each),
                            "y": _fmt(HEIGHT - h),
                            "w": _fmt(each),
                            "h": _fmt(h),
                            "color": s.color,
                            "tip": f"{labels[i]}: {tip}",
                        }
                    )
    if kind == "line":
        for s in series:
            points = [
                (i * slot + slot / 2, HEIGHT - HEIGHT * v / top)
                for i, v in enumerate(s.values)
                if v is not None
            ]
            lines.append(
                {
                    "color": s.color,
                    "points": " ".join(f"{_fmt(px)},{_fmt(py)}" for px, py in points),
                    "dots": [
                        {"x": _fmt(px), "y": _fmt(py), "tip": f"{labels[i]}: {s.name} {value_format(v)}"}
                        for (px, py), (i, v) in zip(
                            points, [(i, v) for i, v in enumerate(s.values) if v is not None], strict=True
                        )
                    ],
                }
            )
    # A few dates under the bars, never so many that they crowd a phone.
    step = max(1, -(-n // 5))
    ticks = [
        {"label": labels[i], "left": _fmt(100 * (i * slot + slot / 2) / WIDTH)} for i in range(0, n, step)
    ]
    uid = f"chart{next(_ids)}"
    has_data = peak > 0
    context = {
        "uid": uid,
        "title": title,
        "summary": summary,
        "empty": empty,
        "has_data": has_data,
        "width": WIDTH,
        "height": HEIGHT,
        "shapes": shapes,
        "lines": lines,
        "grid": [{"y": _fmt(HEIGHT * k / 4)} for k in range(4)],
        "top_label": value_format(top),
        "half_label": value_format(top / 2),
        "ticks": ticks,
        "series": series,
        "rows": [
            {
                "label": labels[i],
                "values": [value_format(s.values[i]) if s.values[i] is not None else "—" for s in series],
            }
            for i in range(n)
        ],
    }
    return render_to_string("charts/chart.html", context)
