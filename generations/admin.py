from django.contrib import admin, messages
from django.http import HttpRequest

from generations.models import Generation, OperatorAction
from generations.operations import generation_fail_and_refund, generation_poll_now, generation_retry_submit


class OperatorActionInline(admin.TabularInline):
    model = OperatorAction
    fields = ("created_at", "operator", "action", "note")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "status",
        "mode",
        "duration",
        "aspect_ratio",
        "cost_cents",
        "upstream_amount",
        "failure_class",
        "created_at",
    )
    list_filter = ("status", "mode", "aspect_ratio", "failure_class", "shared", "deleted_at", "created_at")
    search_fields = ("=id", "prompt", "=upstream_job_id", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Generation._meta.fields if f.name != "shared"]
    inlines = [OperatorActionInline]
    actions = ["poll_now", "retry_submit", "fail_and_refund"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Generation | None = None) -> bool:
        # Deleting would orphan its ledger entries; users delete their own from the gallery.
        return False

    def _report(self, request: HttpRequest, verb: str, done: int, total: int) -> None:
        level = messages.SUCCESS if done == total else messages.WARNING
        skipped = f" ({total - done} skipped: not in a state that allows it)" if done < total else ""
        self.message_user(request, f"{verb}: {done} of {total}{skipped}.", level)

    @admin.action(description="Poll upstream now", permissions=["change"])
    def poll_now(self, request: HttpRequest, queryset) -> None:
        done = sum(generation_poll_now(generation=g, operator=request.user.username) for g in queryset)
        self._report(request, "Poll queued", done, len(queryset))

    @admin.action(description="Retry the submit (no upstream job yet)", permissions=["change"])
    def retry_submit(self, request: HttpRequest, queryset) -> None:
        done = sum(generation_retry_submit(generation=g, operator=request.user.username) for g in queryset)
        self._report(request, "Submit queued again", done, len(queryset))

    @admin.action(description="Fail and refund", permissions=["change"])
    def fail_and_refund(self, request: HttpRequest, queryset) -> None:
        done = sum(
            generation_fail_and_refund(generation=g, operator=request.user.username, reason="from the admin")
            for g in queryset
        )
        self._report(request, "Failed and refunded", done, len(queryset))


@admin.register(OperatorAction)
class OperatorActionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "operator", "action", "generation", "user", "note")
    list_filter = ("action", "operator")
    search_fields = ("operator", "note", "=generation__id", "user__username")
    list_select_related = ("user", "generation")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OperatorAction | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OperatorAction | None = None) -> bool:
        return False
