"""A local stand-in for the part of Stripe the portal uses, over real HTTP (issue #15, item 4).

One piece for two uses:
- `make run` (without Stripe keys) serves it through `manage.py stripe_standin` and points the
  portal's `stripe` library at it (`STRIPE_API_BASE`): top-ups can be tried offline. A Checkout
  Session's `url` is a hosted test-payment page of its own, where a person pays or declines; a
  payment sends `checkout.session.completed` and `charge.succeeded` to the portal's webhook,
  signed exactly as Stripe signs them, and the page's *Refund* sends `charge.refunded`.
- The tests (`tests/fake_stripe.py`) serve the same class on a free port, move sessions along
  by hand (`mark_paid`, `refund`, `dispute`, ...), make it misbehave (`fail_next`, `delay`) and
  build and sign the events Stripe would send (`event`, `sign`).

The API it speaks: `POST /v1/checkout/sessions` (with `Idempotency-Key`) and
`GET /v1/checkout/sessions/<id>` (with `expand[]=payment_intent.latest_charge`), form-encoded as
the `stripe` library sends them, behind the Bearer key. No real card and no real money, ever.
"""

import base64
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger(__name__)


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


class StripeStandin:
    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str = "",
        webhook_url: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        # Where `checkout.session.completed` and friends go once a person pays on the hosted page,
        # signed with `webhook_secret` as Stripe signs them; empty: nowhere (tests deliver by hand).
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.deliveries: list[dict[str, Any]] = []
        self.host = host
        self.port = port
        self.lock = threading.Lock()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}  # by session id
        self.disputes: dict[str, dict[str, Any]] = {}  # by session id: a charge has one dispute at most
        self.requests: list[dict[str, Any]] = []
        self.failures: list[tuple[int, dict[str, Any]]] = []
        self.delay_seconds = 0.0
        self._idempotent: dict[str, str] = {}
        # Bumped by `reset`: a request still being served from before (a test's deliberately slow
        # one) must not create a session in the next test's clean state.
        self._epoch = 0
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "StripeStandin":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
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
        return f"http://{self.host}:{self._server.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.sessions.clear()
            self.charges.clear()
            self.disputes.clear()
            self.requests.clear()
            self.failures.clear()
            self._idempotent.clear()
            self.deliveries.clear()
            self.delay_seconds = 0.0
            self._epoch += 1

    # --- kept across restarts (`manage.py stripe_standin` saves it under var/) -------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return json.loads(
                json.dumps(
                    {
                        "sessions": self.sessions,
                        "charges": self.charges,
                        "disputes": self.disputes,
                        "idempotent": self._idempotent,
                    }
                )
            )

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.sessions.update(state.get("sessions") or {})
            self.charges.update(state.get("charges") or {})
            self.disputes.update(state.get("disputes") or {})
            self._idempotent.update(state.get("idempotent") or {})

    # --- misbehaviour ------------------------------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, error_type: str = "api_error") -> None:
        body = {"error": {"type": error_type, "message": f"Stripe stand-in failure ({status})."}}
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
                # Stripe's is on pay.stripe.com; the stand-in's own page works offline.
                "receipt_url": f"{self.url}/receipts/{session['id']}",
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

    # --- webhooks to the portal, signed as Stripe signs them --------------------------------------

    def send(self, event: dict[str, Any]) -> int | None:
        """POST `event` to `webhook_url`, signed; the portal's status code (None: not reached).

        Stripe retries an unanswered or failed delivery for days; the stand-in tries three times
        in a background thread, so a portal restarting for a moment still gets its event.
        """
        if not self.webhook_url:
            return None
        with self.lock:
            epoch = self._epoch
        status = self._deliver_once(event)
        if status is None or status >= 300:
            threading.Thread(target=self._deliver_later, args=(event, epoch), daemon=True).start()
        return status

    def _deliver_once(self, event: dict[str, Any]) -> int | None:
        body = json.dumps(event).encode()
        request = urllib.request.Request(  # noqa: S310 - the portal's own webhook URL
            self.webhook_url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": sign(body, self.webhook_secret),
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks) stand-in",
            },
        )
        status: int | None
        try:
            with urllib.request.urlopen(request, timeout=20) as answer:  # noqa: S310
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            logger.warning("stripe stand-in: %s to %s failed: %s", event["type"], self.webhook_url, exc)
            status = None
        with self.lock:
            self.deliveries.append({"event": event["id"], "type": event["type"], "status": status})
        logger.info("stripe stand-in: %s %s -> %s", event["type"], event["id"], status)
        return status

    def _deliver_later(self, event: dict[str, Any], epoch: int) -> None:
        for wait in (2, 10, 60):
            time.sleep(wait)
            if epoch != self._epoch:
                return  # reset meanwhile (the next test): its state is not this event's
            status = self._deliver_once(event)
            if status is not None and status < 300:
                return

    def pay(self, session_id: str) -> dict[str, Any]:
        """What a person paying on the hosted page does: the session is paid, the portal is told."""
        with self.lock:
            already = self.sessions[session_id]["payment_status"] == "paid"
        session = self.mark_paid(session_id)
        if not already:
            self.send(self.event("checkout.session.completed", session))
            self.send(self.event("charge.succeeded", self.charge(session_id)))
        return session

    def refund_all(self, session_id: str) -> dict[str, Any]:
        """Refund what is left of the session's charge and tell the portal (`charge.refunded`)."""
        with self.lock:
            charge = self.charges[session_id]
            left = charge["amount"] - charge["amount_refunded"]
        charge = self.refund(session_id, left)
        if left:
            self.send(self.event("charge.refunded", charge))
        return charge

    # --- the hosted pages: a person pays, declines or refunds ------------------------------------

    def _page(self, handler: BaseHTTPRequestHandler, method: str, path: str, params: dict[str, Any]) -> None:
        if path in ("/", ""):
            return self._html(handler, 200, "Stripe stand-in", self._dashboard())
        receipt = re.fullmatch(r"/receipts/([A-Za-z0-9_]+)", path)
        if receipt:
            with self.lock:
                session = self.sessions.get(receipt.group(1))
                charge = dict(self.charges.get(receipt.group(1)) or {})
            if session is None or not charge:
                return self._html(handler, 404, "Not found", "<p>No such receipt.</p>")
            return self._html(handler, 200, "Receipt", self._receipt(session, charge))
        match = re.fullmatch(r"/c/pay/([A-Za-z0-9_]+)", path)
        with self.lock:
            session = self.sessions.get(match.group(1)) if match else None
        if session is None:
            return self._html(handler, 404, "Not found", "<p>No such checkout session.</p>")
        session_id = session["id"]
        if method == "POST":
            action = params.get("action")
            if action == "pay" and session["status"] == "open":
                self.pay(session_id)
                target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
                return self._redirect(handler, target)
            if action == "decline" and session["status"] == "open":
                # As a declined card on Stripe's page: the session stays open, nothing is sent.
                return self._html(handler, 402, "Payment declined", self._checkout(session, declined=True))
            if action == "refund" and session_id in self.charges:
                self.refund_all(session_id)
                return self._redirect(handler, f"/c/pay/{session_id}")
            return self._redirect(handler, f"/c/pay/{session_id}")
        return self._html(handler, 200, "Test checkout", self._checkout(session))

    def _checkout(self, session: dict[str, Any], *, declined: bool = False) -> str:
        sid = html.escape(session["id"])
        amount = f"${session['amount_total'] / 100:,.2f}"
        back = html.escape(session.get("cancel_url") or "")
        parts = [f"<h1>Pay {amount}</h1>", f"<p class=muted>{session['amount_total']:,} Seedance credits</p>"]
        if session.get("customer_email"):
            parts.append(f"<p class=muted>{html.escape(session['customer_email'])}</p>")
        if session["status"] == "open":
            if declined:
                parts.append("<p class=declined role=alert>Your card was declined. Nothing was charged.</p>")
            parts.append(
                f'<form method=post action="/c/pay/{sid}">'
                f"<button name=action value=pay class=pay>Pay {amount}</button>"
                "<button name=action value=decline class=decline>Decline (a refused card)</button></form>"
            )
            parts.append(f'<p><a href="{back}">Cancel and go back</a></p>')
        elif session["status"] == "complete":
            charge = self.charges.get(session["id"])
            refunded = charge["amount_refunded"] if charge else 0
            success = html.escape(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
            parts.append(f'<p class=paid>Paid. <a href="{success}">Back to Seedance Studio</a></p>')
            if charge and refunded < charge["amount"]:
                parts.append(
                    f'<form method=post action="/c/pay/{sid}"><button name=action value=refund class=decline>'
                    f"Refund {amount}</button></form>"
                )
            elif charge:
                parts.append("<p class=muted>Refunded in full.</p>")
        else:
            parts.append(f"<p>This checkout has {html.escape(session['status'])}.</p>")
        return "\n".join(parts)

    @staticmethod
    def _receipt(session: dict[str, Any], charge: dict[str, Any]) -> str:
        refunded = charge["amount_refunded"]
        paid = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(session["created"]))
        lines = [
            f"<h1>Receipt: ${charge['amount'] / 100:,.2f}</h1>",
            f"<p>{session['amount_total']:,} Seedance credits</p>",
            f"<p class=muted>Charge {html.escape(charge['id'])}, paid {paid}</p>",
        ]
        if refunded:
            lines.append(f"<p>Refunded: ${refunded / 100:,.2f}</p>")
        lines.append("<p class=muted>A test receipt: no real money was taken.</p>")
        return "\n".join(lines)

    def _dashboard(self) -> str:
        with self.lock:
            sessions = sorted(self.sessions.values(), key=lambda s: s["created"], reverse=True)
            deliveries = list(self.deliveries)[-20:]
        rows = "".join(
            f'<tr><td><a href="/c/pay/{html.escape(s["id"])}">{html.escape(s["id"][:20])}…</a></td>'
            f"<td>${s['amount_total'] / 100:,.2f}</td><td>{html.escape(s['status'])}</td>"
            f"<td>{html.escape(s['payment_status'])}</td></tr>"
            for s in sessions
        )
        sent = "".join(
            f"<tr><td>{html.escape(d['type'])}</td><td>{d['status'] or 'not reached'}</td></tr>"
            for d in reversed(deliveries)
        )
        return (
            "<h1>Stripe stand-in</h1><p class=muted>Checkout sessions (newest first); open one to pay, "
            "decline or refund it.</p>"
            f"<table><tr><th>session</th><th>amount</th><th>status</th><th>payment</th></tr>{rows}</table>"
            f"<h2>Webhooks sent to {html.escape(self.webhook_url or 'nowhere')}</h2>"
            f"<table><tr><th>event</th><th>answer</th></tr>{sent}</table>"
        )

    def _html(self, handler: BaseHTTPRequestHandler, status: int, title: str, body: str) -> None:
        raw = PAGE.format(title=html.escape(title), body=body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "text/html; charset=utf-8")
            handler.send_header("Content-Length", str(len(raw)))
            handler.send_header("Cache-Control", "no-store")
            handler.end_headers()
            handler.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _redirect(self, handler: BaseHTTPRequestHandler, location: str) -> None:
        try:
            handler.send_response(303)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass

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
        if not split.path.startswith("/v1/"):
            # A person's pages (checkout.stripe.com's part): no API key, and not counted as API calls.
            return self._page(handler, method, split.path, params)
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
            epoch = self._epoch
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if not self._authorized(handler.headers.get("Authorization") or ""):
            return self._reply(
                handler,
                401,
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}},
            )
        if failure is not None:
            return self._reply(handler, *failure)
        if method == "POST" and split.path == "/v1/checkout/sessions":
            return self._create(handler, params, epoch)
        match = re.fullmatch(r"/v1/checkout/sessions/([A-Za-z0-9_]+)", split.path)
        if method == "GET" and match:
            return self._retrieve(handler, match.group(1), params)
        return self._reply(
            handler, 404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL."}}
        )

    def _authorized(self, header: str) -> bool:
        """Bearer, as the library sends it, or Basic with the key as the user, as `curl -u sk_...:`."""
        if header == f"Bearer {self.api_key}":
            return True
        scheme, _, value = header.partition(" ")
        if scheme != "Basic":
            return False
        try:
            user = base64.b64decode(value, validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.api_key)

    def _create(self, handler: BaseHTTPRequestHandler, params: dict[str, Any], epoch: int) -> None:
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
            # The hosted payment page: this server's own (`pages`), where Stripe's is checkout.stripe.com.
            "url": f"{self.url}/c/pay/{session_id}",
            "_payment_intent_metadata": (params.get("payment_intent_data") or {}).get("metadata") or {},
        }
        with self.lock:
            # Again under the lock: a retry that overlapped its first try (one that timed out at the
            # client but was still being served) gets the same session, as from Stripe.
            if key and key in self._idempotent:
                return self._reply(handler, 200, self.public(self.sessions[self._idempotent[key]]))
            if epoch != self._epoch:
                return self._reply(
                    handler, 503, {"error": {"type": "api_error", "message": "Reset meanwhile."}}
                )
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


PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width, initial-scale=1">
<title>{title} · Stripe stand-in</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f7fb; color: #1a1f36; }}
.band {{ background: #ffd43b; color: #3b2f00; padding: .6rem 1rem; font-weight: 600; text-align: center; }}
main {{ max-width: 26rem; margin: 2rem auto; background: #fff; padding: 1.5rem; border-radius: 12px;
  box-shadow: 0 2px 12px rgba(0,0,0,.08); }}
h1 {{ margin: 0 0 .25rem; font-size: 1.6rem; }}
.muted {{ color: #697386; }}
form {{ display: flex; flex-direction: column; gap: .6rem; margin: 1rem 0; }}
button {{ font: inherit; padding: .75rem 1rem; border-radius: 8px; border: 0; cursor: pointer; }}
.pay {{ background: #635bff; color: #fff; font-weight: 600; }}
.decline {{ background: #fff; color: #c0123c; border: 1px solid #e3e8ee; }}
.declined {{ color: #c0123c; font-weight: 600; }}
.paid {{ color: #0b7a3b; font-weight: 600; }}
table {{ border-collapse: collapse; width: 100%; font-size: .9rem; }}
td, th {{ text-align: left; padding: .3rem .4rem; border-bottom: 1px solid #e3e8ee; }}
</style></head>
<body><div class=band role=note>Test mode — no real money. This is the local Stripe stand-in, not Stripe.
</div>
<main>{body}</main></body></html>
"""
