import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class GenerationQuerySet(models.QuerySet):
    def visible(self) -> "GenerationQuerySet":
        """Not deleted by its owner. Deleted rows stay, with their files gone, because the
        ledger's charge and refund entries name them (audit_credits checks each one)."""
        return self.filter(deleted_at__isnull=True)


class Generation(models.Model):
    """One video request (text-to-video, image-to-video or omni-reference), from held credits to a
    stored video (or a refund)."""

    class Model(models.TextChoices):
        # CONTRACT §4b: the model follows from the inputs.
        TEXT_TO_VIDEO = "text-to-video", "Text to video"
        IMAGE_TO_VIDEO = "image-to-video", "Image to video"
        OMNI_REFERENCE = "omni-reference", "Reference video"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        # Internal: a worker claimed it and is calling create upstream (shown as queued).
        SUBMITTING = "submitting", "Submitting"
        RUNNING = "running", "Running"
        # Internal: a worker claimed the download of the result (shown as running).
        FETCHING = "fetching", "Fetching"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.SUBMITTING, Status.RUNNING, Status.FETCHING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED)
    PUBLIC_STATUS = {
        Status.QUEUED: "queued",
        Status.SUBMITTING: "queued",
        Status.RUNNING: "running",
        Status.FETCHING: "running",
        Status.SUCCEEDED: "succeeded",
        Status.FAILED: "failed",
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="generations")
    prompt = models.TextField(max_length=2000)
    mode = models.CharField(max_length=8)
    duration = models.PositiveSmallIntegerField()
    aspect_ratio = models.CharField(max_length=8)
    model = models.CharField(max_length=20, choices=Model.choices, default=Model.TEXT_TO_VIDEO)
    # Image-to-video only: the first image is the first frame, the second the last.
    first_last_frame = models.BooleanField(default=False)
    # The price as quoted when the credits were held; later price changes never touch it. Omni-
    # reference bills the input video's whole seconds too, at a decimal rate (CONTRACT §4b).
    cost_cents = models.PositiveIntegerField()
    cents_per_second = models.DecimalField(max_digits=9, decimal_places=3)
    input_seconds = models.PositiveSmallIntegerField(
        default=0, help_text="Whole seconds of input video billed beside the output's."
    )

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    upstream_job_id = models.CharField(max_length=128, blank=True, db_index=True)
    upstream_status = models.SmallIntegerField(null=True, blank=True)
    upstream_amount = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    # The provider reported the job refunded (a failed job): its amount is not our spend.
    upstream_refunded = models.BooleanField(default=False)
    # Text, not a 2,000-character column: a provider's signed storage link can be longer, and a
    # poll that cannot store it would fail until the deadline, losing a finished video.
    result_url = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True, help_text="Shown to the user.")
    error_detail = models.TextField(blank=True, help_text="For operators only.")
    failure_class = models.CharField(max_length=40, blank=True)

    video = models.FileField(upload_to="videos/%Y/%m/", blank=True)
    video_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    poster = models.FileField(upload_to="posters/%Y/%m/", blank=True)

    submit_attempts = models.PositiveSmallIntegerField(default=0)
    poll_count = models.PositiveIntegerField(default=0)
    fetch_attempts = models.PositiveSmallIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField()

    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # Where to POST the generation when it ends (CONTRACT §4c); "" for none.
    webhook_url = models.CharField(max_length=2000, blank=True)
    # Who may watch it (see `visibility`): `shared` — anyone with its link (/v/<share_slug>/);
    # `listed` — also on Explore. The slug is dropped when it goes private again, so every link
    # made from it (the page, its signed video URL, og:video) stops at once.
    shared = models.BooleanField(default=False)
    listed = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted by its owner.")
    share_slug = models.SlugField(max_length=16, unique=True, null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GenerationQuerySet.as_manager()

    class Visibility:
        PRIVATE = "private"
        UNLISTED = "unlisted"
        LISTED = "listed"
        CHOICES = (PRIVATE, UNLISTED, LISTED)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="gen_user_newest"),
            models.Index(fields=["status", "next_poll_at"], name="gen_status_next_poll"),
            models.Index(
                fields=["-finished_at"],
                condition=Q(shared=True, listed=True, status="succeeded"),
                name="gen_explore_listed",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="gen_unique_idempotency_key_per_user",
            ),
            models.CheckConstraint(condition=Q(duration__gte=4, duration__lte=15), name="gen_duration_4_15"),
            # Listed on Explore means shared first.
            models.CheckConstraint(condition=Q(listed=False) | Q(shared=True), name="gen_listed_is_shared"),
            models.CheckConstraint(condition=Q(mode__in=["std", "fast"]), name="gen_mode_known"),
            models.CheckConstraint(
                condition=Q(model__in=["text-to-video", "image-to-video", "omni-reference"]),
                name="gen_model_known",
            ),
            # One upstream job makes one video for one generation: a job id handed over by a
            # callback can never be attached to a second one (generations.jobs.adopt_job).
            models.UniqueConstraint(
                fields=["upstream_job_id"], condition=~Q(upstream_job_id=""), name="gen_unique_upstream_job"
            ),
        ]
        # Operator pages beyond the model admin (seedance_site.admin); being staff is not enough.
        permissions = [
            ("view_overview", "Can see the operations overview (revenue, upstream spend, margin)"),
            ("manage_queues", "Can see and act on the job queues (empty, delete, requeue, stop)"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def public_status(self) -> str:
        return self.PUBLIC_STATUS[self.status]

    @property
    def visibility(self) -> str:
        if not self.shared:
            return self.Visibility.PRIVATE
        return self.Visibility.LISTED if self.listed else self.Visibility.UNLISTED

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def ledger_reference(self) -> str:
        return f"generation:{self.id}"

    def inputs_of(self, role: str) -> list["GenerationInput"]:
        """This generation's inputs in one role, in order (prefetch `inputs__upload` for lists)."""
        return sorted((i for i in self.inputs.all() if i.role == role), key=lambda i: i.position)


class UploadQuerySet(models.QuerySet):
    def live(self) -> "UploadQuerySet":
        """Not deleted by its owner or by the sweeper."""
        return self.filter(deleted_at__isnull=True)


class Upload(models.Model):
    """A file a user gave us as an input for image-to-video or omni-reference (CONTRACT §4b).

    Its kind and numbers are read from the content (generations.probe), never from the name.
    Deleting it (its owner, or the sweeper after UPLOAD_UNUSED_DAYS unused) removes an unused one
    outright; one a generation used stays as a row, marked deleted, because the generation's record
    of its inputs names it, and its file stays as long as any generation that used it is not
    deleted (the video page and the admin show it). The sweeper removes the file after that.
    """

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"
        AUDIO = "audio", "Audio"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploads")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    content_type = models.CharField(max_length=40)
    size_bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration_seconds = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    codec = models.CharField(max_length=40, blank=True)
    # The name the user's file had, for their eyes only: the stored name is ours.
    original_name = models.CharField(max_length=200, blank=True)
    file = models.FileField(max_length=200, blank=True)
    thumbnail = models.FileField(max_length=200, blank=True)

    created_at = models.DateTimeField(db_index=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = UploadQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="upload_user_newest")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["image", "video", "audio"]), name="upload_kind_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class GenerationInput(models.Model):
    """Which uploads a generation used, in which role and order. Kept for good: the video page,
    the gallery and the audit show what a video was made from, after the upload is deleted too."""

    class Role(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"
        AUDIO = "audio", "Audio"

    generation = models.ForeignKey(Generation, on_delete=models.PROTECT, related_name="inputs")
    upload = models.ForeignKey(Upload, on_delete=models.PROTECT, related_name="generation_inputs")
    role = models.CharField(max_length=8, choices=Role.choices)
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["generation", "role", "position"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "role", "position"], name="geninput_unique_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.position} of {self.generation_id}"


class OperatorAction(models.Model):
    """What an operator did by hand, and to what: the audit trail of the admin's actions."""

    operator = models.CharField(max_length=150)
    action = models.CharField(max_length=40)
    generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="operator_actions"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.operator}: {self.action}"


class WebhookDelivery(models.Model):
    """One event for a user's own server (CONTRACT §4c): the generation ended, POSTed to its
    `webhook_url`, at least once. One row per generation and event, made in the transaction that
    ended the generation; `webhook_id` stays the same on every try, so the receiver can tell a
    retry from a new event. Moved only by generations.user_webhooks, by claims."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for its next try"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Gave up"

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="webhook_deliveries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=40)  # "generation.succeeded" or "generation.failed"
    webhook_id = models.CharField(max_length=64, unique=True)
    url = models.CharField(max_length=2000)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    # Tries in the current round of retries: "Send again" starts a new round.
    round_attempts = models.PositiveIntegerField(default=0)
    # When the next try is due; while a try is under way, the end of its lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="webhook_user_newest"),
            models.Index(fields=["state", "next_attempt_at"], name="webhook_state_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["generation", "event"], name="webhook_one_per_generation_event")
        ]

    def __str__(self) -> str:
        return f"{self.event} for {self.generation_id} ({self.state})"


class WebhookAttempt(models.Model):
    """One try at a delivery: when, what came back (a status code, or why none did), how long."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.attempted_at}: {self.status_code or self.error}"
