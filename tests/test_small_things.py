"""The small rough edges of the first hour (issue 15, item 12), as the server renders them; their
browser side is in test_first_hour_browser."""

import re

import pytest
from django.core import mail
from django.test import Client

from tests.factories import client_for, generation_row, make_user
from tests.factories import html as text

pytestmark = pytest.mark.django_db


def test_the_password_reset_email_names_the_site_not_its_host(alice, deliver):
    with deliver():
        Client().post("/accounts/password_reset/", {"email": "alice@example.com"})
    [message] = mail.outbox
    assert "Seedance Studio" in message.subject and "Seedance Studio" in message.body
    assert "testserver team" not in message.body and "testserver" not in message.subject
    assert re.search(r"http://testserver/accounts/reset/\S+/\S+/", message.body)  # the link still works


def test_the_logo_reads_as_the_sites_name(db):
    html = text(Client().get("/"))
    assert re.search(r'<a class="brand" href="/" aria-label="Seedance Studio, home"', html)


def test_logging_out_says_so_on_the_next_page(alice):
    client = client_for(alice)
    response = client.post("/accounts/logout/", follow=True)
    assert "You are logged out." in text(response)
    assert "You are logged out." not in text(client.get("/"))  # said once


def test_gallery_filters_apply_by_themselves_and_still_work_without_scripting(alice):
    generation_row(alice, prompt="A fast fox", mode="fast")
    generation_row(alice, prompt="A slow snail", mode="std")
    client = client_for(alice)
    html = text(client.get("/gallery/"))
    assert re.search(r"<form[^>]+class=\"filters\"[^>]+data-autosubmit>", html)
    assert '<button type="submit" data-autosubmit-button>Apply</button>' in html  # for no-JS
    filtered = text(client.get("/gallery/", {"mode": "fast"}))
    assert "A fast fox" in filtered and "A slow snail" not in filtered


def test_explore_says_hover_or_tap_to_each_kind_of_screen(db):
    html = text(Client().get("/explore/"))
    assert '<span class="on-hover">Hover over one to play it</span>' in html
    assert '<span class="on-touch">Tap one to play it, tap again to open it</span>' in html


def test_a_long_prompt_is_folded_on_the_video_page_and_a_short_one_is_not(alice):
    long_prompt = "A drifting camera over an endless field of sunflowers. " * 40
    long_one = generation_row(alice, prompt=long_prompt[:2000])
    html = text(client_for(alice).get(f"/generations/{long_one.pk}/"))
    assert '<details class="prompt-more">' in html
    assert "Show the whole prompt (2,000 characters)" in html
    short_one = generation_row(alice, prompt="A heron at dawn")
    html = text(client_for(alice).get(f"/generations/{short_one.pk}/"))
    assert "prompt-more" not in html and '<p class="prompt-full">A heron at dawn</p>' in html


def test_the_shared_page_folds_a_long_prompt_too(db):
    bob = make_user("bob")
    generation = generation_row(bob, prompt="x " * 1000, shared=True)
    html = text(Client().get(f"/v/{generation.share_slug}/"))
    assert '<details class="prompt-more">' in html
