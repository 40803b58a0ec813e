from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.template.response import TemplateResponse

from accounts.billing.admin import CreditEntryInline, GrantCreditsForm
from accounts.models import ApiToken, EmailNotice, User


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
    list_display = ("username", "email", "balance_cents", "is_staff", "date_joined")
    readonly_fields = ("balance_cents",)
    fieldsets = BaseUserAdmin.fieldsets + (("Credits", {"fields": ("balance_cents",)}),)
    inlines = [CreditEntryInline]
    actions = ["grant_credits"]

    @admin.action(description="Grant or take back credits…", permissions=["change"])
    def grant_credits(self, request, queryset):
        from accounts.billing.ledger import InsufficientCredits
        from generations.operations import user_grant_credits

        form = GrantCreditsForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done, short = 0, []
            for user in queryset:
                try:
                    user_grant_credits(
                        user=user,
                        amount_cents=form.cleaned_data["amount_cents"],
                        reason=form.cleaned_data["reason"],
                        operator=request.user.username,
                    )
                    done += 1
                except InsufficientCredits:
                    short.append(user.username)
            self.message_user(request, f"Credits changed for {done} user(s).", messages.SUCCESS)
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
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = ("prefix", "token_hash", "created_at", "last_used_at")
    list_select_related = ("user",)


@admin.register(EmailNotice)
class EmailNoticeAdmin(admin.ModelAdmin):
    """Emails people asked for (a video ready or failed, a low balance): what was sent, when."""

    list_display = ("to_email", "kind", "state", "attempts", "created_at", "sent_at")
    list_filter = ("state", "kind", "created_at")
    search_fields = ("to_email", "user__username", "key", "subject")
    readonly_fields = [f.name for f in EmailNotice._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
