"""The money in the admin: read here, changed only through the ledger and the top-up services."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html

from accounts.billing.models import CreditAccount, CreditEntry, StripeEvent, TopUp
from generations.templatetags.money import usd_with_credits
from generations.templatetags.when import when
from seedance_site.admin import local_time


class RecentFirstFormSet(BaseInlineFormSet):
    """Only the newest entries: a long-lived account's whole history would make the page crawl."""

    limit = 50

    def get_queryset(self):
        return super().get_queryset()[: self.limit]


class EntryMoney:
    """A ledger entry's figures in dollars (credits on hover), its time in the reader's zone."""

    @admin.display(description="when", ordering="created_at")
    def when(self, entry: CreditEntry) -> str:
        return when(entry.created_at)

    @admin.display(description="amount", ordering="amount_cents")
    def amount(self, entry: CreditEntry) -> str:
        return usd_with_credits(entry.amount_cents, signed=True)

    @admin.display(description="owed by it")
    def owed(self, entry: CreditEntry) -> str:
        return usd_with_credits(entry.owed_cents, signed=True) if entry.owed_cents else "—"

    @admin.display(description="balance after", ordering="balance_after")
    def balance(self, entry: CreditEntry) -> str:
        return usd_with_credits(entry.balance_after)

    @admin.display(description="owed after")
    def owed_now(self, entry: CreditEntry) -> str:
        return usd_with_credits(entry.owed_after) if entry.owed_after else "—"

    @admin.display(description="reference", ordering="reference")
    def ref(self, entry: CreditEntry) -> str:
        # "generation:<uuid>" is 47 characters: the kind and the id's first block say enough here.
        if len(entry.reference) <= 20:
            return entry.reference or "—"
        return format_html('<span title="{}">{}…</span>', entry.reference, entry.reference[:19])


class CreditEntryInline(EntryMoney, admin.TabularInline):
    model = CreditEntry
    formset = RecentFirstFormSet
    verbose_name_plural = "credit entries (newest 50; the whole ledger is under Credit entries)"
    fields = ("when", "kind", "amount", "owed", "balance", "owed_now", "description", "reference")
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


class GrantCreditsForm(forms.Form):
    # Made when the form is shown and sent back with it: a double-clicked "Apply" (or a browser
    # re-sending the POST) carries the same key, and the ledger grants once per key and user.
    idempotency_key = forms.UUIDField(
        widget=forms.HiddenInput,
        initial=uuid.uuid4,
        error_messages={
            "required": "This form is out of date: choose the action again.",
            "invalid": "This form is out of date: choose the action again.",
        },
    )
    amount_cents = forms.IntegerField(
        label="Credits (cents)",
        help_text="Negative takes credits back, never below zero; a grant pays what is owed first.",
        min_value=-10_000_000,
        max_value=10_000_000,
    )
    reason = forms.CharField(max_length=200, help_text="Shown to the user in their credit history.")

    def clean_amount_cents(self) -> int:
        if self.cleaned_data["amount_cents"] == 0:
            raise forms.ValidationError("Enter a number of credits other than zero.")
        return self.cleaned_data["amount_cents"]


@admin.register(CreditEntry)
class CreditEntryAdmin(EntryMoney, admin.ModelAdmin):
    """The ledger is append-only: operators read it here and change balances through services."""

    list_display = (
        "when",
        "user",
        "kind",
        "amount",
        "owed",
        "balance",
        "owed_now",
        "description",
        "reference",
    )
    list_filter = ("kind", "created_at")
    search_fields = ("user__username", "description", "reference", "idempotency_key")
    list_select_related = ("user",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class OwesFilter(admin.SimpleListFilter):
    title = "debt"
    parameter_name = "owes"

    def lookups(self, request, model_admin):
        return (("yes", "Owes credits"),)

    def queryset(self, request, queryset):
        return queryset.filter(owed_cents__gt=0) if self.value() == "yes" else queryset


@admin.register(CreditAccount)
class CreditAccountAdmin(admin.ModelAdmin):
    """Balances and debts, read-only: only the ledger writes them (grant through the user admin)."""

    list_display = ("owner", "balance", "owed", "created")
    created = local_time("created_at", "opened")
    list_filter = (OwesFilter,)
    search_fields = ("owner__username", "owner__email")
    list_select_related = ("owner",)

    @admin.display(description="balance", ordering="balance_cents")
    def balance(self, account: CreditAccount) -> str:
        return usd_with_credits(account.balance_cents)

    @admin.display(description="owed", ordering="owed_cents")
    def owed(self, account: CreditAccount) -> str:
        return usd_with_credits(account.owed_cents) if account.owed_cents else "—"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- Stripe top-ups (issue 5): read here, changed only through accounts.billing -------------------
# The actions import accounts.billing when run: it pulls in the stripe library (~0.15 s), which
# every process loading the admin (each management command) would otherwise pay for.


class ShortfallFilter(admin.SimpleListFilter):
    title = "take-back shortfall"
    parameter_name = "shortfall"

    def lookups(self, request, model_admin):
        return (("yes", "Credits taken back on credit (owed)"),)

    def queryset(self, request, queryset):
        return queryset.filter(shortfall_cents__gt=0) if self.value() == "yes" else queryset


@admin.register(TopUp)
class TopUpAdmin(admin.ModelAdmin):
    list_display = ("id", "when", "user", "amount", "state", "refunded", "disputed", "shortfall")
    list_filter = ("state", ShortfallFilter, "created_at")
    search_fields = ("=id", "user__username", "user__email", "stripe_session_id", "stripe_payment_intent")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in TopUp._meta.fields]
    actions = ["check_with_stripe"]

    @admin.display(description="when", ordering="created_at")
    def when(self, topup: TopUp) -> str:
        return when(topup.created_at)

    @admin.display(description="amount", ordering="amount_cents")
    def amount(self, topup: TopUp) -> str:
        return usd_with_credits(topup.amount_cents)

    @admin.display(description="refunded", ordering="refunded_cents")
    def refunded(self, topup: TopUp) -> str:
        return usd_with_credits(topup.refunded_cents) if topup.refunded_cents else "—"

    @admin.display(description="disputed", ordering="disputed_cents")
    def disputed(self, topup: TopUp) -> str:
        return usd_with_credits(topup.disputed_cents) if topup.disputed_cents else "—"

    @admin.display(description="shortfall", ordering="shortfall_cents")
    def shortfall(self, topup: TopUp) -> str:
        return usd_with_credits(topup.shortfall_cents) if topup.shortfall_cents else "—"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # View only: a saved form would write back every column as it was read, undoing any
        # state a webhook claimed meanwhile. "Process again" goes through the services instead.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Process again: ask Stripe about the session and act on it")
    def check_with_stripe(self, request, queryset) -> None:
        from accounts.billing.stripe_client import StripeCallFailed, StripeNotConfigured
        from accounts.billing.topups import BillingError, topup_sync

        for topup in queryset:
            try:
                topup = topup_sync(topup=topup)
            except (StripeCallFailed, StripeNotConfigured, BillingError) as exc:
                self.message_user(request, f"Top-up {topup.pk}: {exc}", level=messages.ERROR)
            else:
                self.message_user(request, f"Top-up {topup.pk}: {topup.get_state_display()}.")


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ("stripe_id", "type", "state", "attempts", "received", "processed", "error")
    received = local_time("received_at", "received")
    processed = local_time("processed_at", "processed")
    list_filter = ("state", "type", "received_at")
    search_fields = ("stripe_id", "type", "error")
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in StripeEvent._meta.fields]
    actions = ["process_again"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # view only, as for top-ups

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Process again (safe: crediting and refunds are idempotent)")
    def process_again(self, request, queryset) -> None:
        from accounts.billing.stripe_events import StripeEventFailed, stripe_event_process

        for event in queryset:
            try:
                event = stripe_event_process(event_id=event.pk, force=True)
            except StripeEventFailed as exc:
                self.message_user(request, str(exc), level=messages.ERROR)
            else:
                self.message_user(request, f"{event.stripe_id}: {event.state}. {event.error}".strip())
