from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.billing.selectors import recent_entries_for_user
from accounts.forms import (
    ApiTokenForm,
    EmailPreferencesForm,
    LoginForm,
    QueuedPasswordResetForm,
    SignupForm,
    SpendLimitForm,
    answer_429_if_limited,
)
from accounts.models import ApiToken
from accounts.preferences import (
    account_set_email_preferences,
    account_set_spend_limit,
    account_settings_for,
    webhook_secret_rotate,
)
from accounts.services import (
    api_token_create,
    api_token_revoke,
    signup_submit,
    user_send_verification,
    user_sign_out_everywhere,
    user_verify_email,
)
from accounts.spending import spent_this_month_cents
from generations.pricing import format_usd
from seedance_site.ratelimits import fold, over_limit, over_user_limit


def _key(kind: str, raw: str | None) -> str:
    """A rate-limit counter key for a posted name or email ("" for none: then it is not counted)."""
    value = fold(raw or "")[:300]
    return f"{kind}:{value}" if value else ""


class LoginView(auth_views.LoginView):
    # The limit itself lives in the form (LoginLimitMixin), shared with the admin's login.
    authentication_form = LoginForm

    def form_invalid(self, form: LoginForm) -> HttpResponse:
        return answer_429_if_limited(super().form_invalid(form))


class LogoutView(auth_views.LogoutView):
    """Django's logout (POST only), saying on the next page that it worked."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        was_logged_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_logged_in:
            messages.success(request, "You are logged out. See you soon.")
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset view, limited per address and per email, mailing from a worker. Over the
    limit it answers the same for every address, so the limit says nothing about accounts."""

    form_class = QueuedPasswordResetForm
    # Django names the site by the request's host ("127.0.0.1:8000 team") without the sites
    # framework; the mail names it by its name.
    extra_email_context = {"site_name": "Seedance Studio"}

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        email = _key("email", request.POST.get("email"))
        rate = settings.PASSWORD_RESET_RATE_LIMIT
        if over_limit(request, group="password-reset", rate=rate, values=(email,)):
            form = self.get_form()
            form.is_valid()
            form.add_error(None, "Too many reset requests. Wait a while, then try again.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        values = (_key("name", request.POST.get("username")), _key("email", request.POST.get("email")))
        if over_limit(request, group="signup", rate=settings.SIGNUP_RATE_LIMIT, values=values):
            form.is_valid()
            form.add_error(None, "Too many sign-ups from here or for this name or address. Try again later.")
            return render(request, "registration/signup.html", _signup_context(form), status=429)
        if form.is_valid():
            signup_submit(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
            )
            # The same answer whether the name and address were free or taken (see signup_submit).
            return redirect("signup_done")
    return render(request, "registration/signup.html", _signup_context(form))


def _signup_context(form: SignupForm) -> dict:
    return {"form": form, "signup_credits": settings.SIGNUP_CREDITS}


def signup_done(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/signup_done.html", {"signup_credits": settings.SIGNUP_CREDITS})


def verify_email(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    # A GET that changes state, as every "confirm your address" link does: it is idempotent,
    # works once, and a mail scanner that follows it only proves the mail reached that inbox.
    User = get_user_model()
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))))
    except (ValueError, OverflowError, User.DoesNotExist):
        user = None
    if user is not None and user.pk == request.user.pk:
        user = request.user  # so this very page's header shows the welcome credits
    verified = user is not None and user_verify_email(user=user, token=token)
    context = {
        "verified": verified,
        "already": user is not None and not verified and user.email_verified_at is not None,
        "signup_credits": settings.SIGNUP_CREDITS,
    }
    return render(request, "registration/verify_email_done.html", context, status=200 if verified else 400)


@login_required
@require_POST
def verify_email_resend(request: HttpRequest) -> HttpResponse:
    if over_limit(
        request, group="verify-resend", rate=settings.SIGNUP_RATE_LIMIT, values=(f"user:{request.user.pk}",)
    ):
        messages.error(request, "We have sent that link several times already. Try again later.")
    elif user_send_verification(user=request.user):
        messages.success(request, f"A new link is on its way to {request.user.email}.")
    else:
        messages.info(request, "Your address is confirmed already.")
    return redirect("account")


# Where a new API token waits in the session between the POST that made it and the one page
# that shows it (Post/Redirect/Get: a refresh then re-sends nothing, and makes no second token).
NEW_TOKEN_SESSION_KEY = "accounts.new_api_token"  # noqa: S105 - a session key, not a secret


@never_cache  # the page that shows a new token once must not come back from a cache
@login_required
def account(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            if over_user_limit(request, group="api-token-create", rate=settings.TOKEN_RATE_LIMIT):
                form.add_error(
                    None, "You have made many tokens in a short time. Wait a while, then try again."
                )
                status = 429
            else:
                token, secret = api_token_create(user=request.user, name=form.cleaned_data["name"])
                request.session[NEW_TOKEN_SESSION_KEY] = secret
                messages.success(
                    request, f"Token “{token.name}” created. Copy it now: it is shown only once."
                )
                return redirect(reverse("account") + "#tokens")
        else:
            status = 400
    # Shown on the first page after it was made, and never again.
    new_token = request.session.pop(NEW_TOKEN_SESSION_KEY, None) if request.method == "GET" else None
    return _account_page(request, token_form=form, new_token=new_token, status=status)


def _account_page(
    request: HttpRequest,
    *,
    token_form: ApiTokenForm | None = None,
    limit_form: SpendLimitForm | None = None,
    email_form: EmailPreferencesForm | None = None,
    new_token: str | None = None,
    status: int = 200,
) -> HttpResponse:
    from generations.selectors import recent_webhook_deliveries

    user = request.user
    prefs = account_settings_for(user=user)
    spent = spent_this_month_cents(user_id=user.pk)
    limit = prefs.monthly_spend_limit_cents
    if limit_form is None:
        limit_form = SpendLimitForm(initial={"limit": _dollars(limit)})
    if email_form is None:
        email_form = EmailPreferencesForm(
            initial={
                "email_on_finish": prefs.email_on_finish,
                "low_balance": prefs.low_balance_email_cents is not None,
                "low_balance_dollars": _dollars(prefs.low_balance_email_cents),
            }
        )
    now = timezone.now()
    context = {
        "form": token_form or ApiTokenForm(),
        "new_token": new_token,
        "tokens": user.api_tokens.all(),
        "entries": recent_entries_for_user(user=user),
        "api_root": settings.SITE_URL + reverse("api:api-root").rstrip("/"),
        "unverified": user.email and user.email_verified_at is None,
        "signup_credits": settings.SIGNUP_CREDITS,
        "limit_form": limit_form,
        "email_form": email_form,
        "spend": {
            "spent": format_usd(spent),
            "limit": None if limit is None else format_usd(limit),
            "left": None if limit is None else format_usd(max(limit - spent, 0)),
            "percent": None if not limit else min(100, max(0, round(100 * spent / limit))),
            "reached": limit is not None and spent >= limit,
            "month": now.strftime("%B %Y"),
        },
        "webhook_secret": prefs.webhook_secret,
        "previous_until": prefs.webhook_previous_until
        if prefs.webhook_previous_secret
        and prefs.webhook_previous_until
        and prefs.webhook_previous_until > now
        else None,
        "deliveries": recent_webhook_deliveries(user=user),
    }
    return render(request, "accounts/account.html", context, status=status)


def _dollars(cents: int | None) -> Decimal | None:
    return None if cents is None else (Decimal(cents) / 100).quantize(Decimal("0.01"))


@login_required
@require_POST
def spend_limit_update(request: HttpRequest) -> HttpResponse:
    form = SpendLimitForm(request.POST)
    if not form.is_valid():
        return _account_page(request, limit_form=form, status=400)
    limit = form.limit_cents()
    account_set_spend_limit(user=request.user, limit_cents=limit)
    if limit is None:
        messages.success(request, "No monthly spend limit: videos are limited by your balance alone.")
    else:
        messages.success(
            request,
            f"Monthly spend limit set to {format_usd(limit)}. A video that would go past it is refused "
            "before anything is held.",
        )
    return redirect(reverse("account") + "#spending")


@login_required
@require_POST
def email_preferences_update(request: HttpRequest) -> HttpResponse:
    form = EmailPreferencesForm(request.POST)
    if not form.is_valid():
        return _account_page(request, email_form=form, status=400)
    account_set_email_preferences(
        user=request.user,
        email_on_finish=form.cleaned_data["email_on_finish"],
        low_balance_email_cents=form.low_balance_cents(),
    )
    if not request.user.email:
        messages.warning(request, "Saved, but your account has no email address, so no email can reach you.")
    else:
        messages.success(request, f"Saved. Emails go to {request.user.email}.")
    return redirect(reverse("account") + "#notifications")


@login_required
@require_POST
def webhook_secret_rotate_view(request: HttpRequest) -> HttpResponse:
    webhook_secret_rotate(user=request.user)
    messages.success(
        request,
        "New webhook secret made. For the next 24 hours webhooks are signed with both the new and the "
        "old secret, so you can update your receiver before the old one stops.",
    )
    return redirect(reverse("account") + "#webhooks")


@login_required
@require_POST
def webhook_delivery_resend_view(request: HttpRequest, delivery_id: int) -> HttpResponse:
    from generations.models import WebhookDelivery
    from generations.user_webhooks import NothingToResend, webhook_delivery_resend

    try:
        webhook_delivery_resend(user=request.user, delivery_id=delivery_id)
    except WebhookDelivery.DoesNotExist:
        raise Http404("No such webhook delivery.") from None
    except NothingToResend as exc:
        messages.info(request, exc.message)
    else:
        messages.success(request, "Sending it again now, with the same webhook-id.")
    return redirect(reverse("account") + "#webhooks")


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    api_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked. Scripts using it now get 401.")
    return redirect("account")


@login_required
@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    revoked = user_sign_out_everywhere(user=request.user)
    logout(request)
    tokens = (
        f"{revoked} API token{'s' if revoked != 1 else ''} revoked" if revoked else "no API tokens to revoke"
    )
    messages.success(request, f"Signed out on every device ({tokens}). Log in again to carry on.")
    return redirect("login")
