from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse

from accounts.billing.admin import CreditEntryInline, GrantCreditsForm
from accounts.models import ApiToken, EmailNotice, User
from generations.templatetags.money import usd_with_credits
from generations.templatetags.when import when
from seedance_site.admin import local_time


class UserCreationForm(AdminUserCreationForm):
    """New names made by operators follow the sign-up rule (no look-alikes)."""

    def clean_username(self) -> str:
        from accounts.forms import new_username_validators

        username = super().clean_username()
        if username:
            for validate in new_username_validators:
                validate(username)
        return username


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    add_form = UserCreationForm
    list_display = ("username", "email", "balance", "owed", "is_staff", "joined", "last_seen")
    # Money is shown, never edited here: the balance lives on CreditAccount, moved by the ledger.
    readonly_fields = ("balance", "owed")
    fieldsets = BaseUserAdmin.fieldsets + (("Credits", {"fields": ("balance", "owed")}),)
    inlines = [CreditEntryInline]
    actions = ["grant_credits"]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # a user being added has no ledger yet

    def get_queryset(self, request):
        # One query for the list, however many users: a user with no account yet has 0 of each.
        return (
            super()
            .get_queryset(request)
            .annotate(
                account_balance_cents=Coalesce(F("credit_account__balance_cents"), Value(0)),
                account_owed_cents=Coalesce(F("credit_account__owed_cents"), Value(0)),
            )
        )

    @admin.display(description="balance", ordering="account_balance_cents")
    def balance(self, user: User) -> str:
        return usd_with_credits(getattr(user, "account_balance_cents", 0))

    @admin.display(description="owed", ordering="account_owed_cents")
    def owed(self, user: User) -> str:
        owed = getattr(user, "account_owed_cents", 0)
        return usd_with_credits(owed) if owed else "—"

    @admin.display(description="joined", ordering="date_joined")
    def joined(self, user: User) -> str:
        return when(user.date_joined)

    @admin.display(description="last login", ordering="last_login")
    def last_seen(self, user: User) -> str:
        return when(user.last_login) or "never"

    @admin.action(description="Grant or take back credits…", permissions=["change"])
    def grant_credits(self, request, queryset):
        from accounts.billing.ledger import InsufficientCredits
        from generations.operations import user_grant_credits

        form = GrantCreditsForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done, repeated, short = 0, 0, []
            for user in queryset:
                try:
                    entry = user_grant_credits(
                        user=user,
                        amount_cents=form.cleaned_data["amount_cents"],
                        reason=form.cleaned_data["reason"],
                        operator=request.user.username,
                        idempotency_key=f"admin-grant:{form.cleaned_data['idempotency_key']}:{user.pk}",
                    )
                except InsufficientCredits:
                    short.append(user.username)
                    continue
                if entry.replayed:
                    repeated += 1
                else:
                    done += 1
            self.message_user(request, f"Credits changed for {done} user(s).", messages.SUCCESS)
            if repeated:
                self.message_user(
                    request,
                    f"Already applied for {repeated} user(s) by this same form (sent twice): "
                    "nothing more changed.",
                    messages.WARNING,
                )
            if short:
                self.message_user(
                    request, f"Not changed (balance too low): {', '.join(short)}.", messages.WARNING
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Grant or take back credits",
            "users": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/grant_credits.html", context)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created", "last_used", "revoked")
    created = local_time("created_at", "created")
    last_used = local_time("last_used_at", "last used")
    revoked = local_time("revoked_at", "revoked")
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = ("prefix", "token_hash", "created_at", "last_used_at")
    list_select_related = ("user",)


@admin.register(EmailNotice)
class EmailNoticeAdmin(admin.ModelAdmin):
    """Emails people asked for (a video ready or failed, a low balance): what was sent, when."""

    list_display = ("to_email", "kind", "state", "attempts", "created", "sent")
    created = local_time("created_at", "created")
    sent = local_time("sent_at", "sent")
    list_filter = ("state", "kind", "created_at")
    search_fields = ("to_email", "user__username", "key", "subject")
    readonly_fields = [f.name for f in EmailNotice._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
