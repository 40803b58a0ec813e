"""Forms for buying credits, shared by the billing page and `POST /api/v1/checkout`."""

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings


def usd(cents: int) -> str:
    """$5, $12.50, $1,000: whole dollars without a cents part, as people write prices."""
    dollars, rest = divmod(cents, 100)
    return f"${dollars:,}" if not rest else f"${dollars:,}.{rest:02d}"


def amount_error() -> str:
    return f"Choose an amount between {usd(settings.TOPUP_MIN_CENTS)} and {usd(settings.TOPUP_MAX_CENTS)}."


class TopUpForm(forms.Form):
    """An amount in cents (= credits): the API's body and the billing page's pack buttons."""

    amount_cents = forms.IntegerField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bounds are checked in clean_amount_cents, with the same sentence as the dollar form,
        # rather than by Django's min/max validators, whose messages would speak of cents.
        self.fields["amount_cents"].error_messages = {
            "required": "Choose how many credits to buy.",
            "invalid": amount_error(),
        }

    def clean_amount_cents(self) -> int:
        amount = self.cleaned_data["amount_cents"]
        if not settings.TOPUP_MIN_CENTS <= amount <= settings.TOPUP_MAX_CENTS:
            raise forms.ValidationError(amount_error(), code="out_of_range")
        return amount


class CustomTopUpForm(forms.Form):
    """The billing page's "other amount", typed in dollars; cleans to `amount_cents` as well."""

    amount_usd = forms.DecimalField(
        label="Other amount (US dollars)",
        max_digits=8,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal", "placeholder": "e.g. 15"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["amount_usd"]
        message = amount_error()
        field.error_messages = {
            "required": message,
            "invalid": message,
            "max_digits": message,
            "max_whole_digits": message,
            "max_decimal_places": "Use dollars and cents, such as 12.50.",
        }
        field.widget.attrs.update(
            min=str(Decimal(settings.TOPUP_MIN_CENTS) / 100), max=str(Decimal(settings.TOPUP_MAX_CENTS) / 100)
        )

    def clean_amount_usd(self) -> Decimal:
        amount = self.cleaned_data["amount_usd"]
        cents = int(amount * 100)
        if not settings.TOPUP_MIN_CENTS <= cents <= settings.TOPUP_MAX_CENTS:
            raise forms.ValidationError(amount_error(), code="out_of_range")
        self.cleaned_data["amount_cents"] = cents
        return amount
