"""Times as <time> elements: written in UTC on the server (so a page without scripting is still
right, and says so), put into the reader's own time zone by static/js/localtime.js."""

from datetime import UTC, datetime

from django import template
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

register = template.Library()

# Server-side text per style; the script uses the same styles with Intl.DateTimeFormat.
FORMATS = {"short": "M j, H:i", "long": "M j, Y, H:i", "time": "H:i"}


@register.filter
def when(value: datetime | None, style: str = "short") -> str:
    if value is None:
        return ""
    if style not in FORMATS:
        raise template.TemplateSyntaxError(f"Unknown time style {style!r}; use one of {', '.join(FORMATS)}.")
    utc = value.astimezone(UTC)
    text = date_format(utc, FORMATS[style]) + " UTC"
    return format_html(
        '<time datetime="{}" data-local="{}">{}</time>',
        utc.isoformat().replace("+00:00", "Z"),
        style,
        text,
    )
