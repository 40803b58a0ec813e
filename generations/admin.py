from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from generations.models import (
    Generation,
    GenerationInput,
    OperatorAction,
    Upload,
    WebhookAttempt,
    WebhookDelivery,
)
from generations.operations import generation_fail_and_refund, generation_poll_now, generation_retry_submit
from generations.pricing import format_credits, format_rate, format_usd
from generations.services import generation_set_share, video_token
from generations.templatetags.when import when
from seedance_site.admin import local_time


class OperatorActionInline(admin.TabularInline):
    model = OperatorAction
    fields = ("created_at", "operator", "action", "note")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


def _preview(upload: Upload) -> str:
    """A thumbnail linking to the file; served by views that let operators who may view uploads see them."""
    if not upload.thumbnail:
        return "♪ sound" if upload.kind == Upload.Kind.AUDIO else "—"
    thumb = reverse("upload_thumbnail", args=[upload.pk])
    link = reverse("upload_file", args=[upload.pk]) if upload.file else thumb
    return format_html('<a href="{}"><img src="{}" alt="" width="96" loading="lazy"></a>', link, thumb)


class GenerationInputInline(admin.TabularInline):
    model = GenerationInput
    fields = ("preview", "role", "position", "upload", "kind_and_size")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name = "input"

    @admin.display(description="Preview")
    def preview(self, obj: GenerationInput) -> str:
        return _preview(obj.upload)

    @admin.display(description="What")
    def kind_and_size(self, obj: GenerationInput) -> str:
        upload = obj.upload
        length = f", {upload.duration_seconds} s" if upload.duration_seconds else ""
        deleted = " (deleted by its owner)" if upload.is_deleted else ""
        return f"{upload.content_type}, {upload.size_bytes:,} bytes{length}{deleted}"


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    """Read-only: uploads are the users' own; the sweeper removes those nobody used."""

    list_display = ("id", "preview", "user", "kind", "content_type", "size_bytes", "duration_seconds",
                    "created", "last_used", "deleted")  # fmt: skip
    list_filter = ("kind", "content_type", "created_at", "deleted_at")
    created = local_time("created_at", "created")
    last_used = local_time("last_used_at", "last used")
    deleted = local_time("deleted_at", "deleted")
    search_fields = ("=id", "user__username", "original_name")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    readonly_fields = ["preview", *(f.name for f in Upload._meta.fields)]

    @admin.display(description="Preview")
    def preview(self, obj: Upload) -> str:
        return _preview(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Upload | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Upload | None = None) -> bool:
        return False


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    # Readable at a laptop's 1366 px: a short id that never wraps, the prompt cut to one line (the
    # whole of it on hover and on the change page), money in dollars, times in the reader's zone.
    list_display = (
        "short_id",
        "prompt_line",
        "user",
        "status_badge",
        "what",
        "cost",
        "upstream_cost",
        "failure_class",
        "created",
    )
    list_display_links = ("short_id", "prompt_line")
    list_filter = (
        "status", "model", "mode", "aspect_ratio", "failure_class", "shared", "deleted_at", "created_at"
    )  # fmt: skip
    search_fields = ("=id", "prompt", "=upstream_job_id", "user__username")
    list_select_related = ("user",)
    list_per_page = 50
    date_hierarchy = "created_at"
    readonly_fields = [
        "preview", "cost", "rate", "upstream_cost", "created", "submitted", "finished", "updated",
        *(f.name for f in Generation._meta.fields if f.name != "shared"),
    ]  # fmt: skip
    fieldsets = (
        (None, {"fields": ("preview", "prompt", "user", "status", "error", "shared")}),
        (
            "What was asked",
            {
                "fields": (
                    "id",
                    "model",
                    "mode",
                    "duration",
                    "aspect_ratio",
                    "first_last_frame",
                    "input_seconds",
                    "webhook_url",
                )
            },
        ),
        ("Money", {"fields": ("cost", "rate", "upstream_cost")}),
        (
            "Upstream",
            {
                "classes": ("collapse",),
                "fields": (
                    "upstream_job_id",
                    "upstream_status",
                    "failure_class",
                    "error_detail",
                    "result_url",
                    "submit_attempts",
                    "poll_count",
                    "fetch_attempts",
                    "next_poll_at",
                    "deadline_at",
                ),
            },
        ),
        (
            "Stored",
            {
                "classes": ("collapse",),
                "fields": (
                    "video",
                    "video_bytes",
                    "poster",
                    "share_slug",
                    "idempotency_key",
                    "deleted_at",
                ),
            },
        ),
        ("Times", {"fields": ("created", "submitted", "finished", "updated")}),
    )
    inlines = [GenerationInputInline, OperatorActionInline]
    actions = ["poll_now", "retry_submit", "fail_and_refund"]

    @admin.display(description="id")
    def short_id(self, obj: Generation) -> str:
        return format_html('<code class="short-id" title="{}">{}</code>', obj.pk, str(obj.pk)[:8])

    @admin.display(description="prompt")
    def prompt_line(self, obj: Generation) -> str:
        return format_html(
            '<span class="prompt-line" title="{}">{}</span>', obj.prompt, Truncator(obj.prompt).chars(90)
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Generation) -> str:
        return format_html('<span class="op-badge status-{}">{}</span>', obj.public_status, obj.status)

    @admin.display(description="model · mode · length")
    def what(self, obj: Generation) -> str:
        short = {"text-to-video": "text", "image-to-video": "image", "omni-reference": "omni"}.get(
            obj.model, obj.model
        )
        return f"{short} · {obj.mode} · {obj.duration} s · {obj.aspect_ratio}"

    @admin.display(description="price", ordering="cost_cents")
    def cost(self, obj: Generation) -> str:
        return format_html(
            '<span title="{}">{}</span>', format_credits(obj.cost_cents), format_usd(obj.cost_cents)
        )

    @admin.display(description="upstream", ordering="upstream_amount")
    def upstream_cost(self, obj: Generation) -> str:
        if obj.upstream_amount is None:
            return "—"
        if obj.upstream_refunded:
            return format_html(
                '<s title="The provider refunded this job">{}</s>', f"${obj.upstream_amount:,.2f}"
            )
        return f"${obj.upstream_amount:,.2f}"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Generation) -> str:
        return when(obj.created_at)

    @admin.display(description="submitted upstream")
    def submitted(self, obj: Generation) -> str:
        return when(obj.submitted_at, "long") or "—"

    @admin.display(description="finished")
    def finished(self, obj: Generation) -> str:
        return when(obj.finished_at, "long") or "—"

    @admin.display(description="last changed")
    def updated(self, obj: Generation) -> str:
        return when(obj.updated_at, "long")

    @admin.display(description="rate")
    def rate(self, obj: Generation) -> str:
        billed = obj.input_seconds + obj.duration
        return f"{format_rate(obj.cents_per_second)} a second × {billed} s"

    @admin.display(description="Video")
    def preview(self, obj: Generation) -> str:
        poster = reverse("generation_poster", args=[obj.pk]) if obj.poster else ""
        if obj.status == Generation.Status.SUCCEEDED and obj.video:
            src = reverse("video_file", args=[video_token(obj.pk)])
            return format_html(
                '<video class="op-video" controls preload="metadata" src="{}"{}></video>'
                '<p><a href="{}">Open the MP4</a>{}</p>',
                src,
                format_html(' poster="{}"', poster) if poster else "",
                src,
                format_html(' · <a href="{}">poster</a>', poster) if poster else "",
            )
        if poster:
            return format_html('<img class="op-poster" src="{}" alt="">', poster)
        return "No video (yet)."

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Generation | None = None) -> bool:
        # Deleting would orphan its ledger entries; users delete their own from the gallery.
        return False

    def save_model(self, request: HttpRequest, obj: Generation, form, change: bool) -> None:
        # Only `shared` is editable. A full save would write back every column as this request
        # read it, undoing any status a worker or a callback claimed meanwhile.
        if change and "shared" in form.changed_data:
            generation_set_share(generation=obj, shared=obj.shared)

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
    list_display = ("created", "operator", "action", "generation", "user", "note")
    created = local_time("created_at", "when")
    list_filter = ("action", "operator")
    search_fields = ("operator", "note", "=generation__id", "user__username")
    list_select_related = ("user", "generation")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OperatorAction | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OperatorAction | None = None) -> bool:
        return False


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("attempted_at", "status_code", "error", "duration_ms")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """What was sent to users' own servers, and what came back: for support, read-only (the owner
    sends a failed one again from their account page)."""

    list_display = ("webhook_id", "user", "event", "state", "attempt_count", "last_status_code", "created")
    created = local_time("created_at", "created")
    list_filter = ("state", "event", "created_at")
    search_fields = ("=webhook_id", "=generation__id", "user__username", "url")
    list_select_related = ("user",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False
