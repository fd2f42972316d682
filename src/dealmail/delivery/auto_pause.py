"""Auto-pause: a campaign is paused when most of its recent attempts fail for reasons of ours."""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from dealmail.delivery import campaign_state
from dealmail.delivery.backends import SendError
from dealmail.models import CampaignStatus

if TYPE_CHECKING:
    from dealmail.delivery.worker import Worker

log = logging.getLogger("dealmail.worker")

# Auto-pause: this share of the last N attempts failing for reasons that are not the recipient's.
PAUSE_WINDOW = 50
PAUSE_SHARE = 0.9


def observe(
    worker: Worker,
    session: Session,
    campaign_id: int,
    *,
    failed_systemically: bool,
    error: SendError | None,
) -> None:
    """Pause the campaign when most recent attempts fail for reasons that are ours."""
    with worker.recent_lock:
        window = worker.recent.setdefault(campaign_id, deque(maxlen=PAUSE_WINDOW))
        window.append(failed_systemically)
        tripped = len(window) == PAUSE_WINDOW and sum(window) >= PAUSE_SHARE * PAUSE_WINDOW
        if tripped:
            window.clear()
    if not tripped:
        return
    reason = (
        f"paused automatically: at least {int(PAUSE_SHARE * 100)}% of the last "
        f"{PAUSE_WINDOW} attempts failed for reasons that are not the recipients' "
        f"(last: {error}); fix the cause, then `dealmail campaigns resume`"
    )
    if campaign_state.move(
        session, campaign_id, CampaignStatus.SENDING, CampaignStatus.PAUSED, reason=reason
    ):
        log.warning("campaign %s: %s", campaign_id, reason)
    worker.campaign_status[campaign_id] = CampaignStatus.PAUSED
