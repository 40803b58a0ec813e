"""The admin for Stripe top-ups: TopUps and events, searchable, "process again" through the services."""

import pytest

from accounts.billing.topups import topup_create
from accounts.models import CreditAccount, StripeEvent, TopUp
from tests.factories import balance, html
from tests.fake_stripe import deliver

# After every test here, each balance still equals the sum of its ledger.
pytestmark = pytest.mark.usefixtures("books_balance")


def test_admin_lists_and_searches_topups_and_events(fake_stripe, alice, admin_client):
    topup = topup_create(user=alice, amount_cents=1000)
    deliver(fake_stripe.event("checkout.session.completed", fake_stripe.mark_paid(topup.stripe_session_id)))

    topups = admin_client.get("/admin/accounts/topup/", {"q": topup.stripe_session_id})
    events = admin_client.get("/admin/accounts/stripeevent/", {"q": "checkout.session.completed"})
    shortfalls = admin_client.get("/admin/accounts/topup/", {"shortfall": "yes"})

    assert topups.status_code == events.status_code == shortfalls.status_code == 200
    assert f"/admin/accounts/topup/{topup.pk}/change/" in html(topups)
    assert f"/admin/accounts/topup/{topup.pk}/change/" not in html(shortfalls)
    assert StripeEvent.objects.get().stripe_id in html(events)
    assert admin_client.get(f"/admin/accounts/topup/{topup.pk}/change/").status_code == 200


def test_admin_process_again_handles_a_failed_event_through_the_service(fake_stripe, carol, admin_client):
    topup = topup_create(user=carol, amount_cents=1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    refund = fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 1000))
    assert deliver(refund).status_code == 500  # not credited yet
    deliver(fake_stripe.event("checkout.session.completed", session))
    event = StripeEvent.objects.get(stripe_id=refund["id"])

    response = admin_client.post(
        "/admin/accounts/stripeevent/",
        {"action": "process_again", "_selected_action": [event.pk]},
        follow=True,
    )

    assert response.status_code == 200
    event.refresh_from_db()
    assert (event.state, event.attempts) == (StripeEvent.State.PROCESSED, 2)
    assert balance(carol) == 0
    assert TopUp.objects.get().state == TopUp.State.REFUNDED


def test_admin_process_again_on_a_topup_asks_stripe_and_credits_once(fake_stripe, carol, admin_client):
    topup = topup_create(user=carol, amount_cents=1000)
    fake_stripe.mark_paid(topup.stripe_session_id)

    for _ in range(2):
        admin_client.post(
            "/admin/accounts/topup/", {"action": "check_with_stripe", "_selected_action": [topup.pk]}
        )

    topup.refresh_from_db()
    assert topup.state == TopUp.State.PAID
    assert balance(carol) == 1000


def test_admin_cannot_add_or_delete_topups(admin_client):
    assert admin_client.get("/admin/accounts/topup/add/").status_code == 403


def test_topups_and_events_are_view_only_so_a_save_cannot_undo_a_claim(fake_stripe, alice, admin_client):
    topup = topup_create(user=alice, amount_cents=1000)
    deliver(fake_stripe.event("checkout.session.completed", fake_stripe.mark_paid(topup.stripe_session_id)))
    event = StripeEvent.objects.get()
    for url, fields in (
        (f"/admin/accounts/topup/{topup.pk}/change/", {"state": "pending", "amount_cents": "5"}),
        (f"/admin/accounts/stripeevent/{event.pk}/change/", {"state": "received"}),
    ):
        page = admin_client.get(url)
        assert page.status_code == 200 and 'name="_save"' not in html(page)
        assert admin_client.post(url, {**fields, "_save": "Save"}).status_code == 403
    topup.refresh_from_db()
    event.refresh_from_db()
    assert (topup.state, topup.amount_cents, event.state) == ("paid", 1000, "processed")


def test_the_user_admin_shows_balance_and_owed_read_only(alice, admin_client):
    page = admin_client.get(f"/admin/accounts/user/{alice.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert not {"balance", "owed", "balance_cents"} & set(form.fields)
    assert '<span class="money" title="10,000 credits">$100.00</span>' in html(page)
    assert "owed" in html(page).lower()
    listing = admin_client.get("/admin/accounts/user/", {"o": "3"})  # sorted by balance
    assert listing.status_code == 200 and '<span class="money" title="10,000 credits">$100.00</span>' in html(
        listing
    )


def test_credit_accounts_are_read_only_in_the_admin(alice, admin_client):
    account = CreditAccount.objects.get(owner=alice)
    assert admin_client.get("/admin/accounts/creditaccount/", {"owes": "yes"}).status_code == 200
    assert admin_client.get("/admin/accounts/creditaccount/add/").status_code == 403
    url = f"/admin/accounts/creditaccount/{account.pk}/change/"
    assert admin_client.post(url, {"balance_cents": "999999", "_save": "Save"}).status_code == 403
    assert (
        admin_client.post(f"/admin/accounts/creditaccount/{account.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert balance(alice) == 10_000
