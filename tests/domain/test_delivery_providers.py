"""SendGrid and SES backends against their HTTP contracts, driven by the real worker.

SendGrid's API is faked at the HTTP level with respx; SES with moto (and botocore's Stubber for
the answers moto does not give: throttling and the account quota).
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import boto3
import httpx
import pytest
import respx
import zxingcpp
from botocore.stub import Stubber
from moto import mock_aws
from PIL import Image
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.delivery.backends.base import FailureKind, SendError
from dealmail.delivery.backends.ses import SesBackend
from dealmail.delivery.materialise import materialise
from dealmail.delivery.worker import Worker
from dealmail.models import AttemptLog, Message
from delivery_support import add_campaign, add_customers, add_deal, message, ready_shop

API_KEY = "SG.test-key"


def _deal_campaign(session: Session, count: int) -> list[Message]:
    ready_shop(session)
    add_customers(session, count)
    campaign = add_campaign(session, deal=add_deal(session))
    materialise(session, campaign.id)
    rows = list(session.scalars(select(Message).order_by(Message.id)))
    session.expunge_all()
    session.rollback()  # SQLite: a reading transaction would hold the write lock the worker needs
    return rows


def test_sendgrid_contract_202_429_then_retry_400_then_fail(
    session: Session, settings: Settings
) -> None:
    first, throttled, refused = _deal_campaign(session, 3)
    calls: dict[str, int] = {}
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        to = json.loads(request.content)["personalizations"][0]["to"][0]["email"]
        calls[to] = calls.get(to, 0) + 1
        if to == throttled.email and calls[to] == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"errors": []})
        if to == refused.email:
            return httpx.Response(400, json={"errors": [{"message": "invalid email"}]})
        return httpx.Response(202, headers={"X-Message-Id": f"sg-{to}"})

    configured = settings.model_copy(
        update={
            "email_backend": "sendgrid",
            "sendgrid_api_key": SecretStr(API_KEY),
            "retry_base_seconds": 0.1,
        }
    )
    with respx.mock(assert_all_called=True) as router:
        router.post("https://api.sendgrid.com/v3/mail/send").mock(side_effect=answer)
        Worker(configured, until_idle=True).run()

    assert calls == {first.email: 1, throttled.email: 2, refused.email: 1}
    request = next(r for r in requests if first.email in r.content.decode())
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = json.loads(request.content)
    assert body["personalizations"] == [{"to": [{"email": first.email}]}]
    assert body["from"]["email"] == "shop@shop.example"
    assert body["subject"]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["custom_args"] == {"dealmail_message_id": str(first.id)}
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["headers"]["List-Unsubscribe"].startswith("<https://shop.example/u/")
    (image,) = body["attachments"]
    assert image["disposition"] == "inline"
    assert image["type"] == "image/png"
    assert f"cid:{image['content_id']}" in body["content"][1]["value"]
    png = base64.b64decode(image["content"])
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert decoded[0].text.startswith("https://shop.example/c/")

    session.expire_all()
    rows = {m.id: m for m in session.scalars(select(Message))}
    assert rows[first.id].status == "sent"
    assert rows[first.id].provider_message_id == f"sg-{first.email}"
    assert rows[throttled.id].status == "sent"
    assert rows[throttled.id].attempts == 2
    assert rows[refused.id].status == "failed"
    assert rows[refused.id].error_kind == "permanent"
    outcomes = session.execute(
        select(AttemptLog.outcome, AttemptLog.code)
        .where(AttemptLog.message_id == throttled.id)
        .order_by(AttemptLog.id)
    ).all()
    assert [tuple(o) for o in outcomes] == [("deferred", "HTTP 429"), ("sent", None)]


def test_ses_sends_the_raw_mime_with_the_configuration_set(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    messages = _deal_campaign(session, 3)
    configured = settings.model_copy(
        update={"email_backend": "ses", "ses_configuration_set": "dealmail"}
    )
    with mock_aws():
        client = boto3.client("sesv2", region_name="us-east-1")
        client.create_email_identity(EmailIdentity="shop.example")
        client.create_configuration_set(ConfigurationSetName="dealmail")
        Worker(configured, until_idle=True).run()
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
        assert sorted(m.destinations[0] for m in sent) == sorted(m.email for m in messages)
        raw = sent[0].raw_data
        assert "multipart/related" in raw
        assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw
    session.expire_all()
    rows = session.scalars(select(Message)).all()
    assert {m.status for m in rows} == {"sent"}
    assert {m.provider_message_id for m in rows} == {m.id for m in sent}


def test_ses_throttling_is_temporary_and_rejection_permanent() -> None:
    client = boto3.client(
        "sesv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "send_email", "TooManyRequestsException", "Maximum sending rate exceeded.", 429
        )
        stub.add_client_error(
            "send_email", "MessageRejected", "Email address is not verified.", 400
        )
        stub.add_client_error("send_email", "AccountSuspendedException", "Suspended.", 400)
        stub.add_response(
            "get_account",
            {"SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 3.0}},
        )
        backend = SesBackend("us-east-1", client=client)
        kinds = []
        for _ in range(3):
            with pytest.raises(SendError) as raised:
                backend.send(message())
            kinds.append((raised.value.kind, raised.value.code))
        assert kinds == [
            (FailureKind.TEMPORARY, "TooManyRequestsException"),
            (FailureKind.PERMANENT, "MessageRejected"),
            (FailureKind.POLICY, "AccountSuspendedException"),
        ]
        assert backend.max_send_rate() == 14.0
