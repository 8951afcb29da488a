"""Event types of the campaigns app. Every event carries the full new values of what it
changes (set semantics), so applying one twice is harmless; `meta.actor` says who.

Streams: "advertiser:<id>", "campaign:<id>", "creative:<id>", "placement:<key>", each with
a stream_version (optimistic concurrency per aggregate).
"""

from __future__ import annotations

from adplatform.eventlog.events import EventType, register

ADVERTISER_CREATED = register(EventType("AdvertiserCreated", version=1))
ADVERTISER_CHANGED = register(EventType("AdvertiserChanged", version=1))
CAMPAIGN_CREATED = register(EventType("CampaignCreated", version=1))
CAMPAIGN_RENAMED = register(EventType("CampaignRenamed", version=1))
CAMPAIGN_BUDGET_CHANGED = register(EventType("CampaignBudgetChanged", version=1))
CAMPAIGN_BID_CHANGED = register(EventType("CampaignBidChanged", version=1))
CAMPAIGN_TARGETING_CHANGED = register(EventType("CampaignTargetingChanged", version=1))
CAMPAIGN_SCHEDULE_CHANGED = register(EventType("CampaignScheduleChanged", version=1))
CAMPAIGN_DELIVERY_CHANGED = register(EventType("CampaignDeliveryChanged", version=1))  # objective, pacing, caps
CAMPAIGN_ACTIVATED = register(EventType("CampaignActivated", version=1))  # draft → active
CAMPAIGN_PAUSED = register(EventType("CampaignPaused", version=1))
CAMPAIGN_RESUMED = register(EventType("CampaignResumed", version=1))
CREATIVE_CREATED = register(EventType("CreativeCreated", version=1))
CREATIVE_CHANGED = register(EventType("CreativeChanged", version=1))
CREATIVE_APPROVED = register(EventType("CreativeApproved", version=1))
CREATIVE_REJECTED = register(EventType("CreativeRejected", version=1))
CREATIVE_PAUSED = register(EventType("CreativePaused", version=1))
CREATIVE_RESUMED = register(EventType("CreativeResumed", version=1))
PLACEMENT_CREATED = register(EventType("PlacementCreated", version=1))
PLACEMENT_CHANGED = register(EventType("PlacementChanged", version=1))

STATE_EVENT_TYPES = frozenset(
    e.name
    for e in (
        ADVERTISER_CREATED,
        ADVERTISER_CHANGED,
        CAMPAIGN_CREATED,
        CAMPAIGN_RENAMED,
        CAMPAIGN_BUDGET_CHANGED,
        CAMPAIGN_BID_CHANGED,
        CAMPAIGN_TARGETING_CHANGED,
        CAMPAIGN_SCHEDULE_CHANGED,
        CAMPAIGN_DELIVERY_CHANGED,
        CAMPAIGN_ACTIVATED,
        CAMPAIGN_PAUSED,
        CAMPAIGN_RESUMED,
        CREATIVE_CREATED,
        CREATIVE_CHANGED,
        CREATIVE_APPROVED,
        CREATIVE_REJECTED,
        CREATIVE_PAUSED,
        CREATIVE_RESUMED,
        PLACEMENT_CREATED,
        PLACEMENT_CHANGED,
    )
)


def advertiser_stream(advertiser_id: int) -> str:
    return f"advertiser:{advertiser_id}"


def campaign_stream(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def creative_stream(creative_id: int) -> str:
    return f"creative:{creative_id}"


def placement_stream(key: str) -> str:
    return f"placement:{key}"
