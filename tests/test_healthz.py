import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_when_database_and_redis_answer():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_is_503_naming_redis_when_it_is_down():
    dead = {"default": {"URL": "redis://127.0.0.1:1/0", "DEFAULT_TIMEOUT": 5}}
    with override_settings(RQ_QUEUES=dead):
        response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"] == "down"
    assert response.json()["database"] == "ok"
