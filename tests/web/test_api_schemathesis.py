"""schemathesis against /api/v1/openapi.json, in-process: no 5xx, every answer on its schema."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.web.app import create_app
from dealmail.web.routes.api import build_api
from support_redeem import make_coupon, make_deal, make_device, make_location

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture
def api_key(settings: Settings, session: Session) -> str:
    make_location(session)
    created = make_device(session)
    make_coupon(session, settings.secret_key_bytes(), make_deal(session))
    return created.key


def _document() -> dict[str, object]:
    """The API's OpenAPI document; producing it touches no database."""
    stub = FastAPI()
    stub.state.settings = Settings()
    stub.state.engine = stub.state.sessionmaker = None
    return build_api(stub).openapi()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, app: FastAPI, api_key: str) -> None:
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {api_key}"}, checks=CHECKS)


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_without_a_key_conforms_too(case: schemathesis.Case, app: FastAPI) -> None:
    case.call_and_validate(app=app, checks=CHECKS)
