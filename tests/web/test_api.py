"""The device API over HTTP (in-process): auth, validate, redeem, retries, void, sync, errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.coupons import guard, redeem
from dealmail.locations import service as locations
from dealmail.web.app import create_app
from support_redeem import (
    MadeCoupon,
    make_coupon,
    make_customer,
    make_deal,
    make_device,
    make_location,
)


@dataclass
class Api:
    client: TestClient
    key: str
    coupon: MadeCoupon
    session: Session
    secret: bytes

    def headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def redeem(self, code: str, key: str | None = None, **extra: object):  # type: ignore[no-untyped-def]
        return self.client.post(
            "/api/v1/redemptions", json={"code": code, **extra}, headers=self.headers(key)
        )


@pytest.fixture
def api(settings: Settings, session: Session) -> Iterator[Api]:
    make_location(session)
    key = make_device(session).key
    secret = settings.secret_key_bytes()
    coupon = make_coupon(session, secret, make_deal(session), make_customer(session))
    with TestClient(create_app(settings)) as client:
        yield Api(client, key, coupon, session, secret)


def test_a_key_is_required(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer dmk_wrong"}, {"Authorization": "Basic eDp5"}):
        response = api.client.get(f"/api/v1/coupons/{api.coupon.token}", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_revoked_key_is_refused(api: Api) -> None:
    assert api.client.get("/api/v1/me", headers=api.headers()).status_code == 200
    locations.revoke_device(api.session, "Till 1")
    assert api.client.get("/api/v1/me", headers=api.headers()).status_code == 401


def test_me_names_device_and_location(api: Api) -> None:
    body = api.client.get("/api/v1/me", headers=api.headers()).json()
    assert body["device"]["name"] == "Till 1"
    assert body["location"]["name"] == "Main St"
    assert body["timezone"] == "UTC"


def test_validate_redeem_then_already_redeemed(api: Api) -> None:
    checked = api.client.get(f"/api/v1/coupons/{api.coupon.short_code}", headers=api.headers())
    assert checked.status_code == 200
    assert checked.json()["status"] == "valid"
    assert checked.json()["coupon"]["customer_first_name"] == "Ada"
    done = api.redeem(api.coupon.token, "first")
    assert done.status_code == 201
    assert done.json()["redemption"]["device"]["name"] == "Till 1"
    again = api.redeem(api.coupon.token, "second")
    assert again.status_code == 409
    assert again.json()["code"] == "already_redeemed"
    assert again.json()["last_redemption"]["location"]["name"] == "Main St"
    checked = api.client.get(f"/api/v1/coupons/{api.coupon.token}", headers=api.headers())
    assert checked.json()["status"] == "already_redeemed"
    assert checked.json()["redeemable"] is False


def test_unknown_code_is_404(api: Api) -> None:
    response = api.client.get("/api/v1/coupons/ZZZZ-ZZZZ-ZZ", headers=api.headers())
    assert (response.status_code, response.json()["code"]) == (404, "unknown")
    assert api.redeem("no such thing").status_code == 404


def test_same_key_replays_the_first_answer(api: Api) -> None:
    first = api.redeem(api.coupon.token, "abc")
    retry = api.redeem(api.coupon.token, "abc")
    assert retry.status_code == first.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    reused = api.redeem(api.coupon.token, "abc", order_reference="other order")
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")


def test_retry_after_a_lost_answer_gets_the_committed_result(api: Api) -> None:
    device = locations.authenticate_device(api.session, api.key)
    assert device is not None
    # The server commits the redemption, then the connection drops before the client reads it.
    committed = redeem.redeem(api.session, api.secret, device, api.coupon.token, "lost-1")
    retry = api.redeem(api.coupon.token, "lost-1")
    assert retry.status_code == 201
    assert retry.json() == committed.body


def test_void_within_the_window_and_sync(api: Api) -> None:
    rid = api.redeem(api.coupon.token, "v").json()["redemption"]["id"]
    voided = api.client.post(
        f"/api/v1/redemptions/{rid}/void", json={"reason": "wrong customer"}, headers=api.headers()
    )
    assert voided.status_code == 201
    assert voided.json()["void"]["voids_id"] == rid
    twice = api.client.post(
        f"/api/v1/redemptions/{rid}/void", json={"reason": "again"}, headers=api.headers()
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "already_voided")
    missing = api.client.post(
        "/api/v1/redemptions/999999/void", json={"reason": "x"}, headers=api.headers()
    )
    assert missing.status_code == 404
    page = api.client.get("/api/v1/redemptions?limit=1", headers=api.headers()).json()
    assert [item["kind"] for item in page["items"]] == ["redemption"]
    rest = api.client.get(
        f"/api/v1/redemptions?after={page['next_after']}&since=2000-01-01T00:00:00",
        headers=api.headers(),
    ).json()
    assert [item["kind"] for item in rest["items"]] == ["void"]
    assert rest["next_after"] is None


@pytest.mark.parametrize(
    "payload",
    [{}, {"code": ""}, {"code": "x", "extra": 1}, {"code": "x", "discount_value": -1}, [1]],
)
def test_bad_bodies_are_422(api: Api, payload: object) -> None:
    response = api.client.post("/api/v1/redemptions", json=payload, headers=api.headers())
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_guessing_is_throttled_with_retry_after(api: Api) -> None:
    for number in range(guard.MAX_FAILURES_PER_MINUTE):
        assert api.redeem(f"guess-{number}").status_code == 404
    response = api.redeem(api.coupon.token)
    assert response.status_code == 429
    assert response.json()["code"] == "too_many_failed_lookups"
    assert response.headers["Retry-After"] == "60"


def test_openapi_document_has_an_example_for_every_answer(api: Api) -> None:
    document = api.client.get("/api/v1/openapi.json").json()
    assert document["servers"] == [{"url": "/api/v1"}]
    redeem_responses = document["paths"]["/redemptions"]["post"]["responses"]
    assert set(redeem_responses) >= {"201", "401", "403", "404", "409", "410", "422", "429"}
    for path in document["paths"].values():
        for operation in path.values():
            for status, response in operation["responses"].items():
                assert "example" in response["content"]["application/json"], status


def test_control_characters_and_out_of_range_dates_are_422_not_500(api: Api) -> None:
    bad_reference = api.redeem(api.coupon.token, "nul", order_reference="A\x00B")
    assert (bad_reference.status_code, bad_reference.json()["code"]) == (422, "invalid_input")
    rid = api.redeem(api.coupon.token, "ok").json()["redemption"]["id"]
    bad_reason = api.client.post(
        f"/api/v1/redemptions/{rid}/void", json={"reason": "x\x00"}, headers=api.headers()
    )
    assert bad_reason.status_code == 422
    early = api.client.get(
        "/api/v1/redemptions", params={"since": "0001-01-01T00:00:00+14:00"}, headers=api.headers()
    )
    assert (early.status_code, early.json()["code"]) == (422, "invalid_request")


def test_plainly_served_endpoints_keep_their_documented_methods(api: Api) -> None:
    document = api.client.get("/api/v1/openapi.json").json()
    assert set(document["paths"]["/coupons/{code}"]) == {"get"}
    assert set(document["paths"]["/redemptions"]) == {"get", "post"}
    token = api.coupon.token
    head = api.client.head(f"/api/v1/coupons/{token}", headers=api.headers())
    assert (head.status_code, head.headers["allow"]) == (405, "GET")
    put = api.client.put("/api/v1/redemptions", json={"code": token}, headers=api.headers())
    assert put.status_code == 405
    assert put.json()["code"] == "method_not_allowed"
    listed = api.client.get("/api/v1/redemptions", headers=api.headers())
    assert (listed.status_code, listed.json()["items"]) == (200, [])
