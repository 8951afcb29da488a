"""Admin forms. They parse input and ask the services' rules for errors (so the admin
shows exactly the messages the API gives, next to the right field); saving goes through
the services in the ModelAdmins, never through model.save()."""

from __future__ import annotations

from typing import Any

from django import forms

from campaigns import services, validation
from campaigns.models import Advertiser, Campaign, Creative, Placement
from campaigns.validation import RuleViolationError

TARGETING_HELP = {
    "categories": "Category names, comma-separated (e.g. shoes, running).",
    "keywords": "Search keywords, comma-separated.",
    "segments": "Audience segment keys, comma-separated.",
    "placements": "Placement keys, comma-separated.",
    "page_types": "Any of: " + ", ".join(validation.PAGE_TYPES) + ".",
    "devices": "Any of: " + ", ".join(validation.DEVICES) + ".",
    "geo": "ISO country or region codes, comma-separated (DE, DE-BE).",
}
DAYPARTS_HELP = (
    'Campaign-local time windows, e.g. [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"}] '
    "(0 = Monday). Empty = all day, every day."
)
CAPS_HELP = 'Per shopper, e.g. [{"scope": "campaign", "max": 3, "window_seconds": 86400}]. Empty = no cap.'
VARIANTS_HELP = (
    'Dynamic headlines, e.g. [{"headline": "Best {category} deals", "body": null}]. Slots: '
    + ", ".join(f"{{{s}}}" for s in validation.VARIANT_SLOTS)
    + "."
)


def apply_rule_errors(form: forms.BaseForm, errors: validation.Errors, field_map: dict[str, str] | None = None) -> None:
    """Put service errors ("dayparts.1.end") on the form field they belong to."""
    field_map = field_map or {}
    for key, messages in errors.items():
        target = field_map.get(key) or field_map.get(key.split(".")[0]) or key.split(".")[0]
        if target not in form.fields:
            target = None  # type: ignore[assignment]
        rest = key.split(".", 1)[1] if "." in key and target != key else ""
        for message in messages:
            text = f"{rest.replace('.', ' ')}: {message}" if rest and not key.startswith("targeting.") else message
            form.add_error(target, text)


def _split(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _targeting_field(key: str) -> forms.CharField:
    return forms.CharField(required=False, label=f"Target {key.replace('_', ' ')}", help_text=TARGETING_HELP[key])


class CampaignAdminForm(forms.ModelForm):
    launch_status = forms.ChoiceField(
        choices=[("active", "Active: serve from the start date"), ("draft", "Draft: do not serve yet")],
        initial="active",
        required=False,
        label="Status at creation",
    )
    dayparts = forms.JSONField(required=False, help_text=DAYPARTS_HELP, widget=forms.Textarea(attrs={"rows": 3}))
    frequency_caps = forms.JSONField(required=False, help_text=CAPS_HELP, widget=forms.Textarea(attrs={"rows": 3}))

    class Meta:
        model = Campaign
        fields = [
            "advertiser",
            "name",
            "objective",
            "bid_model",
            "bid",
            "daily_budget",
            "total_budget",
            "currency",
            "start",
            "end",
            "timezone",
            "pacing",
            "dayparts",
            "frequency_caps",
        ]

    targeting_categories = _targeting_field("categories")
    targeting_keywords = _targeting_field("keywords")
    targeting_segments = _targeting_field("segments")
    targeting_placements = _targeting_field("placements")
    targeting_page_types = _targeting_field("page_types")
    targeting_devices = _targeting_field("devices")
    targeting_geo = _targeting_field("geo")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for key in validation.TARGETING_KEYS:
                if f"targeting_{key}" in self.fields:
                    self.fields[f"targeting_{key}"].initial = ", ".join((self.instance.targeting or {}).get(key, []))
        if "currency" in self.fields:
            self.fields["currency"].required = False
            self.fields["currency"].help_text = "Empty = the advertiser's currency."
        if "timezone" in self.fields:
            self.fields["timezone"].required = False
            self.fields["timezone"].help_text = "IANA name such as Europe/Berlin. Empty = the advertiser's."
        if self.instance.pk:
            self.fields.pop("launch_status", None)

    def spec(self) -> dict[str, Any]:
        data = self.cleaned_data
        spec = {f: data.get(f) for f in services.CAMPAIGN_FIELDS if f in self.fields and f != "targeting"}
        for f in ("dayparts", "frequency_caps"):
            spec[f] = data.get(f) or []
        spec["targeting"] = {k: _split(data.get(f"targeting_{k}", "")) for k in validation.TARGETING_KEYS}
        for f in ("currency", "timezone"):
            if not spec.get(f):
                spec.pop(f, None)
        return spec

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        advertiser = cleaned.get("advertiser") or (self.instance.advertiser if self.instance.pk else None)
        if advertiser is None:
            return cleaned
        try:
            services.campaign_validate(
                advertiser_id=advertiser.pk, spec=self.spec(), campaign_id=self.instance.pk or None
            )
        except RuleViolationError as exc:
            apply_rule_errors(self, exc.errors, {f"targeting.{k}": f"targeting_{k}" for k in validation.TARGETING_KEYS})
        return cleaned


class CreativeAdminForm(forms.ModelForm):
    variants = forms.JSONField(required=False, help_text=VARIANTS_HELP, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = Creative
        fields = ["campaign", "headline", "body", "image_url", "landing_url", "product_id", "variants"]

    def spec(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "headline": d.get("headline") or "",
            "body": d.get("body") or "",
            "image_url": d.get("image_url") or "",
            "landing_url": d.get("landing_url") or "",
            "product_id": d.get("product_id") or None,
            "variants": d.get("variants") or [],
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.errors or not self.has_changed():
            return cleaned
        try:
            services.creative_validate(spec=self.spec())
        except RuleViolationError as exc:
            apply_rule_errors(self, exc.errors)
        return cleaned


class AdvertiserAdminForm(forms.ModelForm):
    class Meta:
        model = Advertiser
        fields = ["name", "currency", "timezone"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        apply_rule_errors(self, validation.check_advertiser(cleaned))
        return cleaned


class PlacementAdminForm(forms.ModelForm):
    page_types = forms.MultipleChoiceField(
        choices=[(p, p) for p in validation.PAGE_TYPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Placement
        fields = ["key", "page_types", "slots", "floor_cpm"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        apply_rule_errors(self, validation.check_placement(cleaned))
        return cleaned


class RejectForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}), label="Reason for rejection")
