"""All models on one metadata; import from here so every table is registered."""

from dealmail.models.admin import AdminUser, Setting
from dealmail.models.base import Base, UTCDateTime, utcnow
from dealmail.models.campaigns import Campaign, CampaignStatus
from dealmail.models.contacts import (
    ConsentEvent,
    ConsentKind,
    Customer,
    CustomerStatus,
    Segment,
    Suppression,
    Tag,
    customer_tags,
)
from dealmail.models.coupons import Coupon, IdempotencyRecord, Redemption
from dealmail.models.deals import Deal, DealKind, deal_locations
from dealmail.models.delivery import (
    AttemptLog,
    Message,
    MessageStatus,
    SendLog,
    WorkerHeartbeat,
)
from dealmail.models.engagement import Event, EventKind
from dealmail.models.locations import Device, Location, LookupFailure, PairingToken

__all__ = [
    "AdminUser",
    "AttemptLog",
    "Base",
    "Campaign",
    "CampaignStatus",
    "ConsentEvent",
    "ConsentKind",
    "Coupon",
    "Customer",
    "CustomerStatus",
    "Deal",
    "DealKind",
    "Device",
    "Event",
    "EventKind",
    "IdempotencyRecord",
    "Location",
    "LookupFailure",
    "Message",
    "MessageStatus",
    "PairingToken",
    "Redemption",
    "Segment",
    "SendLog",
    "Setting",
    "Suppression",
    "Tag",
    "UTCDateTime",
    "WorkerHeartbeat",
    "customer_tags",
    "deal_locations",
    "utcnow",
]
