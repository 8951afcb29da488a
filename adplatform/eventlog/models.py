"""The event log (the source of truth) and projection checkpoints.

Rows are only ever inserted through `eventlog.services.append_events`. `tx_id` is the
writing transaction's id (xid8, set by a column default) and is what readers order by;
see docs/adr/0002-reading-the-log-in-commit-order.md.
"""

from __future__ import annotations

from django.db import models


class Event(models.Model):
    position = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    stream = models.TextField()
    stream_version = models.IntegerField(null=True)
    type = models.TextField()
    schema_version = models.SmallIntegerField(default=1)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    user_key = models.TextField(null=True)
    data = models.JSONField()
    meta = models.JSONField(default=dict)
    # tx_id xid8 NOT NULL DEFAULT pg_current_xact_id() is added by migration 0001 (no
    # Django field type for xid8); it is never written by the application.

    class Meta:
        db_table = "eventlog_event"
        indexes = [
            models.Index(fields=["user_key"], name="eventlog_user_key_idx", condition=models.Q(user_key__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["stream", "stream_version"],
                name="eventlog_stream_version_uniq",
                condition=models.Q(stream_version__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.type} {self.stream}"


class ProjectionCheckpoint(models.Model):
    """Where a projection has read up to: the (tx_id, position) of the last event applied."""

    name = models.TextField(primary_key=True)
    last_tx_id = models.BigIntegerField(default=0)
    last_position = models.BigIntegerField(default=0)
    events_applied = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    last_event_recorded_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "eventlog_checkpoint"
