"""Tracking tokens: exact round trip, tampering (every single-character change, another
secret, the other kind), malformed input and expiry at an injected time. Pure: no DB."""

from __future__ import annotations

import string
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings

from tracking import tokens
from tracking.services import ServedAd, served_ad_from_token, tracking_urls

from .conftest import SERVED_AT, served_ad, token_of

TTL = 24 * 3600


def urls(ad: ServedAd) -> tuple[str, str]:
    impression_url, click_url = tracking_urls(ad=ad)
    return token_of(impression_url), token_of(click_url)


def test_urls_are_site_relative_and_tokens_carry_the_served_ad_exactly() -> None:
    # given a served ad with every field set, and one without consent, segment and variant
    full = served_ad()
    bare = served_ad(
        segment=None, variant=None, consent=False, price=Decimal("12.3456"), pricing_model="cpm",
        p_click=None, model_version=None,
    )  # fmt: skip
    for ad in (full, bare):
        # when its tracking URLs are issued
        impression_url, click_url = tracking_urls(ad=ad)
        # then they are site-relative, URL-safe, and each token gives back the ad
        assert impression_url.startswith("/track/impression/") and click_url.startswith("/track/click/")
        for url in (impression_url, click_url):
            assert set(token_of(url)) <= set(string.ascii_letters + string.digits + "-_.")
        at = SERVED_AT + timedelta(seconds=5)
        assert served_ad_from_token(token=token_of(click_url), kind="c", now=at) == ad
        # the impression token does not carry the landing URL (shorter)
        assert served_ad_from_token(token=token_of(impression_url), kind="i", now=at) == replace(ad, landing_url="")
        assert len(token_of(impression_url)) < len(token_of(click_url))


def test_a_token_issued_before_the_calibration_fields_still_verifies() -> None:
    # given a token in the 15-field layout (no p_click, no model version), as issued
    # before ADR 0062, and still unexpired
    from django.conf import settings

    ad = served_ad()
    fields = [ad.request_id, ad.user_id, ad.creative_id, ad.campaign_id, ad.advertiser_id, ad.placement,
              ad.position, ad.pricing_model, str(ad.price), ad.currency, round(ad.served_at.timestamp() * 1000),
              ad.segment, ad.variant, 1, ad.landing_url]  # fmt: skip
    token = tokens.sign(fields, kind="c", expires_at=2**40, secret=settings.TRACKING_SECRET)
    # then it gives back the ad without the calibration fields
    assert served_ad_from_token(token=token, kind="c", now=SERVED_AT) == replace(ad, p_click=None, model_version=None)


def test_every_single_character_change_is_rejected() -> None:
    # given an authentic click token
    _, click = urls(served_ad())
    alphabet = string.ascii_letters + string.digits + "-_"
    # when any one character is replaced by any other token character
    for i, ch in enumerate(click):
        if ch == ".":
            continue
        for other in (alphabet[(alphabet.index(ch) + 1) % 64], alphabet[(alphabet.index(ch) + 32) % 64]):
            tampered = click[:i] + other + click[i + 1 :]
            # then it is invalid, never accepted with other contents
            with pytest.raises(tokens.TokenInvalidError):
                served_ad_from_token(token=tampered, kind="c", now=SERVED_AT)


def test_token_of_another_secret_or_kind_is_rejected() -> None:
    impression, click = urls(served_ad())
    # a token signed with another secret
    with override_settings(TRACKING_SECRET="another-secret"):
        foreign_impression, _ = urls(served_ad())
        with pytest.raises(tokens.TokenInvalidError):
            served_ad_from_token(token=click, kind="c", now=SERVED_AT)
    with pytest.raises(tokens.TokenInvalidError):
        served_ad_from_token(token=foreign_impression, kind="i", now=SERVED_AT)
    # an impression token used as a click and vice versa
    with pytest.raises(tokens.TokenInvalidError):
        served_ad_from_token(token=impression, kind="c", now=SERVED_AT)
    with pytest.raises(tokens.TokenInvalidError):
        served_ad_from_token(token=click, kind="i", now=SERVED_AT)


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "a.b.c", "!!!.???", "eyJ9.AAAA", "a" * (tokens.MAX_TOKEN_CHARS + 1), "AAAA==.AAAA"],
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    with pytest.raises(tokens.TokenInvalidError):
        served_ad_from_token(token=token, kind="i", now=SERVED_AT)


def test_a_validly_signed_payload_of_the_wrong_shape_is_invalid() -> None:
    # given tokens signed with the real secret around payloads that are not a served ad
    from django.conf import settings

    wrong_type = ["r", "u", "not-an-int", 1, 1, "p", 1, "cpc", "0.4", "EUR", 0, None, None, 1, None]
    for fields in ([], ["only-one"], wrong_type):
        token = tokens.sign(fields, kind="i", expires_at=2**40, secret=settings.TRACKING_SECRET)
        # then they are rejected as invalid, not as a crash
        with pytest.raises(tokens.TokenInvalidError):
            served_ad_from_token(token=token, kind="i", now=SERVED_AT)


def test_click_token_to_a_non_http_landing_is_invalid() -> None:
    _, click = urls(served_ad(landing_url="javascript:alert(1)"))
    with pytest.raises(tokens.TokenInvalidError):
        served_ad_from_token(token=click, kind="c", now=SERVED_AT)


def test_tokens_expire_after_the_ttl_counted_from_served_at() -> None:
    # given tokens issued for an ad served at SERVED_AT with a one-hour TTL
    with override_settings(TRACKING_TOKEN_TTL_SECONDS=3600):
        impression, click = urls(served_ad())
    expiry = SERVED_AT.replace(microsecond=0) + timedelta(seconds=3600)
    # then they are valid one second before expiry, expired at it and after it
    assert served_ad_from_token(token=click, kind="c", now=expiry - timedelta(seconds=1)).request_id
    for now in (expiry, expiry + timedelta(days=3)):
        with pytest.raises(tokens.TokenExpiredError):
            served_ad_from_token(token=click, kind="c", now=now)
        with pytest.raises(tokens.TokenExpiredError):
            served_ad_from_token(token=impression, kind="i", now=now)


def test_expired_and_tampered_is_invalid_not_expired() -> None:
    # the signature is checked first: a forged token never learns about expiry
    _, click = urls(served_ad())
    body, tag = click.split(".")
    with pytest.raises(tokens.TokenInvalidError):
        served_ad_from_token(token=f"{body}.{tag[::-1]}", kind="c", now=SERVED_AT + timedelta(seconds=TTL + 1))


def test_rotation_accepts_tokens_of_a_fallback_secret_only_while_it_is_listed() -> None:
    # given a token signed with the old secret
    ad = served_ad()
    with override_settings(TRACKING_SECRET="old-secret"):
        _, old_click = urls(ad)
    # when the secret is rotated with the old one as a fallback, the token still verifies
    with override_settings(TRACKING_SECRET="new-secret", TRACKING_SECRET_FALLBACKS=["old-secret"]):
        assert served_ad_from_token(token=old_click, kind="c", now=SERVED_AT) == ad
        _, new_click = urls(ad)
    # and once the fallback is dropped it does not; new tokens use the new secret
    with override_settings(TRACKING_SECRET="new-secret", TRACKING_SECRET_FALLBACKS=[]):
        with pytest.raises(tokens.TokenInvalidError):
            served_ad_from_token(token=old_click, kind="c", now=SERVED_AT)
        assert served_ad_from_token(token=new_click, kind="c", now=SERVED_AT).landing_url
