"""The web app answers /healthz after checking the database, and DomainErrors become JSON."""

from __future__ import annotations

from fastapi.testclient import TestClient

from dealmail.config import Settings
from dealmail.web.app import create_app


def test_healthz(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_route_is_404_not_500(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/no-such-page").status_code == 404
