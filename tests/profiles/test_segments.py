"""Segments: planted taste groups are recovered and named from what sets them apart; keys
feed campaign targeting; operators see them in the admin; beat schedules are in the DB."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.test import Client

from profiles.segmentation import adjusted_rand_index
from profiles.selectors import profile_get, segment_keys, serving_profile
from profiles.services import segments_recompute

from .conftest import apply_profiles, ev, ingest, product, seed_catalog

pytestmark = pytest.mark.django_db(transaction=True)

GROUPS = {
    "outdoor": (["Outdoor", "Camping"], "Trek", "180", "mobile"),
    "kitchen": (["Home", "Kitchen"], "Cozy", "12", "desktop"),
    "gaming": (["Electronics", "Gaming"], "Volt", "60", "tablet"),
}


def _plant(rng: random.Random, per_group: int = 20) -> dict[str, str]:
    seed_catalog(
        *(product(f"{g}-{i}", path, brand, price) for g, (path, brand, price, _) in GROUPS.items() for i in range(8))
    )
    truth: dict[str, str] = {}
    now = datetime.now(UTC)
    events = []
    for g, (_, _, price, device) in GROUPS.items():
        for n in range(per_group):
            user = f"{g}-shopper-{n}"
            truth[user] = g
            for _ in range(rng.randrange(4, 9)):
                at = now - timedelta(hours=rng.randrange(1, 200))
                other = rng.random() < 0.1  # some noise: a view outside the group
                pid = f"{rng.choice(list(GROUPS)) if other else g}-{rng.randrange(8)}"
                events.append(ev("product_view", at, user=user, product_id=pid, device=device))
            events.append(
                ev(
                    "purchase",
                    now - timedelta(hours=1),
                    user=user,
                    order_id=f"o-{user}",
                    items=[{"product_id": f"{g}-0", "quantity": 1, "price": price}],
                    revenue=price,
                    currency="EUR",
                )
            )
    ingest(*events)
    apply_profiles()
    return truth


def test_segments_recover_planted_groups_with_descriptive_names() -> None:
    # given 60 shoppers from three planted taste groups
    truth = _plant(random.Random(4))
    # when segments are recomputed with k chosen by silhouette
    result = segments_recompute()
    # then the clusters match the planted groups
    keys = list(truth)
    pred = [profile_get(user_id=u).segment for u in keys]  # type: ignore[union-attr]
    for u in keys:  # the /rank one-statement read agrees
        served, expected = serving_profile(user_id=u, vector=False)[0], profile_get(user_id=u)
        assert served is not None and expected is not None
        assert (served.segment, served.segment_name) == (expected.segment, expected.segment_name)
    assert result.k == 3 and result.users == 60
    assert adjusted_rand_index([truth[u] for u in keys], pred) == pytest.approx(1.0)
    names = sorted(s.name for s in result.segments)
    assert names == [
        "Camping · high spend · mobile",
        "Gaming · mid spend · tablet",
        "Kitchen · low spend · desktop",
    ]
    assert sorted(segment_keys()) == sorted(s.key for s in result.segments)
    assert "camping-high-spend-mobile" in segment_keys()
    assert all(s.size == 20 and s.description.startswith("20 shoppers (33.3%)") for s in result.segments)
    # and a recompute keeps the keys (campaigns keep targeting the same segments)
    assert sorted(s.key for s in segments_recompute(k=3).segments) == sorted(segment_keys())


def test_adjusted_rand_index_reference_values() -> None:
    assert adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)
    assert adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(0.24242424, abs=1e-6)


def test_commands_run_now_and_admin_shows_segments_and_beat_schedules() -> None:
    _plant(random.Random(1), per_group=6)
    out = io.StringIO()
    call_command("recompute_segments", "--now", "--k", "3", stdout=out)
    assert "18 shoppers in 3 segments" in out.getvalue()
    # beat's database scheduler syncs the schedules declared in adplatform/celery.py
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from adplatform.celery import app

    DatabaseScheduler(app=app).setup_schedule()
    tasks = dict(PeriodicTask.objects.values_list("name", "task"))
    assert tasks["profiles-refresh-embeddings"] == "profiles.embeddings_refresh"
    assert tasks["profiles-recompute-segments"] == "profiles.segments_recompute"
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser(username="root", password="pw-12345", email="")
    client = Client()
    client.force_login(root)
    page = client.get("/admin/profiles/segment/").content.decode()
    assert "Camping · high spend · mobile" in page and "6 shoppers (33.3%)" in page
    beat = client.get("/admin/django_celery_beat/periodictask/").content.decode()
    assert "profiles-refresh-embeddings" in beat and "profiles-recompute-segments" in beat
    assert client.get("/admin/profiles/embeddingspace/").status_code == 200
