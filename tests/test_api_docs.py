"""The API's docs page at /api/v1/docs, and the ways to it: the footer's "API" link and the token
panel on the account page, whose curl example works as pasted (issue 12)."""

import html
import re
import shutil
import subprocess

import pytest
from django.test import Client

from generations.models import Generation

pytestmark = pytest.mark.django_db

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def test_the_docs_page_needs_no_token_and_loads_swagger_ui_from_our_own_files():
    response = Client().get("/api/v1/docs")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<title>Seedance Studio API</title>" in page
    assert '"url": "/api/v1/openapi.json"' in page
    # Our Content-Security-Policy allows no inline script and no other host: every script is a
    # file of ours, or JSON data that is never run.
    scripts = SCRIPT_TAG.findall(page)
    assert scripts and all('src="/static/' in s or 'type="application/json"' in s for s in scripts)
    assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', page)).replace("/static/", "")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert Client().get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_the_docs_page_and_the_document_answer_other_methods_in_the_error_shape():
    for path in ("/api/v1/docs", "/api/v1/openapi.json"):
        response = Client().post(path)
        assert response.status_code == 405
        assert response["Allow"] == "GET"
        assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_footer_api_link_opens_the_docs_page():
    page = Client().get("/").content.decode()
    assert '<a href="/api/v1/docs">API</a>' in page


def test_the_token_panel_links_the_docs_and_shows_curl_with_our_site_url(alice, settings):
    settings.SITE_URL = "https://videos.example.com"
    client = Client()
    client.force_login(alice)

    page = html.unescape(client.get("/accounts/").content.decode())
    assert '<a href="/api/v1/docs">API docs page</a>' in page
    account_call = (
        'curl -s -H "Authorization: Bearer $TOKEN" \\\n     https://videos.example.com/api/v1/account'
    )
    assert account_call in page
    assert "TOKEN=paste-your-token-here" in page

    new = client.post("/accounts/", {"name": "laptop"}, follow=True)
    assert f"TOKEN={new.context['new_token']}\n" in new.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not shutil.which("curl"), reason="needs curl")
def test_the_curl_example_works_as_pasted(live_server, settings):
    from tests.factories import make_user

    settings.SITE_URL = live_server.url
    settings.SHORTAPI_KEY = "configured"  # the job is only queued: nothing runs upstream
    client = Client()
    client.force_login(make_user("alice", 10_000))
    page = client.post("/accounts/", {"name": "terminal"}, follow=True).content.decode()
    example = html.unescape(re.search(r'<textarea id="curl-example"[^>]*>(.*?)</textarea>', page, re.S)[1])

    result = subprocess.run(["bash", "-c", example], capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('{"username": "alice", "balance_cents": 10000, ')
    assert '}{"id": "' in result.stdout
    generation = Generation.objects.get()
    assert (generation.user.username, generation.mode, generation.idempotency_key) == (
        "alice",
        "fast",
        "my-first-video",
    )
