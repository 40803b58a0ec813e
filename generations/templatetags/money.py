"""Money as people read it: dollars first, credits (1 credit = 1 US cent) as the precise figure
where it helps. Every amount on a page goes through these filters, so no page says "9440"."""

from django import template
from django.utils.html import format_html

from generations.pricing import format_credits, format_usd, format_usd_signed

register = template.Library()


@register.filter
def usd(cents: int | None) -> str:
    """Integer cents as dollars ($1,234.50), the same formatting as every price on the site."""
    return format_usd(int(cents or 0))


@register.filter
def usd_signed(cents: int | None) -> str:
    """A ledger movement: +$100.00 or -$1.00."""
    return format_usd_signed(int(cents or 0))


@register.filter
def credits(cents: int | None) -> str:
    """9,440 credits."""
    return format_credits(int(cents or 0))


def usd_with_credits(cents: int | None, *, signed: bool = False) -> str:
    """Dollars, with the precise credits on hover: for the admin's columns."""
    cents = int(cents or 0)
    text = format_usd_signed(cents) if signed else format_usd(cents)
    return format_html('<span class="money" title="{}">{}</span>', format_credits(cents), text)
