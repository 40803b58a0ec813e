from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordMixin
from django.contrib.auth.validators import ASCIIUsernameValidator
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpResponse

from accounts.models import User
from seedance_site.ratelimits import fold, over_limit

TOO_MANY_LOGINS = "Too many login attempts. Wait a minute, then try again."


class LoginLimitMixin:
    """The login limit, per address and per account name, for every login form (the portal's
    and the admin's share one set of counters).

    It runs in the form's clean(), after the username field has normalised the name exactly as
    Django does before it looks the account up (stripped, NFKC), so "demo ", "\\u3000demo" and
    fullwidth "demo" all count against demo; case-folded too, since "DEMO" is the same person guessing.
    The limit is checked before the password, so a locked name stays locked even with the right one.
    """

    request = None
    cleaned_data: dict

    def clean(self) -> dict:
        username = self.cleaned_data.get("username")
        if username is None:  # not a valid name (too long, missing): count the raw text instead
            username = str(self.data.get("username", ""))[:300]
        if self.request is not None and over_limit(
            self.request, group="login", rate=settings.LOGIN_RATE_LIMIT, values=(fold(username),)
        ):
            raise ValidationError(TOO_MANY_LOGINS, code="rate_limited")
        return super().clean()


class LoginForm(LoginLimitMixin, AuthenticationForm):
    pass


class AdminLoginForm(LoginLimitMixin, AdminAuthenticationForm):
    pass


def answer_429_if_limited(response: HttpResponse) -> HttpResponse:
    """A login page refused by the limit answers 429, so scripts can tell it from a wrong password."""
    form = (getattr(response, "context_data", None) or {}).get("form")
    if form is not None and form.has_error(NON_FIELD_ERRORS, code="rate_limited"):
        response.status_code = 429
    return response


# New names, wherever one is chosen (sign-up, the admin): ASCII letters, digits and @.+-_ only.
# Unicode names allow look-alikes ("b\u043eb", with a Cyrillic o) shown beside the real one on public
# pages; a confusables table would have to keep up with Unicode, while ASCII has none to miss.
# Names made before this rule keep working.
new_username_validators = [ASCIIUsernameValidator()]


class SignupForm(SetPasswordMixin, forms.Form):
    """Checks only what the person typed. Whether the name or the address is taken is never
    said here: the answer goes to the address, by email (accounts.services.signup_submit)."""

    username = forms.CharField(
        max_length=150,
        validators=new_username_validators,
        help_text="Letters, digits and @ . + - _ only (150 at most). Shown with the videos you share.",
        widget=forms.TextInput(
            attrs={"autocapitalize": "none", "autocomplete": "username", "autofocus": True}
        ),
    )
    email = forms.EmailField(
        help_text="We send a link there to confirm it; nothing else reaches it but receipts and resets."
    )
    password1, password2 = SetPasswordMixin.create_password_fields()

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip()

    def clean_email(self) -> str:
        return User.objects.normalize_email(self.cleaned_data["email"].strip())

    def clean(self) -> dict:
        self.validate_passwords()
        # The password validators compare the password with the name and the address.
        self.validate_password_for_user(
            User(username=self.cleaned_data.get("username", ""), email=self.cleaned_data.get("email", ""))
        )
        return self.cleaned_data


class QueuedPasswordResetForm(PasswordResetForm):
    """Django's reset form, with the mail sent by a worker: the answer takes as long whether or
    not an account uses the address (an SMTP conversation would otherwise give it away)."""

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict,
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        from accounts.services import email_send_later

        email_send_later(
            subject_template_name=subject_template_name,
            body_template_name=email_template_name,
            context=context,
            to_email=to_email,
        )


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        strip=True,
        error_messages={"required": "Give the token a name, such as the script that will use it."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. nightly-batch"}),
    )


def _cents(dollars: Decimal | None) -> int | None:
    return None if dollars is None else int((dollars * 100).to_integral_value())


class SpendLimitForm(forms.Form):
    limit = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=2,
        label="Monthly spend limit (US$)",
        help_text="Leave it empty for no limit.",
        widget=forms.NumberInput(
            attrs={"step": "0.01", "min": "0", "inputmode": "decimal", "placeholder": "No limit"}
        ),
        error_messages={
            "invalid": "Write the limit in dollars, such as 50 or 12.50.",
            "min_value": "The limit cannot be below $0.",
            "max_decimal_places": "Dollars and cents only, such as 12.50.",
            "max_digits": "That limit is larger than this page takes.",
            "max_whole_digits": "That limit is larger than this page takes.",
        },
    )

    def limit_cents(self) -> int | None:
        return _cents(self.cleaned_data["limit"])


class EmailPreferencesForm(forms.Form):
    email_on_finish = forms.BooleanField(required=False, label="Email me when a video is ready or fails")
    low_balance = forms.BooleanField(required=False, label="Email me when my balance falls below")
    low_balance_dollars = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
        label="Balance to warn below (US$)",
        widget=forms.NumberInput(
            attrs={"step": "0.01", "min": "0", "inputmode": "decimal", "placeholder": "10.00"}
        ),
        error_messages={
            "invalid": "Write the amount in dollars, such as 10 or 7.50.",
            "min_value": "The amount cannot be below $0.",
            "max_decimal_places": "Dollars and cents only, such as 7.50.",
            "max_digits": "That amount is larger than this page takes.",
            "max_whole_digits": "That amount is larger than this page takes.",
        },
    )

    def clean(self) -> dict:
        data = super().clean()
        if (
            data.get("low_balance")
            and data.get("low_balance_dollars") is None
            and not self.has_error("low_balance_dollars")
        ):
            self.add_error("low_balance_dollars", "Say below which balance to email you, such as 10.")
        return data

    def low_balance_cents(self) -> int | None:
        if not self.cleaned_data.get("low_balance"):
            return None
        return _cents(self.cleaned_data["low_balance_dollars"])
