"""Post/Redirect/Get: every form that changes something answers a successful POST with a redirect, so a
refresh of the page that follows re-sends nothing (issue 15, item 6)."""

import io

import pytest
from django.core import mail
from django.test import Client

from accounts.models import ApiToken
from generations.models import Generation, Upload
from tests import media
from tests.factories import generation_row, make_user

pytestmark = pytest.mark.django_db

REDIRECTS = (302, 303)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def storage(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path


def test_creating_an_api_token_redirects_and_a_refresh_makes_no_second_token(alice):
    client = client_for(alice)
    response = client.post("/accounts/", {"name": "laptop"})
    assert response.status_code in REDIRECTS
    page = client.get(response["Location"])
    token = page.context["new_token"]
    assert token.startswith("sds_") and token in page.content.decode()
    # The refresh a person makes on that page is a GET: no new token, and the secret is gone.
    again = client.get(response["Location"])
    assert token not in again.content.decode() and again.context["new_token"] is None
    assert ApiToken.objects.filter(user=alice).count() == 1


def _forms(alice, storage) -> list[tuple[str, dict]]:
    """Each (url, data) a page posts to change something, made ready to succeed."""
    succeeded = generation_row(alice, prompt="Finished one")
    queued = generation_row(alice, status=Generation.Status.QUEUED, prompt="Queued one")
    doomed = generation_row(alice, prompt="To delete")
    token = ApiToken.objects.create(user=alice, name="old", token_hash="x" * 64)
    picture = media.picture(storage / "a.jpg", (800, 600))
    with picture.open("rb") as handle:
        body = io.BytesIO(handle.read())
    body.name = "a.jpg"
    return [
        ("/accounts/spend-limit/", {"limit": "25"}),
        ("/accounts/notifications/", {"email_on_finish": "on"}),
        ("/accounts/webhooks/rotate/", {}),
        (f"/accounts/tokens/{token.pk}/revoke/", {}),
        ("/accounts/verify/resend/", {}),
        (f"/generations/{succeeded.pk}/share/", {"visibility": "unlisted"}),
        (f"/generations/{succeeded.pk}/share/", {"visibility": "listed"}),
        (f"/generations/{succeeded.pk}/share/", {"visibility": "private"}),
        (f"/generations/{queued.pk}/cancel/", {}),
        (f"/generations/{doomed.pk}/delete/", {}),
        ("/uploads/new/", {"file": body}),
        ("/generate/", {"prompt": "A fox", "idempotency_key": "prg-1"}),
        (
            "/accounts/password_change/",
            {
                "old_password": "pw-alicealice",
                "new_password1": "brand-New-pass-9",
                "new_password2": "brand-New-pass-9",
            },
        ),
    ]


def test_every_form_that_changes_something_redirects_after_success(alice, settings, storage):
    settings.SHORTAPI_KEY = "x"  # the generation is only queued
    client = client_for(alice)
    for url, data in _forms(alice, storage):
        response = client.post(url, data)
        assert response.status_code in REDIRECTS, (url, response.status_code)
    assert Upload.objects.filter(user=alice).count() == 1
    assert Generation.objects.filter(prompt="A fox").count() == 1


def test_the_upload_after_its_upload_deletes_by_redirect(alice, storage):
    client = client_for(alice)
    picture = media.picture(storage / "b.png", (640, 480))
    with picture.open("rb") as handle:
        body = io.BytesIO(handle.read())
    body.name = "b.png"
    assert client.post("/uploads/new/", {"file": body}).status_code in REDIRECTS
    upload = Upload.objects.get(user=alice)
    assert client.post(f"/uploads/{upload.pk}/delete/").status_code in REDIRECTS


def test_signing_up_logging_in_and_out_and_resetting_redirect(settings):
    make_user("bob")
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {
            "username": "dana",
            "email": "dana@example.com",
            "password1": "a-Long-pass-77",
            "password2": "a-Long-pass-77",
        },
    )
    assert response.status_code in REDIRECTS
    response = client.post("/accounts/login/", {"username": "bob", "password": "pw-bobbob"})
    assert response.status_code in REDIRECTS
    assert client.post("/accounts/logout/").status_code in REDIRECTS
    response = client.post("/accounts/password_reset/", {"email": "bob@example.com"})
    assert response.status_code in REDIRECTS
    bob = client_for(make_user("erin"))
    assert bob.post("/accounts/sign_out_everywhere/").status_code in REDIRECTS
    del mail.outbox[:]


def test_buying_credits_redirects_to_the_checkout(fake_stripe, alice):
    response = client_for(alice).post("/billing/checkout/", {"amount_cents": "1000"})
    assert response.status_code in REDIRECTS
    response = client_for(alice).post("/billing/checkout/", {"amount_usd": "12"})
    assert response.status_code in REDIRECTS
