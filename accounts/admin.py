from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import ApiToken, CreditEntry, User


class CreditEntryInline(admin.TabularInline):
    model = CreditEntry
    fields = ("created_at", "kind", "amount_cents", "balance_after", "description", "reference")
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "balance_cents", "is_staff", "date_joined")
    readonly_fields = ("balance_cents",)
    fieldsets = BaseUserAdmin.fieldsets + (("Credits", {"fields": ("balance_cents",)}),)
    inlines = [CreditEntryInline]


@admin.register(CreditEntry)
class CreditEntryAdmin(admin.ModelAdmin):
    """The ledger is append-only: operators read it here and change balances through services."""

    list_display = ("created_at", "user", "kind", "amount_cents", "balance_after", "description", "reference")
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


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = ("prefix", "token_hash", "created_at", "last_used_at")
    list_select_related = ("user",)
