from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django_rq import get_connection


def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure means "down"; the reason goes to the log
        checks["database"] = "down"
    try:
        get_connection("default").ping()
        checks["redis"] = "ok"
    except Exception:  # noqa: BLE001
        checks["redis"] = "down"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "down", **checks}, status=200 if healthy else 503)


def rate_limited(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        from seedance_site.api import api_error

        return api_error("rate_limited", "Too many requests. Wait a minute and try again.", status=429)
    return render(request, "429.html", status=429)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        from seedance_site.api import api_error

        return api_error("not_found", "There is no such API endpoint.", status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        from seedance_site.api import api_error

        return api_error("server_error", "Something went wrong on our side. Try again later.", status=500)
    # A bare template: the error may have come from the database the base layout reads.
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)


def client_ip(request: HttpRequest) -> str:
    """The address rate limits key on. Behind our own proxy (DJANGO_BEHIND_PROXY) REMOTE_ADDR is
    the proxy's, shared by every user; the client's is the last X-Forwarded-For entry, the one our
    proxy appended (entries before it are whatever the client chose to send)."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR") or "0.0.0.0"  # noqa: S104 - a key, never bound
