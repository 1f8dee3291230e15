"""What operators reach for by hand: saved replies (canned responses) and the tags
the Slack card offers. Both reload with the file, like the FAQ."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from gateway.config.base import Section, check_language, check_slug
from gateway.config.replies import TextValue, placeholder_problem

#: what a saved reply may fill in: the customer's name, the operator's, the number
REPLY_PLACEHOLDERS = {"customer", "operator", "conversation"}
#: a tag: letters (any script), digits, ``-`` and ``_``
TAG_RE = re.compile(r"^[^\W][\w-]*$")
TAG_LIMIT = 32


def normal_tag(text: str) -> str | None:
    """``#VIP`` -> ``vip``; None if it is not a tag (spaces, punctuation, too long)."""
    tag = text.strip().lstrip("#").lower()
    if not tag or len(tag) > TAG_LIMIT or not TAG_RE.match(tag):
        return None
    return tag


class SavedReply(Section):
    #: what operators type: ``/r refund``
    name: str
    text: TextValue
    #: what menus and buttons show (default: the name)
    title: str | None = Field(default=None, max_length=60)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        return check_slug(value)

    @field_validator("text")
    @classmethod
    def _placeholders(cls, value: TextValue) -> TextValue:
        variants = value.items() if isinstance(value, dict) else [("", value)]
        for lang, text in variants:
            if lang:
                check_language(lang)
            if not text.strip():
                raise ValueError("is empty")
            problem = placeholder_problem(text, REPLY_PLACEHOLDERS)
            if problem is not None:
                raise ValueError(problem)
        return value

    @property
    def label(self) -> str:
        return self.title or self.name


class TagsSection(Section):
    #: the tags the Slack card's menu offers (any tag can be typed with /tag)
    suggested: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("suggested")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags = []
        for text in value:
            tag = normal_tag(text)
            if tag is None:
                raise ValueError(
                    f"{text!r} is not a tag: one word of letters, digits, - or _ "
                    f"(at most {TAG_LIMIT} characters)"
                )
            tags.append(tag)
        return list(dict.fromkeys(tags))


def check_replies(replies: list[SavedReply], default_language: str) -> list[tuple[str, str]]:
    """Names used twice, and texts lacking the default language's variant."""
    problems = []
    seen: dict[str, int] = {}
    for index, reply in enumerate(replies):
        if reply.name in seen:
            problems.append(
                (
                    f"replies[{index}].name",
                    f"{reply.name!r} is already used by replies[{seen[reply.name]}]",
                )
            )
        seen.setdefault(reply.name, index)
        if isinstance(reply.text, dict) and default_language not in reply.text:
            problems.append(
                (
                    f"replies[{index}].text",
                    f"has no {default_language!r} variant, which gateway.default_language "
                    "needs as the fallback",
                )
            )
    return problems


__all__ = ["SavedReply", "TagsSection", "check_replies", "normal_tag"]
