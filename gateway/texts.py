"""Customer-facing texts from config, in the customer's language."""

from __future__ import annotations

from gateway.config.models import TextsSection


def pick_language(variants: dict[str, str], language: str | None, default: str) -> str:
    """The best variant: exact (pt-BR), then base language (pt), then the default."""
    if language:
        if language in variants:
            return variants[language]
        base = language.split("-", 1)[0].lower()
        if base in variants:
            return variants[base]
    return variants[default]


def render(
    texts: TextsSection, name: str, language: str | None, default_language: str, **values: object
) -> str:
    value = getattr(texts, name)
    template = value if isinstance(value, str) else pick_language(value, language, default_language)
    return template.format(**values)
