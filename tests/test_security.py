"""Security by default: the headers every page carries, and no inline script to weaken them."""

import re

import pytest
from django.test import Client

from generations.models import Generation
from generations.services import generation_create, generation_set_share

pytestmark = pytest.mark.django_db

INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


@pytest.fixture
def pages(alice, settings):
    settings.SHORTAPI_KEY = "configured"
    generation, _ = generation_create(
        user=alice, prompt="a gull", mode="fast", duration=4, aspect_ratio="1:1"
    )
    Generation.objects.filter(pk=generation.pk).update(status="succeeded", video="videos/x.mp4")
    generation.refresh_from_db()
    generation_set_share(generation=generation, shared=True)
    public = [
        "/",
        "/explore/",
        "/accounts/login/",
        "/accounts/signup/",
        "/accounts/password_reset/",
        f"/v/{generation.share_slug}/",
    ]
    private = [
        "/generate/",
        "/gallery/",
        "/billing/",
        "/accounts/",
        f"/generations/{generation.pk}/",
        "/accounts/password_change/",
    ]
    return public, private


def test_every_page_sends_a_strict_content_security_policy(pages, alice):
    public, private = pages
    anonymous, logged_in = Client(), Client()
    logged_in.force_login(alice)
    for client, path in [(anonymous, p) for p in public] + [(logged_in, p) for p in private]:
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        assert (
            "script-src 'self'" in policy
            and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        )
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        html = response.content.decode()
        assert not INLINE_HANDLER.search(html), f"inline event handler on {path}"
        for attributes in SCRIPT_TAG.findall(html):
            # A JSON data block (json_script) is never executed; any other script must be a file.
            assert "src=" in attributes or 'type="application/json"' in attributes, (
                f"inline <script> on {path}"
            )


def test_the_session_and_csrf_cookies_are_http_only_or_not_readable_by_scripts(alice):
    client = Client()
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alicealice"})
    assert response.cookies["sessionid"]["httponly"]


def test_error_pages_leak_no_details(settings):
    settings.DEBUG = False
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "Traceback" not in text and "SECRET" not in text and "Nothing here" in text


def test_an_oversized_api_body_is_refused_with_the_error_shape(alice_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    response = alice_api.post("/api/v1/generations", {"prompt": "x" * 100_000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_admin_pages_have_no_inline_script_either(alice):
    from accounts.models import User

    User.objects.filter(pk=alice.pk).update(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(alice)
    for path in [
        "/admin/",
        "/admin/generations/generation/",
        "/admin/accounts/user/",
        "/admin/overview/",
        "/admin/django-rq/",
        f"/admin/accounts/user/{alice.pk}/change/",
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert not INLINE_HANDLER.search(html), f"inline event handler on {path}"
        for attributes in SCRIPT_TAG.findall(html):
            assert "src=" in attributes or 'type="application/json"' in attributes, (
                f"inline <script> on {path}"
            )


def test_behind_a_proxy_rate_limits_key_on_the_client_not_the_proxy(rf):
    from seedance_site.views import client_ip

    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    assert client_ip(request) == "203.0.113.7"  # the entry our proxy appended, not the spoofable one
    assert client_ip(rf.get("/", REMOTE_ADDR="198.51.100.4")) == "198.51.100.4"


def test_behind_a_proxy_setting_switches_the_rate_limit_key():
    from tests.test_deploy import run_manage

    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(getattr(settings, 'RATELIMIT_IP_META_KEY', None))",
        DJANGO_SECRET_KEY="x" * 60,
        DJANGO_BEHIND_PROXY="1",
    )
    assert result.stdout.strip().splitlines()[-1] == "seedance_site.views.client_ip"
