"""Sharing in three states (issue 15, item 9): private, anyone with the link (unlisted), listed on
Explore. Going private ends the public page, its signed video link and og:video at once."""

import re

import pytest
from django.test import Client

from generations.models import Generation
from tests.factories import api_for, client_for, generation_row, with_files
from tests.factories import html as text

pytestmark = pytest.mark.django_db


def share(client: Client, generation: Generation, visibility: str):
    response = client.post(f"/generations/{generation.pk}/share/", {"visibility": visibility})
    assert response.status_code == 302
    generation.refresh_from_db()
    return response


def og_video(html: str) -> str:
    return (
        re.search(r'<meta property="og:video" content="([^"]+)">', html)
        .group(1)
        .removeprefix("http://testserver")
    )


def test_anyone_with_the_link_can_watch_an_unlisted_video_but_explore_does_not_list_it(alice, media):
    generation = with_files(generation_row(alice, prompt="A quiet unlisted harbour"))
    share(client_for(alice), generation, "unlisted")
    assert generation.visibility == "unlisted" and generation.share_slug

    anonymous = Client()
    page = anonymous.get(f"/v/{generation.share_slug}/")
    assert page.status_code == 200
    assert anonymous.get(og_video(text(page))).status_code == 200
    poster = anonymous.get(f"/generations/{generation.pk}/poster.jpg")
    assert poster.status_code == 200
    assert poster["Cache-Control"] == "no-cache"  # asked again each time: going private hides it at once
    assert "A quiet unlisted harbour" not in text(anonymous.get("/explore/"))
    assert "A quiet unlisted harbour" not in text(anonymous.get("/"))
    assert "A quiet unlisted harbour" not in text(anonymous.get("/explore/", {"q": "harbour"}))


def test_a_listed_video_is_on_explore_and_keeps_its_link_when_taken_off(alice, media):
    generation = with_files(generation_row(alice, prompt="A listed lighthouse"))
    client = client_for(alice)
    share(client, generation, "unlisted")
    slug = generation.share_slug
    response = client.get(share(client, generation, "listed")["Location"])
    assert "Listed on Explore. The link stays the same." in text(response)
    assert generation.visibility == "listed" and generation.share_slug == slug
    assert "A listed lighthouse" in text(Client().get("/explore/"))
    share(client, generation, "unlisted")
    assert generation.share_slug == slug
    assert "A listed lighthouse" not in text(Client().get("/explore/"))
    assert Client().get(f"/v/{slug}/").status_code == 200


def test_going_private_kills_the_page_the_signed_video_link_and_og_video_at_once(alice, media):
    generation = with_files(generation_row(alice, prompt="Soon private"))
    client = client_for(alice)
    share(client, generation, "listed")
    old_slug = generation.share_slug
    anonymous = Client()
    public_video = og_video(text(anonymous.get(f"/v/{old_slug}/")))
    explore_video = re.search(r'data-video="([^"]+)"', text(anonymous.get("/explore/"))).group(1)
    assert anonymous.get(public_video).status_code == 200
    owners_video = re.search(
        r'<video controls[^>]* src="([^"]+)"', text(client.get(f"/generations/{generation.pk}/"))
    ).group(1)

    response = client.get(share(client, generation, "private")["Location"])

    assert "Private again" in text(response)
    assert generation.visibility == "private" and generation.share_slug is None
    # At once, long before any signature expires: the page, the video it linked and Explore's copy.
    assert anonymous.get(f"/v/{old_slug}/").status_code == 404
    assert anonymous.get(public_video).status_code == 404
    assert anonymous.get(explore_video.removeprefix("http://testserver")).status_code == 404
    assert anonymous.get(f"/generations/{generation.pk}/poster.jpg").status_code == 404
    # The owner's own link (the page, the API's video_url) is not a public one and keeps working.
    assert client.get(owners_video.removeprefix("http://testserver")).status_code == 200

    # Sharing again makes a new link; the old one stays dead.
    share(client, generation, "unlisted")
    assert generation.share_slug and generation.share_slug != old_slug
    assert anonymous.get(f"/v/{old_slug}/").status_code == 404
    assert anonymous.get(public_video).status_code == 404
    assert anonymous.get(f"/v/{generation.share_slug}/").status_code == 200


def test_the_page_offers_three_choices_and_a_nonsense_one_changes_nothing(alice, media):
    generation = with_files(generation_row(alice))
    client = client_for(alice)
    html = text(client.get(f"/generations/{generation.pk}/"))
    choices = (("private", "Only you"), ("unlisted", "Anyone with the link"), ("listed", "Everyone"))
    for value, words in choices:
        assert f'name="visibility" value="{value}"' in html and words in html
    response = client.post(f"/generations/{generation.pk}/share/", {"visibility": "world"}, follow=True)
    assert "Choose who may watch it" in text(response)
    generation.refresh_from_db()
    assert generation.visibility == "private"


def test_the_api_shows_visibility_and_the_share_link_beside_the_contracts_fields(alice, media, settings):
    generation = with_files(generation_row(alice))
    api = api_for(alice)
    body = api.get(f"/api/v1/generations/{generation.pk}").json()
    assert body["visibility"] == "private" and body["share_url"] is None
    assert body["video_url"].startswith(f"{settings.SITE_URL}/videos/")  # the contract's, unchanged
    share(client_for(alice), generation, "unlisted")
    body = api.get(f"/api/v1/generations/{generation.pk}").json()
    assert body["visibility"] == "unlisted"
    assert body["share_url"] == f"{settings.SITE_URL}/v/{generation.share_slug}/"
    # The owner's video_url is theirs, not the public one: it outlives a change of sharing.
    share(client_for(alice), generation, "private")
    assert Client().get(body["video_url"].removeprefix(settings.SITE_URL)).status_code == 200
