"""The campaign lifecycle: the one table of allowed status changes, and the function that obeys it.

draft → scheduled → sending → sent, with paused and cancelled on the way. Sending itself is the
delivery worker's; it moves campaigns only through `transition`.
"""

from __future__ import annotations

from datetime import datetime

from dealmail.errors import DomainError
from dealmail.models import Campaign, CampaignStatus, utcnow

S = CampaignStatus
TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.SENDING, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.DRAFT, S.SENDING, S.PAUSED, S.CANCELLED}),
    S.SENDING: frozenset({S.PAUSED, S.SENT, S.CANCELLED}),
    S.PAUSED: frozenset({S.SENDING, S.SCHEDULED, S.CANCELLED}),
    S.SENT: frozenset({S.SENDING}),  # `campaigns resend NAME --failed` only
    S.CANCELLED: frozenset(),
}
EDITABLE = frozenset({S.DRAFT, S.SCHEDULED, S.PAUSED})
# Moving into these statuses must pass preflight first (see campaigns.preflight.require_ready).
NEEDS_PREFLIGHT = frozenset({S.SCHEDULED, S.SENDING})


class InvalidTransition(DomainError):
    code = "invalid_transition"
    http_status = 409


def can_transition(current: str, to: str) -> bool:
    try:
        return CampaignStatus(to) in TRANSITIONS[CampaignStatus(current)]
    except ValueError:
        return False


def transition(campaign: Campaign, to: str, *, now: datetime | None = None) -> None:
    """Change the status (no commit) or raise DomainError `invalid_transition`."""
    if not can_transition(campaign.status, to):
        allowed = sorted(TRANSITIONS.get(CampaignStatus(campaign.status), frozenset()))
        raise InvalidTransition(
            f"campaign {campaign.name!r} is {campaign.status}; it cannot become {to}"
            + (f" (it can become {', '.join(allowed)})" if allowed else " (it is final)"),
            detail={"from": campaign.status, "to": to},
        )
    moment = now or utcnow()
    target = CampaignStatus(to)
    if target == S.SENDING and campaign.started_at is None:
        campaign.started_at = moment
    if target in (S.SENT, S.CANCELLED):
        campaign.finished_at = moment
    if target != S.PAUSED:
        campaign.paused_reason = None
    campaign.status = target.value


def is_editable(campaign: Campaign) -> bool:
    return campaign.status in EDITABLE
