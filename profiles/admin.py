"""Admin for operators: segments (name, size, description), shopper profiles (read-only),
embedding versions and the active-version pointers (switchable here). The beat schedules
of embedding refresh and segment recompute are under "Periodic tasks" (django-celery-beat)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from adplatform.admin import ReadOnlyAdmin

from . import vectors
from .models import EmbeddingSpace, EmbeddingVersion, Profile, Segment, SegmentRun


@admin.register(Segment)
class SegmentAdmin(ReadOnlyAdmin):
    list_display = ("name", "key", "size", "active", "description", "updated_at")
    list_filter = ("active",)
    search_fields = ("name", "key", "description")
    readonly_fields = ("key", "name", "size", "active", "description", "traits", "run", "updated_at")


@admin.register(SegmentRun)
class SegmentRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "started_at", "finished_at", "users", "k", "embedding_version")
    readonly_fields = ("started_at", "finished_at", "users", "k", "embedding_version", "stats")


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdmin):
    list_display = ("user_key", "consent", "frequency", "orders", "monetary", "last_event_at", "updated_at")
    search_fields = ("user_key",)
    list_filter = ("consent",)
    show_full_result_count = False


@admin.register(EmbeddingVersion)
class EmbeddingVersionAdmin(ReadOnlyAdmin):
    list_display = ("kind", "version", "dim", "rows", "model", "index_name", "created_at", "refreshed_at")
    list_filter = ("kind",)


class EmbeddingSpaceForm(forms.ModelForm):
    class Meta:
        model = EmbeddingSpace
        fields = ("active_version",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind = self.instance.kind
        choices = EmbeddingVersion.objects.filter(kind=kind).order_by("-created_at").values_list("version", flat=True)
        self.fields["active_version"] = forms.ChoiceField(choices=[(v, v) for v in choices])


@admin.register(EmbeddingSpace)
class EmbeddingSpaceAdmin(ReadOnlyAdmin):
    """The pointers: switching the served version is one update (vectors.activate)."""

    form = EmbeddingSpaceForm
    list_display = ("kind", "active_version", "updated_at")

    def has_change_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        return self.has_module_permission(request)

    def save_model(self, request: HttpRequest, obj: EmbeddingSpace, form: Any, change: bool) -> None:
        vectors.activate(kind=obj.kind, version=form.cleaned_data["active_version"])
