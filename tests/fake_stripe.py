"""A local fake of the parts of the Stripe API the portal uses, over real HTTP on loopback.

The `stripe` library is pointed at it through `STRIPE_API_BASE`, so the requests it sends
(form-encoded bodies, `expand[]` in the query, `Stripe-Version`, `Idempotency-Key`) are the
ones it would send to Stripe. Tests move sessions along (`mark_paid`, `mark_expired`, ...),
make it misbehave (`fail_next`, `delay`), and build the events Stripe would then send
(`event`), which they sign with `sign` exactly as Stripe does: refunds (`refund`) and disputes
(`dispute`, `close_dispute`) included.
"""

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import Client

API_KEY = "sk_test_fake_key"


def decode_form(body: str) -> dict[str, Any]:
    """Undo Stripe's form encoding: `line_items[0][price_data][currency]=usd` and friends."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(node: Any) -> Any:
        if isinstance(node, dict):
            if node and all(k.isdigit() for k in node):
                return [listify(node[k]) for k in sorted(node, key=int)]
            return {k: listify(v) for k, v in node.items()}
        return node

    return listify(root)


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header: `t=<ts>,v1=<HMAC-SHA256 of "<ts>.<body>" with the secret>`."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def _id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


class FakeStripe:
    def __init__(self, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}  # by session id
        self.disputes: dict[str, dict[str, Any]] = {}  # by session id: a charge has one dispute at most
        self.requests: list[dict[str, Any]] = []
        self.failures: list[tuple[int, dict[str, Any]]] = []
        self.delay_seconds = 0.0
        self._idempotent: dict[str, str] = {}
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "FakeStripe":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.sessions.clear()
            self.charges.clear()
            self.disputes.clear()
            self.requests.clear()
            self.failures.clear()
            self._idempotent.clear()
            self.delay_seconds = 0.0

    # --- misbehaviour ------------------------------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, error_type: str = "api_error") -> None:
        body = {"error": {"type": error_type, "message": f"Fake Stripe failure ({status})."}}
        with self.lock:
            self.failures.extend([(status, body)] * times)

    def delay(self, seconds: float) -> None:
        self.delay_seconds = seconds

    # --- moving sessions along, as a customer and Stripe would -------------------------------

    def _charge_for(self, session: dict[str, Any]) -> dict[str, Any]:
        charge = self.charges.get(session["id"])
        if charge is None:
            charge = {
                "id": _id("ch"),
                "object": "charge",
                "amount": session["amount_total"],
                "amount_captured": session["amount_total"],
                "amount_refunded": 0,
                "currency": session["currency"],
                "paid": True,
                "refunded": False,
                "status": "succeeded",
                "payment_intent": session["payment_intent"],
                "metadata": dict(session.get("_payment_intent_metadata") or {}),
                "receipt_url": f"https://pay.stripe.com/receipts/payment/{secrets.token_urlsafe(24)}",
                "livemode": False,
            }
            self.charges[session["id"]] = charge
        return charge

    def mark_paid(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            session = self.sessions[session_id]
            session.update(status="complete", payment_status="paid")
            session["payment_intent"] = session["payment_intent"] or _id("pi")
            self._charge_for(session)
            return self.public(session)

    def mark_completed_unpaid(self, session_id: str) -> dict[str, Any]:
        """A delayed payment method (a bank debit): the session completes, the money comes later."""
        with self.lock:
            session = self.sessions[session_id]
            session.update(status="complete", payment_status="unpaid")
            session["payment_intent"] = session["payment_intent"] or _id("pi")
            return self.public(session)

    def mark_expired(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            session = self.sessions[session_id]
            session.update(status="expired", payment_status="unpaid", url=None)
            return self.public(session)

    def refund(self, session_id: str, amount_cents: int) -> dict[str, Any]:
        """Refund `amount_cents` more of the session's charge; returns the charge as Stripe reports it."""
        with self.lock:
            charge = self.charges[session_id]
            charge["amount_refunded"] = min(charge["amount"], charge["amount_refunded"] + amount_cents)
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            return dict(charge)

    def dispute(self, session_id: str, amount_cents: int | None = None) -> dict[str, Any]:
        """The customer disputes the session's charge with their bank (a chargeback): Stripe takes
        `amount_cents` (default: all that was not refunded) back. Returns the dispute object."""
        with self.lock:
            charge = self.charges[session_id]
            amount = charge["amount"] - charge["amount_refunded"] if amount_cents is None else amount_cents
            dispute = {
                "id": _id("dp"),
                "object": "dispute",
                "amount": amount,
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "reason": "fraudulent",
                "status": "needs_response",
                "is_charge_refundable": False,
                "metadata": {},
                "created": int(time.time()),
                "livemode": False,
            }
            self.disputes[session_id] = dispute
            charge["disputed"] = True
            return dict(dispute)

    def close_dispute(self, session_id: str, status: str) -> dict[str, Any]:
        """The bank decides: `won` gives the money back to the merchant, `lost` keeps it with the customer."""
        with self.lock:
            dispute = self.disputes[session_id]
            dispute["status"] = status
            return dict(dispute)

    def charge(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.charges[session_id])

    def session(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            return self.public(self.sessions[session_id])

    @staticmethod
    def public(session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if not k.startswith("_")}

    @staticmethod
    def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        """The event Stripe would POST to the webhook endpoint."""
        return {
            "id": event_id or _id("evt"),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }

    # --- HTTP --------------------------------------------------------------------------------

    def _reply(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(raw)))
            handler.send_header("Request-Id", _id("req"))
            handler.end_headers()
            handler.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out (on purpose, in the timeout tests) and hung up

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        params = decode_form(body if method == "POST" else split.query)
        with self.lock:
            self.requests.append(
                {
                    "method": method,
                    "path": split.path,
                    "params": params,
                    "stripe_version": handler.headers.get("Stripe-Version"),
                    "idempotency_key": handler.headers.get("Idempotency-Key"),
                    "authorization": handler.headers.get("Authorization"),
                }
            )
            failure = self.failures.pop(0) if self.failures else None
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._reply(
                handler,
                401,
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}},
            )
        if failure is not None:
            return self._reply(handler, *failure)
        if method == "POST" and split.path == "/v1/checkout/sessions":
            return self._create(handler, params)
        match = re.fullmatch(r"/v1/checkout/sessions/([A-Za-z0-9_]+)", split.path)
        if method == "GET" and match:
            return self._retrieve(handler, match.group(1), params)
        return self._reply(
            handler, 404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL."}}
        )

    def _create(self, handler: BaseHTTPRequestHandler, params: dict[str, Any]) -> None:
        key = handler.headers.get("Idempotency-Key")
        with self.lock:
            if key and key in self._idempotent:
                return self._reply(handler, 200, self.public(self.sessions[self._idempotent[key]]))
        try:
            (item,) = params["line_items"]
            amount = int(item["price_data"]["unit_amount"]) * int(item["quantity"])
            currency = item["price_data"]["currency"]
            assert params["mode"] == "payment"
            assert "{CHECKOUT_SESSION_ID}" in params["success_url"]
        except (KeyError, ValueError, TypeError, AssertionError) as exc:
            return self._reply(
                handler,
                400,
                {"error": {"type": "invalid_request_error", "message": f"Bad session parameters: {exc!r}"}},
            )
        session_id = "cs_test_" + secrets.token_urlsafe(30).replace("-", "a").replace("_", "b")
        now = int(time.time())
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": currency,
            "customer_email": params.get("customer_email"),
            "expires_at": now + 24 * 3600,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": "payment",
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params["success_url"],
            "url": f"https://checkout.stripe.com/c/pay/{session_id}#fidkdWxOYHwnPyd1blpxYHZxWjA0",
            "_payment_intent_metadata": (params.get("payment_intent_data") or {}).get("metadata") or {},
        }
        with self.lock:
            # Again under the lock: a retry that overlapped its first try (one that timed out at the
            # client but was still being served) gets the same session, as from Stripe.
            if key and key in self._idempotent:
                return self._reply(handler, 200, self.public(self.sessions[self._idempotent[key]]))
            self.sessions[session_id] = session
            if key:
                self._idempotent[key] = session_id
            return self._reply(handler, 200, self.public(session))

    def _retrieve(self, handler: BaseHTTPRequestHandler, session_id: str, params: dict[str, Any]) -> None:
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None:
                return self._reply(
                    handler,
                    404,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "resource_missing",
                            "message": f"No such checkout.session: '{session_id}'",
                        }
                    },
                )
            body = self.public(session)
            if "payment_intent.latest_charge" in (params.get("expand") or []) and body["payment_intent"]:
                charge = self.charges.get(session_id)
                body["payment_intent"] = {
                    "id": body["payment_intent"],
                    "object": "payment_intent",
                    "amount": body["amount_total"],
                    "status": "succeeded" if charge else "processing",
                    "latest_charge": dict(charge) if charge else None,
                    "metadata": dict(session["_payment_intent_metadata"]),
                }
            return self._reply(handler, 200, body)


# --- pytest glue: the server, settings that point the portal at it, signed deliveries ---------

WEBHOOK_SECRET = "whsec_test_fake_secret"


# Imported by test modules under these names; the fixtures are called `stripe_server` and
# `fake_stripe`, so that a test's parameter does not shadow the import.
@pytest.fixture(scope="session", name="stripe_server")
def stripe_server_fixture() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture(name="fake_stripe")
def fake_stripe_fixture(stripe_server: FakeStripe, settings) -> FakeStripe:
    stripe_server.reset()
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.url
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_CONNECT_TIMEOUT = 2.0
    settings.STRIPE_READ_TIMEOUT = 5.0
    settings.SITE_URL = "http://testserver"
    return stripe_server


def deliver(
    event: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
    client: Client | None = None,
):
    """POST `event` to the webhook as Stripe would: the raw JSON body, signed."""
    body = json.dumps(event).encode()
    header = signature if signature is not None else sign(body, secret, timestamp)
    headers = {"Stripe-Signature": header} if header else {}
    return (client or Client()).post(
        "/webhooks/stripe/", data=body, content_type="application/json", headers=headers
    )
