"""Staff pages: pair a phone from its link, `/scan` with the camera, the verdict, Redeem, Undo."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.coupons import guard, redeem, voids
from dealmail.errors import DomainError
from dealmail.locations import service as locations
from dealmail.locations.service import DeviceInfo
from dealmail.security import constant_time_equal
from dealmail.web.routes._devices import (
    client_ip,
    cookie_device,
    cookie_must_be_secure,
    csrf_token,
    run_db,
    set_device_cookie,
    templates,
)

UNDO_REASON = "undone at the counter"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(self)",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
        "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}

# (words, colour class, icon): never colour alone.
VERDICTS: dict[str, tuple[str, str, str]] = {
    "valid": ("VALID", "ok", "✓"),
    "redeemed": ("REDEEMED", "ok", "✓"),
    "already_redeemed": ("ALREADY REDEEMED", "bad", "✕"),
    "expired": ("EXPIRED", "warn", "⌛"),
    "not_yet_valid": ("NOT YET VALID", "warn", "⏳"),
    "revoked": ("REVOKED", "bad", "⛔"),
    "not_valid_here": ("NOT VALID AT THIS LOCATION", "bad", "✕"),
    "unknown": ("UNKNOWN CODE", "neutral", "?"),
    "test_coupon": ("TEST COUPON", "test", "⚠"),
    "voided": ("UNDONE", "neutral", "↶"),
    "too_many_failed_lookups": ("SLOW DOWN", "warn", "⏸"),
    "short_code_locked": ("CODES LOCKED", "warn", "⏸"),
}

router = APIRouter(include_in_schema=False)


# ------------------------------------------------------------------ rendering helpers


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _local(value: str | None, device: DeviceInfo) -> str | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value).astimezone(device.zone)
    return f"{moment.day} {moment:%b %Y, %H:%M}"


def _day(value: str | None) -> str | None:
    if not value:
        return None
    day = datetime.fromisoformat(value)
    return f"{day.day} {day:%B %Y}"


def _page(
    request: Request,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
    device: DeviceInfo | None = None,
) -> HTMLResponse:
    context = {"device": device, **context}
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=PAGE_HEADERS
    )


def _not_paired(request: Request) -> HTMLResponse:
    return _page(request, "scanner/not_paired.html", {}, status_code=403)


def _verdict_context(outcome: str, body: dict[str, Any], device: DeviceInfo) -> dict[str, Any]:
    words, tone, icon = VERDICTS.get(outcome, (outcome.upper(), "neutral", "?"))
    coupon = body.get("coupon")
    last = body.get("last_redemption") or body.get("redemption")
    return {
        "outcome": outcome,
        "words": words,
        "tone": tone,
        "icon": icon,
        "message": body.get("message", ""),
        "coupon": coupon,
        "first_day": _day(coupon.get("first_day")) if coupon else None,
        "last_day": _day(coupon.get("last_day")) if coupon else None,
        "last": last,
        "last_at": _local(last.get("redeemed_at"), device) if last else None,
    }


def render_staff_coupon_page(
    request: Request, session: Session, settings: Settings, device: DeviceInfo, code: str
) -> HTMLResponse:
    """A paired device's view of a coupon: the verdict in large type, and Redeem when valid."""
    try:
        answer = redeem.validate(
            session, settings.secret_key_bytes(), device, code, client_ip(request)
        )
    except guard.Throttled as exc:
        return _throttled(request, device, exc)
    outcome = str(answer.body.get("status") or answer.body.get("code"))
    context = _verdict_context(outcome, answer.body, device)
    context |= {
        "code": code,
        "csrf": csrf_token(settings, device),
        "idempotency_key": secrets.token_urlsafe(16),
        "redeemable": answer.body.get("redeemable", False),
    }
    return _page(request, "scanner/coupon.html", context, device=device)


def _throttled(request: Request, device: DeviceInfo, exc: guard.Throttled) -> HTMLResponse:
    context = _verdict_context(exc.code, {"message": exc.message}, device)
    return _page(request, "scanner/coupon.html", context, status_code=429, device=device)


def _posting_device(
    session: Session, request: Request, settings: Settings, csrf: str
) -> tuple[DeviceInfo | None, HTMLResponse | None]:
    """The paired device behind a staff form's POST, or the page refusing it."""
    device = cookie_device(session, request)
    if device is None:
        return None, _not_paired(request)
    if not _csrf_ok(settings, device, csrf):
        forbidden = _page(request, "scanner/forbidden.html", {}, status_code=403, device=device)
        return device, forbidden
    return device, None


def _csrf_ok(settings: Settings, device: DeviceInfo, given: str) -> bool:
    return constant_time_equal(csrf_token(settings, device), given or "")


# ------------------------------------------------------------------ pairing


@router.get("/pair/{token}", response_class=HTMLResponse)
async def pair_confirm(request: Request, token: str) -> HTMLResponse:
    """Shows what pairing would do and a button; a GET never spends the link."""

    def work(session: Session) -> locations.PairingInfo:
        return locations.get_pairing(session, token)

    try:
        info = await run_db(request.app.state, work)
    except DomainError as exc:
        context = {"error": exc.message}
        return _page(request, "scanner/pair.html", context, status_code=exc.http_status)
    # Over plain http to another machine the Secure cookie would be dropped: say so up front.
    cookie_will_stick = request.url.scheme == "https" or not cookie_must_be_secure(request)
    return _page(
        request,
        "scanner/pair.html",
        {"info": info, "action": request.url.path, "https_ok": cookie_will_stick},
    )


@router.post("/pair/{token}", response_class=HTMLResponse)
async def pair_complete(
    request: Request, token: str, device_name: str = Form("", max_length=100)
) -> Response:
    """Spend the link, create the device, store its credential in a cookie, open the scanner."""

    def work(session: Session) -> locations.NewDevice:
        return locations.complete_pairing(session, token, device_name.strip() or None)

    try:
        created = await run_db(request.app.state, work)
    except DomainError as exc:
        context = {"error": exc.message}
        return _page(request, "scanner/pair.html", context, status_code=exc.http_status)
    response = RedirectResponse("/scan?paired=1", status_code=303, headers=PAGE_HEADERS)
    set_device_cookie(response, request, created.key)
    return response


# ------------------------------------------------------------------ scanning


@router.get("/scan", response_class=HTMLResponse)
async def scan(request: Request, paired: int = 0) -> HTMLResponse:
    device = await run_db(request.app.state, cookie_device, request)
    if device is None:
        return _not_paired(request)
    return _page(request, "scanner/scan.html", {"just_paired": bool(paired)}, device=device)


@router.get("/scan/coupon", response_class=HTMLResponse)
async def scan_coupon(request: Request, code: str = "") -> Response:
    """The staff view for a scanned URL or a typed short code (the camera page lands here)."""
    code = code.strip()[:2048]
    if not code:
        return RedirectResponse("/scan", status_code=303)
    settings = _settings(request)

    def work(session: Session) -> HTMLResponse:
        device = cookie_device(session, request)
        if device is None:
            return _not_paired(request)
        return render_staff_coupon_page(request, session, settings, device, code)

    return await run_db(request.app.state, work)


@router.post("/scan/redeem", response_class=HTMLResponse)
async def scan_redeem(
    request: Request,
    code: str = Form(..., max_length=2048),
    csrf: str = Form("", max_length=128),
    idempotency_key: str = Form("", max_length=255),
) -> HTMLResponse:
    """Redeem from the staff view; a double tap or a reload replays the same answer."""
    settings = _settings(request)

    def work(session: Session) -> HTMLResponse:
        device, refusal = _posting_device(session, request, settings, csrf)
        if refusal is not None:
            return refusal
        assert device is not None
        try:
            answer = redeem.redeem(
                session,
                settings.secret_key_bytes(),
                device,
                code,
                idempotency_key=idempotency_key or None,
                ip=client_ip(request),
            )
        except guard.Throttled as exc:
            return _throttled(request, device, exc)
        outcome = str(answer.body.get("status") or answer.body.get("code"))
        context = _verdict_context(outcome, answer.body, device)
        redemption = answer.body.get("redemption")
        context |= {
            "code": code,
            "csrf": csrf_token(settings, device),
            "redemption_id": redemption["id"] if redemption else None,
            "undo_minutes": settings.void_window_minutes,
        }
        return _page(request, "scanner/result.html", context, device=device)

    return await run_db(request.app.state, work)


@router.post("/scan/undo", response_class=HTMLResponse)
async def scan_undo(
    request: Request,
    redemption_id: int = Form(..., ge=1, le=2**31 - 1),
    csrf: str = Form("", max_length=128),
) -> HTMLResponse:
    settings = _settings(request)

    def work(session: Session) -> HTMLResponse:
        device, refusal = _posting_device(session, request, settings, csrf)
        if refusal is not None:
            return refusal
        assert device is not None
        try:
            answer = voids.void(
                session, device, redemption_id, UNDO_REASON, settings.void_window_minutes
            )
        except DomainError as exc:
            context = _verdict_context("error", {"message": exc.message}, device)
            context |= {"words": "COULD NOT UNDO", "tone": "bad", "icon": "✕"}
            return _page(
                request, "scanner/result.html", context, status_code=exc.http_status, device=device
            )
        context = _verdict_context("voided", {"message": "the coupon can be used again"}, device)
        context["last"] = answer.body["void"]
        return _page(request, "scanner/result.html", context, device=device)

    return await run_db(request.app.state, work)


# ------------------------------------------------------------------ access log


class RedactSecrets(logging.Filter):
    """Keeps coupon tokens (pages and the device API's validate), pairing tokens and typed codes
    out of the access log."""

    PATTERN = re.compile(r"(/(?:c|q|pair|coupons)/)[^/?#\s\"]+|((?:^|[?&])code=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.redact(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True

    @classmethod
    def redact(cls, text: str) -> str:
        return cls.PATTERN.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", text)


def install(app: FastAPI) -> None:
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecrets) for f in access_log.filters):
        access_log.addFilter(RedactSecrets())
    app.include_router(router)
