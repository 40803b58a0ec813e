"""Money in one unit (issue 15, item 8): dollars wherever a person reads money, credits as the
precise figure beside them, and times as <time> elements a small script puts in the reader's zone."""

import re
from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.test import Client

from accounts.billing.ledger import credits_charge, credits_grant
from generations.pricing import format_credits, format_usd, format_usd_signed

pytestmark = pytest.mark.django_db


def page_for(user, path: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_amounts_are_dollars_with_separators_and_credits_are_counted_with_separators():
    assert format_usd(944_000) == "$9,440.00"
    assert format_usd_signed(-100) == "-$1.00"
    assert format_usd_signed(10_000) == "+$100.00"
    assert format_usd_signed(0) == "$0.00"
    assert format_credits(9440) == "9,440 credits"
    assert format_credits(1) == "1 credit"
    rendered = Template(
        "{% load money %}{{ a|usd }} {{ a|usd_signed }} {{ a|credits }} {{ none|usd }}"
    ).render(Context({"a": 123_456, "none": None}))
    assert rendered == "$1,234.56 +$1,234.56 123,456 credits $0.00"


def test_the_credit_history_shows_signed_dollars_and_the_precise_credits(alice):
    credits_charge(
        user_id=alice.pk,
        amount_cents=100,
        description="A video",
        idempotency_key="k1",
        reference="generation:x",
    )
    page = page_for(alice, "/billing/")
    assert '<span title="-100 credits">-$1.00</span>' in page
    assert '<span title="10,000 credits">+$100.00</span>' in page
    assert '<td class="num">$99.00</td>' in page  # balance after the charge
    assert not re.search(r">\s*[+-]?\d{3,}\s*<", page), "a bare credit count is shown somewhere"


def test_header_account_and_billing_say_the_same_dollars(alice):
    credits_grant(user=alice, amount_cents=-560, reason="taken back")  # 9,440 left
    for path in ("/accounts/", "/billing/", "/gallery/"):
        page = page_for(alice, path)
        assert '<span class="sr-only">Balance: </span>$94.40</a>' in page, path
        assert 'title="Your balance: 9,440 credits' in page, path
        assert "9440" not in page, path
    assert "<strong>$94.40</strong>" in page_for(alice, "/accounts/")
    billing = page_for(alice, "/billing/")
    assert "<strong>$94.40</strong>" in billing and "9,440 credits" in billing


def test_times_are_utc_on_the_server_and_marked_for_the_readers_zone(alice):
    rendered = Template(
        '{% load when %}{{ t|when }}|{{ t|when:"long" }}|{{ t|when:"time" }}|{{ none|when }}'
    ).render(Context({"t": datetime(2026, 11, 30, 21, 5, tzinfo=UTC), "none": None}))
    assert rendered == (
        '<time datetime="2026-11-30T21:05:00Z" data-local="short">Nov 30, 21:05 UTC</time>|'
        '<time datetime="2026-11-30T21:05:00Z" data-local="long">Nov 30, 2026, 21:05 UTC</time>|'
        '<time datetime="2026-11-30T21:05:00Z" data-local="time">21:05 UTC</time>|'
    )
    page = page_for(alice, "/billing/")
    assert re.search(
        r'<time datetime="[\d-]+T[\d:.]+Z" data-local="short">\w{3} \d+, \d\d:\d\d UTC</time>', page
    )
    # The script that localises them is our own static file (the CSP allows no inline script).
    assert re.search(r'<script src="/static/js/localtime[.\w]*js" defer></script>', page)
