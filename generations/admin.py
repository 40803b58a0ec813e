from django.contrib import admin

from generations.models import Generation


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "status", "mode", "duration", "aspect_ratio", "cost_cents", "created_at")
    list_filter = ("status", "mode", "aspect_ratio", "failure_class", "created_at")
    search_fields = ("=id", "prompt", "=upstream_job_id", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    readonly_fields = [
        f.name for f in Generation._meta.fields if f.name not in ("shared",)
    ]

    def has_add_permission(self, request) -> bool:
        return False
