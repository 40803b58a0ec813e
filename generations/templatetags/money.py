from django import template

from generations.pricing import format_usd

register = template.Library()


@register.filter
def usd(cents: int) -> str:
    """Integer cents as dollars ($1,234.50), the same formatting as every price on the site."""
    return format_usd(int(cents))
