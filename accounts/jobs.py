"""RQ entry points for accounts: mail goes out from a worker, never from a request."""

from django.conf import settings
from django.core.mail import send_mail


def send_email(subject: str, body: str, to_email: str) -> None:
    # An SMTP error raises, and RQ retries the job (accounts.services.email_send_later).
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to_email])


def send_notice(notice_id: int) -> None:
    from accounts.notices import notice_send

    notice_send(notice_id=notice_id)
