"""POST /_dealmail/session: a login ticket the dashboard issued in the last minute, traded for
the twelve-hour remembered-login cookie (HttpOnly, SameSite=Strict)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dealmail import login_tokens
from dealmail.admin.remember import COOKIE
from dealmail.config import get_settings
from dealmail.models import utcnow

MAX_TICKET_BYTES = 1024


async def open_session(request: Request) -> Response:
    """POST a ticket the dashboard issued in the last minute; get the twelve-hour cookie."""
    body = await request.body()
    secret = get_settings().secret_key_bytes()
    login = None
    if len(body) <= MAX_TICKET_BYTES:
        ticket = body.decode("ascii", "replace")
        login = login_tokens.read(secret, login_tokens.TICKET, ticket, utcnow())
    if login is None:
        return JSONResponse(
            {"code": "invalid_ticket", "message": "the login ticket is invalid or expired"},
            status_code=400,
        )
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        login_tokens.issue(secret, login_tokens.SESSION, login),
        max_age=int(login_tokens.LIFETIMES[login_tokens.SESSION].total_seconds()),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response
