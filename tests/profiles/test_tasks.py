"""Celery tasks: the names beat schedules, explicit time limits, thin and idempotent."""

from __future__ import annotations

import random

import pytest

from adplatform.celery import app
from profiles import tasks
from profiles.models import Segment, SegmentMembership

from .test_segments import _plant

pytestmark = pytest.mark.django_db(transaction=True)


def test_beat_entries_name_registered_tasks_with_time_limits() -> None:
    scheduled = {e["task"] for e in app.conf.beat_schedule.values()}
    for task in (tasks.embeddings_refresh, tasks.segments_recompute):
        assert task.name in scheduled
        assert task.name in app.tasks
        assert 0 < task.soft_time_limit < task.time_limit


def test_segments_task_is_idempotent() -> None:
    _plant(random.Random(2), per_group=5)
    first = tasks.segments_recompute.apply().get()
    segments = list(Segment.objects.order_by("key").values("key", "name", "size", "active"))
    members = dict(SegmentMembership.objects.values_list("user_key", "segment_id"))
    second = tasks.segments_recompute.apply().get()
    assert (first["users"], first["k"]) == (second["users"], second["k"]) == (15, 3)
    assert list(Segment.objects.order_by("key").values("key", "name", "size", "active")) == segments
    assert dict(SegmentMembership.objects.values_list("user_key", "segment_id")) == members
