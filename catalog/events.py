"""Catalog event types."""

from adplatform.eventlog.events import EventType, register

PRODUCT_UPSERTED = register(EventType("ProductUpserted", version=1))
