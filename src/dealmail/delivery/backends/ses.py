"""Amazon SES backend: sesv2 `send_email` with the raw MIME and a configuration set."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from dealmail.delivery.backends.base import FailureKind, SendError, SendResult
from dealmail.delivery.envelope import ComposedMessage

THROTTLED = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "LimitExceededException", "Throttling"}
)
SENDER_PROBLEMS = frozenset(
    {
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
    }
)


class SesBackend:
    name = "ses"

    def __init__(
        self,
        region: str,
        configuration_set: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        self.configuration_set = configuration_set
        # Our queue retries with backoff; botocore retrying inside one attempt would hide that.
        self._client = client or boto3.client(
            "sesv2",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )

    def max_send_rate(self) -> float | None:
        """The account's sending quota per second, which every worker together must respect."""
        try:
            account = self._client.get_account()
        except (ClientError, BotoCoreError, NotImplementedError):
            return None
        rate = account.get("SendQuota", {}).get("MaxSendRate")
        return float(rate) if rate else None

    def send(self, message: ComposedMessage) -> SendResult:
        request: dict[str, Any] = {
            "FromEmailAddress": message.envelope_from,
            "Destination": {"ToAddresses": list(message.recipients)},
            "Content": {"Raw": {"Data": message.raw}},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        if message.message_row_id is not None:
            request["EmailTags"] = [
                {"Name": "dealmail_message_id", "Value": str(message.message_row_id)}
            ]
        try:
            response = self._client.send_email(**request)
        except ClientError as exc:
            raise _client_error(exc) from exc
        except (ConnectionError, ReadTimeoutError) as exc:
            raise SendError(
                FailureKind.TEMPORARY, f"SES unreachable: {exc}", code="connection"
            ) from exc
        except BotoCoreError as exc:
            raise SendError(FailureKind.TEMPORARY, f"SES error: {exc}", code="connection") from exc
        return SendResult(provider_message_id=response.get("MessageId"))

    def close(self) -> None:
        self._client.close()


def _client_error(exc: ClientError) -> SendError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "ClientError"))
    text = f"SES {code}: {error.get('Message', '')}".strip()
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
    if code in THROTTLED or status == 429 or status >= 500:
        return SendError(FailureKind.TEMPORARY, text, code=code)
    if code in SENDER_PROBLEMS or status in (401, 403):
        return SendError(FailureKind.POLICY, text, code=code)
    return SendError(FailureKind.PERMANENT, text, code=code)
