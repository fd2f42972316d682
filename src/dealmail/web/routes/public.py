"""Public pages: unsubscribe (`/u/<signed>`, RFC 8058 one-click), the coupon page and its QR."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dealmail.config import Settings
from dealmail.coupons.customer_view import coupon_url, customer_coupon, find_by_token
from dealmail.coupons.qr import qr_png
from dealmail.engagement import unsubscribe as unsubscribe_service
from dealmail.errors import DomainError
from dealmail.shop import get_shop_settings
from dealmail.web.deps import get_app_settings, get_session
from dealmail.web.routes._devices import cookie_device
from dealmail.web.routes.scanner import render_staff_coupon_page

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
router = APIRouter(include_in_schema=False)


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def error_page(request: Request, session: Session, error: DomainError) -> HTMLResponse:
    shop = get_shop_settings(session)
    heading = "This link is not valid" if error.http_status == 404 else "That did not work"
    return TEMPLATES.TemplateResponse(
        request,
        "public/invalid.html",
        {
            "shop_name": shop.shop_name,
            "postal_address": shop.postal_address,
            "heading": heading,
            "message": error.message,
        },
        status_code=error.http_status,
        headers=PAGE_HEADERS,
    )


def _unsubscribe_page(
    request: Request,
    page: unsubscribe_service.UnsubscribePage,
    *,
    resubscribed: bool = False,
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        "public/unsubscribe.html",
        {
            "shop_name": page.shop_name,
            "postal_address": page.postal_address,
            "page": page,
            "action": request.url.path,
            "resubscribed": resubscribed,
        },
        headers=PAGE_HEADERS,
    )


@router.get("/u/{signed}", response_class=HTMLResponse)
def unsubscribe_confirm(
    signed: str,
    request: Request,
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> HTMLResponse:
    """Shows what a click would do; changes nothing (mail scanners prefetch links)."""
    try:
        page = unsubscribe_service.load_page(session, settings.secret_key_bytes(), signed)
    except DomainError as exc:
        return error_page(request, session, exc)
    return _unsubscribe_page(request, page)


@router.post("/u/{signed}", response_class=HTMLResponse)
async def unsubscribe_post(
    signed: str,
    request: Request,
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> HTMLResponse:
    """RFC 8058 one-click (`List-Unsubscribe=One-Click`, urlencoded or multipart) or the button."""
    form = await request.form()
    one_click = form.get("List-Unsubscribe") == "One-Click"
    wants_resubscribe = not one_click and form.get("action") == "resubscribe"
    secret = settings.secret_key_bytes()
    ip = _client_ip(request)
    try:
        if wants_resubscribe:
            page = await run_in_threadpool(
                unsubscribe_service.resubscribe, session, secret, signed, ip=ip
            )
        else:
            page = await run_in_threadpool(
                unsubscribe_service.unsubscribe,
                session,
                secret,
                signed,
                one_click=one_click,
                ip=ip,
            )
    except DomainError as exc:
        return await run_in_threadpool(error_page, request, session, exc)
    return _unsubscribe_page(request, page, resubscribed=wants_resubscribe and page.changed)


def render_customer_coupon_page(
    request: Request, session: Session, settings: Settings, token: str
) -> HTMLResponse:
    """The customer's view of a coupon (status, QR, code, terms, expiry); never redeems."""
    coupon = customer_coupon(session, settings.secret_key_bytes(), token)
    if coupon is None:
        return error_page(
            request,
            session,
            DomainError(
                "there is no coupon at this address", code="coupon_not_found", http_status=404
            ),
        )
    return TEMPLATES.TemplateResponse(
        request,
        "public/coupon.html",
        {"shop_name": coupon.shop_name, "postal_address": coupon.postal_address, "coupon": coupon},
        headers=PAGE_HEADERS,
    )


@router.get("/c/{token}", response_class=HTMLResponse)
def coupon_page(
    token: str,
    request: Request,
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> HTMLResponse:
    # A paired staff device gets the verdict and the Redeem button; anyone else the customer view.
    device = cookie_device(session, request)
    if device is not None:
        return render_staff_coupon_page(request, session, settings, device, token)
    return render_customer_coupon_page(request, session, settings, token)


@router.get("/q/{token}.png")
def coupon_qr(token: str, session: Session = Depends(get_session)) -> Response:
    """The coupon's QR image (the same picture as in the email), for the coupon page."""
    if find_by_token(session, token) is None:
        return Response(status_code=404, content=b"", media_type="image/png")
    return Response(
        content=qr_png(coupon_url(session, token)).png,
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=86400"},
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
