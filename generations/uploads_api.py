"""The JSON API for uploads (CONTRACT §4, §4b): a user's own images, videos and sounds, the inputs
of image-to-video and omni-reference. The file is read by generations.uploads with its own size
caps, before anything is stored; the kind comes from the content."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Router, Status
from pydantic import PlainSerializer, WithJsonSchema

from generations import models, probe
from generations.uploads import (
    NoFileSent,
    UploadingTooFast,
    UploadRefused,
    upload_for_user,
    upload_from_request,
)
from seedance_site.api import Answer, ApiError, error_code, errors

router = Router(tags=["Uploads"])

INVALID_UPLOAD = error_code(
    "invalid_upload",
    "The file is not taken (not a JPEG, PNG or WebP image, MP4 or MOV video, or MP3, WAV or M4A sound; "
    "too large, too small, too long, or unreadable); the message says which, and nothing was kept.",
)
IsoDateTime = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Upload(Answer):
    """An input for image-to-video or omni-reference. Its kind is read from the content."""

    id: UUID
    kind: Literal["image", "video", "audio"]
    content_type: Literal[
        "image/jpeg", "image/png", "image/webp", "video/mp4", "video/quicktime", "audio/mpeg", "audio/wav",
        "audio/mp4",
    ]  # fmt: skip
    bytes: int = Field(ge=1, description="The size of the stored file (its metadata removed).")
    width: int | None = Field(ge=1, description="Pixels, as displayed; null for audio.")
    height: int | None = Field(ge=1, description="Pixels, as displayed; null for audio.")
    duration_seconds: float | None = Field(ge=0, description="Seconds; null for images.")
    created_at: IsoDateTime

    @staticmethod
    def resolve_bytes(upload: models.Upload) -> int:
        return upload.size_bytes

    @staticmethod
    def resolve_duration_seconds(upload: models.Upload) -> float | None:
        return float(upload.duration_seconds) if upload.duration_seconds is not None else None


MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": (
                                f"Images: JPEG, PNG or WebP, {probe.IMAGE_MIN_SIDE}.."
                                f"{probe.IMAGE_MAX_SIDE} px a side, at most 10 MiB. Videos: MP4 or MOV, "
                                "2..15 s, at most 50 MiB. Audio: "
                                "MP3, WAV or M4A, at most 15 s and 15 MiB."
                            ),
                        }
                    },
                }
            }
        },
    },
    "responses": {201: {"description": "Stored: use its id in a generation's inputs."}},
}


@router.post(
    "/uploads",
    response={201: Upload, **errors((400, INVALID_UPLOAD), body=True)},
    openapi_extra=MULTIPART_BODY,
    operation_id="createUpload",
    summary="Upload an image, a video or a sound to animate or reference",
)
def create_upload(request: HttpRequest) -> Status:
    """One file in the form field `file`. 400 `invalid_upload` when it is not taken or none (or two)
    was sent; nothing is kept. Image metadata (EXIF, GPS) and a video's or
    sound's metadata are removed before the file is stored."""
    try:
        upload = upload_from_request(request=request, user=request.auth)
    except UploadRefused as exc:
        raise ApiError(400, INVALID_UPLOAD, exc.message) from None
    except NoFileSent as exc:
        # Every way an upload can be refused is one code (CONTRACT §4), a missing file included.
        raise ApiError(400, INVALID_UPLOAD, exc.message, {"file": [exc.message]}) from None
    except UploadingTooFast as exc:
        raise ApiError(429, "rate_limited", exc.message) from None
    return Status(201, upload)


@router.get(
    "/uploads/{id}",
    response={200: Upload, **errors((404, "not_found"))},
    operation_id="getUpload",
    summary="One of your uploads",
)
def get_upload(
    request: HttpRequest, id: Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]
):
    """404 for an unknown id and for another user's: the two look the same."""
    return upload_for_user(user=request.auth, upload_id=id)
