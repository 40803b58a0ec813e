from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_ratelimit.core import is_ratelimited

from accounts.forms import ApiTokenForm, SignupForm
from accounts.models import ApiToken
from accounts.services import api_token_create, api_token_revoke, user_create


def _over_limit(request: HttpRequest, group: str, rate: str) -> bool:
    # Per address and per attempted username: a botnet and a single guesser are both slowed.
    by_ip = is_ratelimited(request, group=group, key="ip", rate=rate, method="POST", increment=True)
    by_name = is_ratelimited(
        request, group=group, key="post:username", rate=rate, method="POST", increment=True
    )
    return by_ip or by_name


class LoginView(auth_views.LoginView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if _over_limit(request, "login", settings.LOGIN_RATE_LIMIT):
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, "Too many login attempts. Wait a minute, then try again.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        if _over_limit(request, "signup", settings.SIGNUP_RATE_LIMIT):
            form.add_error(None, "Too many sign-ups from here. Try again later.")
            return render(request, "registration/signup.html", {"form": form}, status=429)
        if form.is_valid():
            user = user_create(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
            )
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to Seedance Studio, {user.username}!")
            return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def account(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        token, new_token = api_token_create(user=request.user, name=form.cleaned_data["name"])
        messages.success(request, f"Token “{token.name}” created. Copy it now: it is shown only once.")
        form = ApiTokenForm()
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": request.user.api_tokens.all(),
        "entries": request.user.credit_entries.all()[:20],
        "api_root": settings.SITE_URL + reverse("api:api-root").rstrip("/"),
    }
    return render(request, "accounts/account.html", context)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    api_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked. Scripts using it now get 401.")
    return redirect("account")
