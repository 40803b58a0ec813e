"""`manage.py stripe_standin --port PORT`: the local Stripe stand-in, in the foreground.

`make run` starts it when no Stripe keys are set and points the portal at it (see
`seedance_site/devstack.py`); it can be run by hand the same way beside any portal.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.billing.stripe_standin import StripeStandin


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Serve a local stand-in for Stripe's Checkout API and its hosted payment page on 127.0.0.1:PORT; "
        "payments there send signed webhooks to the portal. Test mode only: no real money."
    )
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8002, help="port on 127.0.0.1 (0: any free port)")
        parser.add_argument(
            "--api-key", default=None, help="secret key to accept (default: $STRIPE_SECRET_KEY)"
        )
        parser.add_argument(
            "--webhook-secret", default=None, help="signing secret (default: $STRIPE_WEBHOOK_SECRET)"
        )
        parser.add_argument(
            "--webhook-url", default=None, help="where events go (default: <SITE_URL>/webhooks/stripe/)"
        )
        parser.add_argument(
            "--state-file",
            default=None,
            help="where sessions are kept across restarts (default: var/stripe-standin.json)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        api_key = options["api_key"] or settings.STRIPE_SECRET_KEY
        secret = options["webhook_secret"] or settings.STRIPE_WEBHOOK_SECRET
        if not api_key or not secret:
            raise CommandError(
                "Give the stand-in a key and a signing secret (--api-key, --webhook-secret), or set "
                "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET; the portal must use the same two."
            )
        if not api_key.startswith("sk_test_"):
            # A live key names real money: the stand-in must never be mistaken for Stripe.
            raise CommandError("The stand-in takes test keys only (sk_test_...).")
        webhook_url = options["webhook_url"] or f"{settings.SITE_URL}/webhooks/stripe/"
        standin = StripeStandin(
            api_key=api_key, webhook_secret=secret, webhook_url=webhook_url, port=options["port"]
        )
        state_file = Path(options["state_file"] or Path(settings.VAR_DIR) / "stripe-standin.json")
        if state_file.exists():
            # A checkout left open (or a paid one to refund) outlives a restart of `make run`.
            standin.restore(json.loads(state_file.read_text()))
        try:
            standin.start()
        except OSError as error:
            raise CommandError(f"cannot listen on 127.0.0.1:{options['port']}: {error}") from None
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, _interrupt)
            signal.signal(signal.SIGTERM, _interrupt)
        self.stdout.write(
            f"Stripe stand-in on {standin.url} (test mode, no real money); webhooks to {webhook_url}"
        )
        self.stdout.flush()
        saved: dict[str, Any] = {}
        try:
            while True:
                time.sleep(0.5)
                saved = _save(standin, state_file, saved)
        except KeyboardInterrupt:
            pass
        finally:
            standin.stop()
            _save(standin, state_file, saved)


def _save(standin: StripeStandin, path: Path, saved: dict[str, Any]) -> dict[str, Any]:
    state = standin.snapshot()
    if state != saved:
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(state))
        partial.replace(path)
    return state
