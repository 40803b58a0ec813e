import pytest
from django.test import Client

from accounts.models import CreditAccount, CreditEntry, User
from accounts.services import api_token_authenticate
from tests.factories import balance, make_user, manage

pytestmark = pytest.mark.django_db(transaction=True)


def test_grant_credits_prints_the_new_balance_last():
    make_user("alice", 100)
    result = manage("grant_credits", "alice", "250", "--reason", "support gesture")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "350"
    entry = CreditEntry.objects.filter(user__username="alice").first()
    assert (entry.kind, entry.amount_cents, entry.description) == ("grant", 250, "support gesture")


def test_grant_credits_negative_takes_back():
    make_user("alice", 100)
    result = manage("grant_credits", "alice", "-40", "--reason", "correction")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "60"
    assert CreditEntry.objects.filter(kind="adjustment", amount_cents=-40).count() == 1


def test_grant_credits_refuses_a_take_back_larger_than_the_balance():
    make_user("alice", 100)
    result = manage("grant_credits", "alice", "-101", "--reason", "too much")
    assert result.returncode == 1
    assert "has only 100" in result.stderr
    assert balance(User.objects.get(username="alice")) == 100
    assert CreditEntry.objects.count() == 1


def test_grant_credits_unknown_user_exits_1_and_changes_nothing():
    result = manage("grant_credits", "nobody", "100", "--reason", "x")
    assert result.returncode == 1
    assert "No user named 'nobody'" in result.stderr
    assert CreditEntry.objects.count() == 0


def test_grant_credits_needs_a_reason():
    make_user("alice")
    result = manage("grant_credits", "alice", "100")
    assert result.returncode != 0
    assert "--reason" in result.stderr


def test_create_api_token_prints_a_working_token_last():
    alice = make_user("alice")
    result = manage("create_api_token", "alice")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert api_token_authenticate(token) == alice


def test_create_api_token_unknown_user_exits_1():
    result = manage("create_api_token", "nobody")
    assert result.returncode == 1
    assert "No user named 'nobody'" in result.stderr


def test_audit_credits_passes_on_a_consistent_ledger():
    make_user("alice", 500)
    result = manage("audit_credits")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().startswith("OK")


def test_audit_credits_lists_each_mismatch_and_exits_1():
    make_user("alice", 500)
    make_user("bob", 300)
    # Corrupt balances behind the services' back, as a bad migration or manual SQL might.
    CreditAccount.objects.filter(owner__username="alice").update(balance_cents=499)
    CreditAccount.objects.filter(owner__username="bob").update(balance_cents=301)
    result = manage("audit_credits")
    assert result.returncode == 1
    assert "user alice: balance 499 != ledger sum 500" in result.stdout
    assert "user bob: balance 301 != ledger sum 300" in result.stdout


def test_ensure_demo_user_is_idempotent():
    for _ in range(2):
        result = manage("ensure_demo_user")
        assert result.returncode == 0, result.stderr
    demo = User.objects.get(username="demo")
    assert balance(demo) == 10_000
    assert demo.check_password("demo")


def test_every_way_a_user_comes_to_exist_can_hold_credits(admin_client):
    # createsuperuser and the admin's "add user" make users without any hook of ours: their
    # credit account is made on their first ledger entry, and until then they have 0.
    result = manage(
        "createsuperuser",
        "--noinput",
        "--username",
        "root",
        "--email",
        "root@example.com",
        env={"DJANGO_SUPERUSER_PASSWORD": "a-Long-pass-77"},
    )
    assert result.returncode == 0, result.stderr
    added = admin_client.post(
        "/admin/accounts/user/add/",
        {"username": "erin", "password1": "a-Long-pass-77", "password2": "a-Long-pass-77"},
    )
    assert added.status_code == 302, added.context["adminform"].form.errors
    for username in ("root", "erin"):
        user = User.objects.get(username=username)
        assert balance(user) == 0 and not CreditAccount.objects.filter(owner=user).exists()
        client = Client()
        client.force_login(user)
        assert 'title="Your balance: 0 credits' in client.get("/billing/").content.decode()
        result = manage("grant_credits", username, "300", "--reason", "welcome")
        assert result.stdout.strip().splitlines()[-1] == "300", result.stderr
        assert balance(user) == 300
