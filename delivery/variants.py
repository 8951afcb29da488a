"""Dynamic creative: template variants with slots {category}, {brand}, {product},
{price}, {query} filled from the creative's product and the page context. Filling is literal
text substitution (no format strings, no markup): values are cleaned of control
characters and length-capped; a variant whose slots cannot all be filled is skipped."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from campaigns.selectors import CreativeVariant

SLOT = re.compile(r"\{(category|brand|product|price|query)\}")  # campaigns.validation.VARIANT_SLOTS
HEADLINE_MAX = 120
BODY_MAX = 500
VALUE_MAX = 80


@dataclass(frozen=True)
class Rendered:
    headline: str
    body: str
    variant: int | None  # index into the creative's variants; None = the base creative


def clean_value(value: str) -> str:
    text = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")
    return " ".join(text.split())[:VALUE_MAX]


def fill(template: str, values: Mapping[str, str]) -> str | None:
    """The template with every known slot replaced, or None when a slot has no value.
    Braces that are not one of the four slots stay as they are."""
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(m.group(1))
        if not value:
            missing = True
            return ""
        return value

    out = SLOT.sub(sub, template)
    return None if missing else out


def renderable(variants: tuple[CreativeVariant, ...], values: Mapping[str, str]) -> list[int]:
    """Indexes of the variants whose slots can all be filled."""
    return [
        i
        for i, v in enumerate(variants)
        if fill(v.headline, values) is not None and fill(v.body or "", values) is not None
    ]


def render(
    headline: str, body: str, variants: tuple[CreativeVariant, ...], index: int | None, values: Mapping[str, str]
) -> Rendered:
    if index is not None and 0 <= index < len(variants):
        v = variants[index]
        h = fill(v.headline, values)
        b = fill(v.body, values) if v.body else body
        if h is not None and b is not None:
            return Rendered(headline=h[:HEADLINE_MAX], body=b[:BODY_MAX], variant=index)
    return Rendered(headline=headline, body=body, variant=None)
