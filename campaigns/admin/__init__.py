"""Django admin for advertisers: staff users see and change only the advertisers they are
members of (superusers see everything). Every save, bulk action and review goes through
the services, so it writes events with the staff user as actor; history and reports
are read from the event log and the reports projection.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.html import format_html

from campaigns import selectors, services
from campaigns.models import Advertiser, AdvertiserMembership, Campaign, Creative, Placement
from campaigns.validation import RuleViolationError

from .charts import Point, line_chart
from .forms import (
    AdvertiserAdminForm,
    CampaignAdminForm,
    CreativeAdminForm,
    PlacementAdminForm,
    RejectForm,
)

REPORT_DEFAULT_DAYS = 30
MESSAGE_PAUSED = "Paused {n} campaign(s)."
MESSAGE_RESUMED = "Resumed {n} campaign(s)."
MESSAGE_APPROVED = "Approved {n} creative(s)."
MESSAGE_REJECTED = "Rejected {n} creative(s)."
MESSAGE_ACTION_FAILED = "{name}: {error}"


def _actor(request: HttpRequest) -> str:
    return f"user:{request.user.pk}"


def advertiser_scope(request: HttpRequest) -> frozenset[int] | None:
    """The advertiser ids this staff user acts for; None = all (superuser)."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return frozenset()
    if user.is_superuser:
        return None
    cached = getattr(request, "_advertiser_scope", None)
    if cached is None:
        cached = frozenset(AdvertiserMembership.objects.filter(user_id=user.pk).values_list("advertiser_id", flat=True))
        request._advertiser_scope = cached  # type: ignore[attr-defined]
    return cached


class AdvertiserScopedAdmin(admin.ModelAdmin):
    """Permissions come from membership, not from Django model permissions: a member
    may view and change its advertiser's objects; nobody deletes (history is kept)."""

    advertiser_field = "advertiser_id"

    def _in_scope(self, request: HttpRequest, obj: Any | None) -> bool:
        scope = advertiser_scope(request)
        if scope is None:
            return True
        if not scope:
            return False
        return obj is None or getattr(obj, self.advertiser_field) in scope

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._in_scope(request, None)

    def has_view_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return self._in_scope(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return self._in_scope(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._in_scope(request, None)

    def has_delete_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        scope = advertiser_scope(request)
        if scope is None:
            return qs
        return qs.filter(**{f"{self.advertiser_field}__in": scope})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        scope = advertiser_scope(request)
        if scope is not None:
            if db_field.name == "advertiser":
                kwargs["queryset"] = Advertiser.objects.filter(pk__in=scope)
            elif db_field.name == "campaign":
                kwargs["queryset"] = Campaign.objects.filter(advertiser_id__in=scope)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> Any:
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404
        entries = [
            (e, [(k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in e.changes])
            for e in self.history_entries(obj)
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {obj}",
            "subtitle": None,
            "object": obj,
            "opts": self.model._meta,
            "entries": entries,
        }
        return TemplateResponse(request, "admin/campaigns/event_history.html", context)

    def history_entries(self, obj: Any) -> list[selectors.HistoryEntry]:
        return []


# --- advertisers ---------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = AdvertiserMembership
    extra = 1
    verbose_name = "staff member"

    def has_view_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return request.user.is_superuser

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission  # type: ignore[assignment]


@admin.register(Advertiser)
class AdvertiserAdmin(AdvertiserScopedAdmin):
    advertiser_field = "pk"
    form = AdvertiserAdminForm
    list_display = ("name", "currency", "timezone", "campaign_count")
    search_fields = ("name",)
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = Advertiser.objects.all()
        scope = advertiser_scope(request)
        return qs if scope is None else qs.filter(pk__in=scope)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)  # operators onboard advertisers

    def get_readonly_fields(self, request: HttpRequest, obj: Any | None = None) -> tuple[str, ...]:
        return ("currency",) if obj is not None else ()

    @admin.display(description="Campaigns")
    def campaign_count(self, obj: Advertiser) -> int:
        return Campaign.objects.filter(advertiser_id=obj.pk).count()

    def save_model(self, request: HttpRequest, obj: Advertiser, form: Any, change: bool) -> None:
        d = form.cleaned_data
        if change:
            services.advertiser_update(
                advertiser_id=obj.pk, changes={"name": d["name"], "timezone": d["timezone"]}, actor=_actor(request)
            )
        else:
            obj.pk = services.advertiser_create(
                name=d["name"], currency=d["currency"], timezone_name=d["timezone"], actor=_actor(request)
            )
        obj.refresh_from_db()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # memberships are access configuration (not domain events): saved directly
        for inline_form in formset.forms:
            if inline_form.instance.advertiser_id is None:
                inline_form.instance.advertiser_id = form.instance.pk
        formset.save()

    def history_entries(self, obj: Any) -> list[selectors.HistoryEntry]:
        return selectors.advertiser_history(advertiser_id=obj.pk)


@admin.register(AdvertiserMembership)
class AdvertiserMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "advertiser")
    list_select_related = ("user",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return self.has_module_permission(request)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission  # type: ignore[assignment]


# --- creatives -------------------------------------------------------------------------------


class CreativeInline(admin.StackedInline):
    model = Creative
    form = CreativeAdminForm
    fk_name = "campaign"
    extra = 0
    can_delete = False
    fields = ("headline", "body", "image_url", "landing_url", "product_id", "variants", "status", "review_reason")
    readonly_fields = ("status", "review_reason")
    show_change_link = True

    def has_view_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return advertiser_scope(request) != frozenset()

    def has_change_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return self.has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return self.has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return False


def _status_badge(status: str) -> str:
    colors = {
        "active": "#2e7d32",
        "approved": "#2e7d32",
        "paused": "#ef6c00",
        "pending_review": "#1565c0",
        "draft": "#757575",
        "ended": "#424242",
        "rejected": "#c62828",
    }
    return format_html(
        '<span style="background:{};color:#fff;border-radius:8px;padding:1px 8px;font-size:11px">{}</span>',
        colors.get(status, "#757575"),
        status.replace("_", " "),
    )


@admin.register(Creative)
class CreativeAdmin(AdvertiserScopedAdmin):
    form = CreativeAdminForm
    list_display = ("headline", "campaign", "status_badge", "product_id", "updated_at")
    list_filter = ("status",)
    search_fields = ("headline", "product_id")
    readonly_fields = ("status", "review_reason")
    actions = ["approve_selected", "reject_selected", "pause_selected", "resume_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any | None = None) -> tuple[str, ...]:
        return ("campaign", "status", "review_reason") if obj is not None else ("status", "review_reason")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not request.user.is_superuser:  # reviewing is the operator's job, not the advertiser's
            actions.pop("approve_selected", None)
            actions.pop("reject_selected", None)
        return actions

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Creative) -> str:
        return _status_badge(obj.status)

    def save_model(self, request: HttpRequest, obj: Creative, form: Any, change: bool) -> None:
        spec = form.spec()
        if change:
            services.creative_update(creative_id=obj.pk, changes=spec, actor=_actor(request))
        else:
            campaign = form.cleaned_data["campaign"]
            obj.pk = services.creative_create(
                advertiser_id=campaign.advertiser_id, campaign_id=campaign.pk, spec=spec, actor=_actor(request)
            )
        obj.refresh_from_db()

    def history_entries(self, obj: Any) -> list[selectors.HistoryEntry]:
        return [h for h in selectors.campaign_history(campaign_id=obj.campaign_id) if h.stream == f"creative:{obj.pk}"]

    def _each(self, request: HttpRequest, queryset: QuerySet[Creative], fn: Any, message: str) -> None:
        done = 0
        for creative in queryset:
            try:
                done += bool(fn(creative))
            except (RuleViolationError, services.NotFoundError) as exc:
                error = "; ".join(m for ms in getattr(exc, "errors", {"": [str(exc)]}).values() for m in ms)
                self.message_user(request, MESSAGE_ACTION_FAILED.format(name=creative, error=error), messages.ERROR)
        self.message_user(request, message.format(n=done), messages.SUCCESS)

    @admin.action(description="Approve selected creatives")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Creative]) -> None:
        if not request.user.is_superuser:
            raise Http404
        self._each(
            request,
            queryset,
            lambda c: services.creative_review(creative_id=c.pk, decision="approve", actor=_actor(request)),
            MESSAGE_APPROVED,
        )

    @admin.action(description="Reject selected creatives…")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Creative]) -> HttpResponse | None:
        if not request.user.is_superuser:
            raise Http404
        form = RejectForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            self._each(
                request,
                queryset,
                lambda c: services.creative_review(
                    creative_id=c.pk, decision="reject", reason=reason, actor=_actor(request)
                ),
                MESSAGE_REJECTED,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject creatives",
            "creatives": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/campaigns/creative/reject.html", context)

    @admin.action(description="Pause selected creatives")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Creative]) -> None:
        self._each(
            request,
            queryset,
            lambda c: services.creative_set_paused(creative_id=c.pk, paused=True, actor=_actor(request)),
            "Paused {n} creative(s).",
        )

    @admin.action(description="Resume selected creatives")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Creative]) -> None:
        self._each(
            request,
            queryset,
            lambda c: services.creative_set_paused(creative_id=c.pk, paused=False, actor=_actor(request)),
            "Resumed {n} creative(s).",
        )


# --- campaigns -------------------------------------------------------------------------------


@admin.register(Campaign)
class CampaignAdmin(AdvertiserScopedAdmin):
    form = CampaignAdminForm
    inlines = [CreativeInline]
    list_display = (
        "name",
        "advertiser",
        "status_badge",
        "bid_display",
        "budget_display",
        "spent_today",
        "start",
        "end",
        "report_link",
    )
    list_filter = ("status", "objective", "bid_model")
    search_fields = ("name",)
    actions = ["pause_selected", "resume_selected"]
    change_form_template = "admin/campaigns/campaign/change_form.html"

    def get_list_filter(self, request: HttpRequest) -> tuple[Any, ...]:
        base = tuple(self.list_filter)
        return (*base, "advertiser") if request.user.is_superuser else base

    def get_fieldsets(self, request: HttpRequest, obj: Any | None = None) -> Any:
        basics = (
            ["advertiser", "name", "objective"]
            if obj is None
            else ["status_badge", "spend_summary", "name", "objective"]
        )
        if obj is None:
            basics.append("launch_status")
        return [
            (None, {"fields": basics}),
            ("Bid and budget", {"fields": ["bid_model", "bid", "daily_budget", "total_budget", "currency"]}),
            ("Schedule", {"fields": ["start", "end", "timezone", "dayparts", "pacing"]}),
            ("Frequency", {"fields": ["frequency_caps"]}),
            ("Targeting", {"fields": [f"targeting_{k}" for k in selectors.TARGETING_KEYS], "classes": ["collapse"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any | None = None) -> tuple[str, ...]:
        return ("currency", "status_badge", "spend_summary") if obj is not None else ()

    @admin.display(description="Spent")
    def spend_summary(self, obj: Campaign) -> str:
        today, total = selectors.spend_of(campaign_id=obj.pk, at=timezone.now(), timezone_name=obj.timezone)
        return (
            f"{_money(today, obj.currency)} today (of {_money(obj.daily_budget, obj.currency)}), "
            f"{_money(total, obj.currency)} in total (of {_money(obj.total_budget, obj.currency)})"
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Campaign) -> str:
        return _status_badge(selectors.effective_status(obj, now=timezone.now()))

    @admin.display(description="Bid")
    def bid_display(self, obj: Campaign) -> str:
        return f"{services.money_str(obj.bid)} {obj.currency} {obj.bid_model.upper()}"

    @admin.display(description="Budget (day / total)")
    def budget_display(self, obj: Campaign) -> str:
        return f"{services.money_str(obj.daily_budget) or '–'} / {services.money_str(obj.total_budget) or '–'}"

    @admin.display(description="Spent today")
    def spent_today(self, obj: Campaign) -> str | None:
        return services.money_str(
            selectors.spend_of(campaign_id=obj.pk, at=timezone.now(), timezone_name=obj.timezone)[0]
        )

    @admin.display(description="Report")
    def report_link(self, obj: Campaign) -> str:
        return format_html('<a href="{}">Report</a>', reverse("admin:campaigns_campaign_report", args=[obj.pk]))

    def save_model(self, request: HttpRequest, obj: Campaign, form: CampaignAdminForm, change: bool) -> None:
        spec = form.spec()
        if change:
            services.campaign_update(campaign_id=obj.pk, changes=spec, actor=_actor(request))
        else:
            obj.pk = services.campaign_create(
                advertiser_id=form.cleaned_data["advertiser"].pk,
                spec=spec,
                actor=_actor(request),
                status=form.cleaned_data.get("launch_status") or "active",
            )
        obj.refresh_from_db()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        campaign = form.instance
        # the admin's change message reads these; the services did the saving
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline in formset.forms:
            if not inline.has_changed() or inline in formset.deleted_forms:
                continue
            spec = inline.spec()
            if inline.instance.pk:
                services.creative_update(
                    creative_id=inline.instance.pk,
                    changes=spec,
                    actor=_actor(request),
                    advertiser_id=campaign.advertiser_id,
                )
            else:
                services.creative_create(
                    advertiser_id=campaign.advertiser_id, campaign_id=campaign.pk, spec=spec, actor=_actor(request)
                )

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> Any:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except RuleViolationError as exc:  # a rule broken between validation and save (a race)
            self.message_user(request, "; ".join(m for ms in exc.errors.values() for m in ms), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def history_entries(self, obj: Any) -> list[selectors.HistoryEntry]:
        return selectors.campaign_history(campaign_id=obj.pk)

    def _each(self, request: HttpRequest, queryset: QuerySet[Campaign], fn: Any, message: str) -> None:
        done = 0
        for campaign in queryset:
            try:
                done += bool(fn(campaign))
            except RuleViolationError as exc:
                error = "; ".join(m for ms in exc.errors.values() for m in ms)
                self.message_user(request, MESSAGE_ACTION_FAILED.format(name=campaign, error=error), messages.ERROR)
        self.message_user(request, message.format(n=done), messages.SUCCESS)

    @admin.action(description="Pause selected campaigns")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._each(
            request,
            queryset,
            lambda c: services.campaign_pause(campaign_id=c.pk, actor=_actor(request), advertiser_id=c.advertiser_id),
            MESSAGE_PAUSED,
        )

    @admin.action(description="Resume selected campaigns")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._each(
            request,
            queryset,
            lambda c: services.campaign_resume(campaign_id=c.pk, actor=_actor(request), advertiser_id=c.advertiser_id),
            MESSAGE_RESUMED,
        )

    # --- report page ---

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:object_id>/report/",
                self.admin_site.admin_view(self.report_view),
                name="campaigns_campaign_report",
            ),
            *[
                path(
                    f"<int:object_id>/{transition}/",
                    self.admin_site.admin_view(self.transition_view),
                    {"transition": transition},
                    name=f"campaigns_campaign_{transition}",
                )
                for transition in ("pause", "resume")
            ],
            *super().get_urls(),
        ]

    def transition_view(self, request: HttpRequest, object_id: int, transition: str) -> HttpResponse:
        """The Pause / Resume buttons of the change page (POST only)."""
        campaign = self.get_object(request, str(object_id))
        if campaign is None or transition not in ("pause", "resume") or request.method != "POST":
            raise Http404
        if not self.has_change_permission(request, campaign):
            raise Http404
        fn = services.campaign_pause if transition == "pause" else services.campaign_resume
        try:
            fn(campaign_id=campaign.pk, actor=_actor(request), advertiser_id=campaign.advertiser_id)
            done = MESSAGE_PAUSED if transition == "pause" else MESSAGE_RESUMED
            self.message_user(request, done.format(n=1), messages.SUCCESS)
        except RuleViolationError as exc:
            self.message_user(request, "; ".join(m for ms in exc.errors.values() for m in ms), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def report_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        campaign = self.get_object(request, str(object_id))
        if campaign is None or not self.has_view_permission(request, campaign):
            raise Http404
        today = timezone.now().date()
        date_to = parse_date(request.GET.get("to") or "") or today
        date_from = parse_date(request.GET.get("from") or "") or date_to - timedelta(days=REPORT_DEFAULT_DAYS - 1)
        if date_from > date_to or (date_to - date_from).days > 365:
            date_from = date_to - timedelta(days=REPORT_DEFAULT_DAYS - 1)
        days = selectors.report_lines(
            advertiser_id=campaign.advertiser_id,
            campaign_id=campaign.pk,
            date_from=date_from,
            date_to=date_to,
            group_by="day",
            fill_days=True,
        )
        totals = selectors.report_total(days)
        headlines = dict(Creative.objects.filter(campaign_id=campaign.pk).values_list("id", "headline"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Report: {campaign.name}",
            "subtitle": None,
            "opts": self.model._meta,
            "campaign": campaign,
            "original": campaign,
            "date_from": date_from,
            "date_to": date_to,
            "currency": campaign.currency,
            "totals": totals,
            "tiles": _tiles(totals, campaign.currency),
            "charts": _charts(days, campaign.currency),
            "days": days,
            "day_rows": [
                (line.key, line, _pct(line.ctr), _money(line.spend, ""), _money(line.revenue, ""), _ratio(line.roas))
                for line in days
            ],
            "breakdowns": [
                (
                    title,
                    [
                        (headlines.get(line.key, line.key) if group == "creative" else line.key, line)
                        for line in selectors.report_lines(
                            advertiser_id=campaign.advertiser_id,
                            campaign_id=campaign.pk,
                            date_from=date_from,
                            date_to=date_to,
                            group_by=group,
                        )
                    ],
                )
                for title, group in (("Creative", "creative"), ("Placement", "placement"), ("Segment", "segment"))
            ],
        }
        return TemplateResponse(request, "admin/campaigns/campaign/report.html", context)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.2f}%"


def _ratio(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


def _money(v: Decimal | None, currency: str) -> str:
    return "–" if v is None else f"{v.quantize(Decimal('0.01')):,} {currency}"


def _tiles(t: selectors.ReportLine, currency: str) -> list[tuple[str, str]]:
    return [
        ("Impressions", f"{t.impressions:,}"),
        ("Clicks", f"{t.clicks:,}"),
        ("CTR", _pct(t.ctr)),
        ("Conversions", f"{t.conversions:,}"),
        ("CVR", _pct(t.cvr)),
        ("Spend", _money(t.spend, currency)),
        ("Revenue", _money(t.revenue, currency)),
        ("CPC", _money(t.cpc, currency)),
        ("CPA", _money(t.cpa, currency)),
        ("ROAS", _ratio(t.roas)),
    ]


def _charts(days: list[selectors.ReportLine], currency: str) -> list[tuple[str, Any]]:
    """(title, inline SVG) per metric, one point per UTC day."""
    specs: list[tuple[str, str, Any, Any, str, bool]] = [
        ("Impressions", "impressions", lambda x: x.impressions, lambda v: f"{v:,.0f}", "#417690", True),
        ("Clicks", "clicks", lambda x: x.clicks, lambda v: f"{v:,.0f}", "#417690", True),
        ("CTR", "ctr", lambda x: x.ctr, lambda v: f"{v * 100:.2f}%", "#7b1fa2", False),
        ("Conversions", "conversions", lambda x: x.conversions, lambda v: f"{v:,.0f}", "#2e7d32", True),
        (f"Spend ({currency})", "spend", lambda x: float(x.spend), lambda v: f"{v:,.2f}", "#ef6c00", False),
        ("ROAS (revenue / spend)", "roas", lambda x: x.roas, lambda v: f"{v:.2f}×", "#c62828", False),
    ]
    return [
        (
            title,
            line_chart(
                title=title,
                slug=slug,
                points=[Point(line.key.strftime("%m-%d"), value(line)) for line in days],
                fmt=fmt,
                color=color,
                integer=integer,
            ),
        )
        for title, slug, value, fmt, color, integer in specs
    ]


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    form = PlacementAdminForm
    list_display = ("key", "page_types", "slots", "floor_cpm")
    search_fields = ("key",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return advertiser_scope(request) != frozenset()

    def has_view_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return self.has_module_permission(request)  # members see placement keys to target them

    def has_change_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    has_add_permission = has_change_permission

    def has_delete_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any | None = None) -> tuple[str, ...]:
        return ("key",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Placement, form: Any, change: bool) -> None:
        d = form.cleaned_data
        spec = {
            "key": obj.key if change else d["key"],
            "page_types": d["page_types"],
            "slots": d["slots"],
            "floor_cpm": d["floor_cpm"],
        }
        obj.pk, _ = services.placement_upsert(spec=spec, actor=_actor(request))
        obj.refresh_from_db()
