from django import template

register = template.Library()


@register.filter
def thousands(number: int) -> str:
    """1234 → "1,234": counts people read."""
    return f"{int(number):,}"
