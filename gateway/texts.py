"""Customer-facing texts from config, in the customer's language."""

from __future__ import annotations

from gateway.config.replies import TextsSection
from gateway.texts_builtin import builtin


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
    if isinstance(value, dict):
        template = pick_language(value, language, default_language)
    elif name in texts.model_fields_set:
        template = value  # the admin's own words, in the language they chose
    else:
        template = builtin(name, language, default_language) or value
    return template.format(**values)
