"""Domain errors: one exception type with a stable machine-readable code; no framework imports."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business rule refused the request. `code` is stable for scripts and API clients."""

    code: str = "domain_error"
    http_status: int = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.detail = detail or {}

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class AlreadyExists(DomainError):
    code = "already_exists"
    http_status = 409


class InvalidInput(DomainError):
    code = "invalid_input"
    http_status = 422


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class Forbidden(DomainError):
    code = "forbidden"
    http_status = 403


class ConfigurationError(DomainError):
    code = "configuration_error"
    http_status = 500
