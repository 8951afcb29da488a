"""Taobao import (`import_events --format taobao`): fixtures in the dataset's exact layout
give the documented advertisers, campaigns, creatives, impressions, clicks and behaviour
events; importing again (resumed or from scratch) adds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from adplatform.eventlog import selectors as eventlog
from campaigns import selectors as campaigns_selectors
from marketplace.importers.taobao import ERROR_HEADER, placement_key
from marketplace.services import taobao_import
from ranking.events import AD_CLICKED, AD_IMPRESSED

AD_FEATURE = """adgroup_id,cate_id,campaign_id,customer,brand,price
63133,6406,83237,1,95471,170.0
313401,6406,83237,1,87331,199.0
248909,392,104045,2,NULL,32.99
208458,392,104045,2,82527,128.0
"""
# 9 distinct impressions (3 clicked), one row of an ad group not in ad_feature, one broken row
RAW_SAMPLE = """user,time_stamp,adgroup_id,pid,nonclk,clk
581738,1494137644,63133,430548_1007,1,0
449818,1494638778,313401,430548_1007,1,0
914836,1494650879,248909,430548_1007,0,1
914836,1494651029,208458,430548_1007,1,0
399907,1494302958,63133,430539_1007,0,1
628137,1494524935,313401,430548_1007,1,0
298139,1494462593,248909,430539_1007,1,0
775475,1494561036,208458,430548_1007,0,1
555266,1494307136,63133,430548_1007,1,0
555266,1494307136,999999,430548_1007,1,0
oops
"""
USER_PROFILE = (
    "userid,cms_segid,cms_group_id,final_gender_code,age_level,pvalue_level,shopping_level,occupation,"
    """new_user_class_level
234,0,5,2,5,,3,0,3
523,5,2,2,2,1,3,1,2
"""
)
# pv, pv, cart, fav, buy, and an unknown btag
BEHAVIOR_LOG = """user,time_stamp,btag,cate,brand
558157,1493741625,pv,6250,91286
558157,1493741626,pv,6250,91286
728690,1493776998,cart,11800,62353
332634,1493809895,fav,1101,365477
857237,1493816945,buy,1043,110616
857237,1493816946,xx,1043,110616
"""


def write_dataset(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in {
        "ad_feature.csv": AD_FEATURE,
        "raw_sample.csv": RAW_SAMPLE,
        "user_profile.csv": USER_PROFILE,
        "behavior_log.csv": BEHAVIOR_LOG,
    }.items():
        (root / name).write_text(text)
    return root


def _counts() -> dict[str, int]:
    return {
        t: eventlog.count_events(types=[t])
        for t in (
            "AdvertiserCreated",
            "CampaignCreated",
            "CreativeCreated",
            AD_IMPRESSED.name,
            AD_CLICKED.name,
            "ProductViewed",
            "CartItemAdded",
            "OrderPlaced",
            "ProductUpserted",
        )
    }


EXPECTED = {
    "AdvertiserCreated": 2,
    "CampaignCreated": 2,
    "CreativeCreated": 4,
    AD_IMPRESSED.name: 9,
    AD_CLICKED.name: 3,
    "ProductViewed": 3,  # pv, pv, fav
    "CartItemAdded": 1,
    "OrderPlaced": 1,
    "ProductUpserted": 4,
}


@pytest.mark.django_db
def test_taobao_fixture_import_gives_documented_counts_and_is_idempotent(tmp_path: Path) -> None:
    # given a dataset directory in the Taobao layout
    data = write_dataset(tmp_path / "taobao")
    state = tmp_path / "state"

    # when it is imported
    first = taobao_import(path=data, state_dir=state)

    # then customers → advertisers, campaign_id → campaigns, adgroup_id → creatives (one product each),
    # raw_sample rows → impressions + clicks, behaviour rows → events; user_profile is not imported
    assert (first.advertisers, first.campaigns, first.creatives, first.products) == (2, 2, 4, 4)
    assert (first.impressions, first.clicks, first.behaviour_events, first.duplicates) == (9, 3, 5, 0)
    assert first.placements == 2
    assert first.skipped_rows == 1 + 1 + 1 + 2  # unknown ad group, broken row, unknown btag, 2 profiles
    assert _counts() == EXPECTED
    creatives = campaigns_selectors.creative_list(advertiser_id=None)
    assert sorted(c.product_id for c in creatives) == ["tb-ad208458", "tb-ad248909", "tb-ad313401", "tb-ad63133"]
    assert {p.key for p in campaigns_selectors.placement_list()} >= {placement_key("430548_1007")}
    stream = eventlog.stream_events(stream="user:tb-332634")
    assert [(e.type, e.data.get("fav")) for e in stream] == [("ProductViewed", True)]

    # when imported again: resumed (nothing left to read) and then from scratch
    resumed = taobao_import(path=data, state_dir=state)
    restarted = taobao_import(path=data, state_dir=state, restart=True)

    # then nothing new is stored; the restarted run finds every event already there
    for again in (resumed, restarted):
        assert (again.advertisers, again.campaigns, again.creatives, again.products) == (0, 0, 0, 0)
        assert (again.impressions, again.clicks, again.behaviour_events) == (0, 0, 0)
    assert resumed.duplicates == 0 and resumed.resumed_bytes > 0
    assert restarted.duplicates == 9 + 3 + 5
    assert _counts() == EXPECTED


@pytest.mark.django_db
def test_import_events_command_dispatches_taobao_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given the dataset directory
    data = write_dataset(tmp_path / "taobao")

    # when imported through the command
    call_command("import_events", str(data), "--format", "taobao")

    # then it reports the counts, and the events are in the log
    out = capsys.readouterr().out
    assert "2 advertisers, 2 campaigns, 4 creatives" in out
    assert "9 impressions, 3 clicks, 5 behaviour events" in out
    assert _counts() == EXPECTED


@pytest.mark.django_db
def test_taobao_import_rejects_a_wrong_header_and_stores_nothing(tmp_path: Path) -> None:
    # given an ad_feature.csv with the columns in another order
    data = write_dataset(tmp_path / "taobao")
    (data / "ad_feature.csv").write_text(AD_FEATURE.replace("cate_id,campaign_id", "campaign_id,cate_id", 1))

    # when imported, then it fails on the header and writes nothing
    with pytest.raises(ValueError) as err:
        taobao_import(path=data, state_dir=tmp_path / "state")
    assert str(err.value) == ERROR_HEADER.format(
        file="ad_feature.csv",
        expected="adgroup_id,cate_id,campaign_id,customer,brand,price",
        found="adgroup_id,campaign_id,cate_id,customer,brand,price",
    )
    assert eventlog.count_events() == 0
