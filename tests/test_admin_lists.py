"""The operator's everyday lists (issue 15, items 8 and 10): every list opens, money reads in
dollars, times are <time> elements the reader's browser puts in its own zone."""

import re

import pytest
from django.contrib import admin
from django.test import Client

from accounts.services import api_token_create
from generations.services import generation_create
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(make_user("olga", is_staff=True, is_superuser=True))
    return client


def test_every_admin_list_opens_with_local_times_and_no_bare_cents(operator, alice, settings):
    settings.SHORTAPI_KEY = "configured"
    generation_create(user=alice, prompt="a kite " * 40, mode="std", duration=5, aspect_ratio="16:9")
    api_token_create(user=alice, name="laptop")
    for model in admin.site._registry:
        meta = model._meta
        url = f"/admin/{meta.app_label}/{meta.model_name}/"
        response = operator.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        if meta.model_name in ("generation", "creditentry", "creditaccount", "user", "apitoken"):
            assert re.search(r'<time datetime="[^"]+Z" data-local="short">', page), url
    generations = operator.get("/admin/generations/generation/").content.decode()
    assert re.search(r'<code class="short-id" title="[0-9a-f-]{36}">[0-9a-f]{8}</code>', generations)
    assert re.search(
        r'<span class="prompt-line" title="(a kite ){40}">(a kite ){12}a kit…</span>', generations
    )
    assert '<span title="120 credits">$1.20</span>' in generations
    ledger = operator.get("/admin/accounts/creditentry/").content.decode()
    assert '<span class="money" title="-120 credits">-$1.20</span>' in ledger
    assert '<span class="money" title="10,000 credits">+$100.00</span>' in ledger
