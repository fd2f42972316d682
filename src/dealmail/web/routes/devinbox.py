"""`/dev/inbox`: the dev inbox's messages, each rendered with its QR (dev inbox backend only)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.delivery import devinbox
from dealmail.delivery.backends import backend_name
from dealmail.errors import NotFound
from dealmail.shop import get_shop_settings
from dealmail.web.deps import get_app_settings, get_session

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
router = APIRouter(include_in_schema=False)


def _require_devinbox(session: Session, settings: Settings) -> None:
    chosen = backend_name(settings, get_shop_settings(session).email_backend)
    session.rollback()
    if chosen != "devinbox":
        raise NotFound(
            f"the dev inbox is off: mail goes through the {chosen} backend",
            code="devinbox_off",
        )


@router.get("/dev/inbox", response_class=HTMLResponse)
def inbox(
    request: Request,
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> HTMLResponse:
    _require_devinbox(session, settings)
    return TEMPLATES.TemplateResponse(
        request,
        "devinbox/list.html",
        {"messages": devinbox.list_messages(settings), "folder": devinbox.inbox_dir(settings)},
        headers=HEADERS,
    )


@router.get("/dev/inbox/{message_id}", response_class=HTMLResponse)
def message(
    request: Request,
    message_id: str,
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> HTMLResponse:
    _require_devinbox(session, settings)
    found = devinbox.get_message(settings, message_id)
    return TEMPLATES.TemplateResponse(
        request,
        "devinbox/message.html",
        {"message": found, "html": found.html_with_images()},
        headers=HEADERS,
    )


@router.get("/dev/inbox/{message_id}/raw")
def raw(
    message_id: str,
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> Response:
    _require_devinbox(session, settings)
    found = devinbox.get_message(settings, message_id)
    return Response(found.raw, media_type="message/rfc822", headers=HEADERS)


def install(app: FastAPI) -> None:
    app.include_router(router)
