"""What the desk says by itself: the texts customers get (greeting, queue,
closing, CSAT...) in each language, and the FAQ the auto-replies answer from."""

from __future__ import annotations

import string
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from gateway.config.base import Problems, Section, check_language, check_slug

TextValue = str | dict[str, str]
#: placeholders each text may use; anything else is a typo an admin should hear of
TEXT_PLACEHOLDERS: dict[str, set[str]] = {
    "greeting": set(),
    "queued": {"position"},
    "assigned": {"operator"},
    "away": set(),
    "outside_hours": {"opens"},
    "still_working": set(),
    "closed": set(),
    "csat_ask": set(),
    "csat_comment": set(),
    "csat_thanks": set(),
    "transferred": {"operator"},
    "faq_footer": set(),
    "faq_suggest": set(),
    "faq_person": set(),
    "faq_person_ack": set(),
    "faq_feedback": set(),
    "faq_helped": set(),
    "card_hidden": set(),
    "web_intro": set(),
    "web_closed": {"opens"},
    "web_contact": set(),
    "web_contact_thanks": {"email"},
}


def placeholder_problem(text: str, allowed: set[str]) -> str | None:
    """Why ``text`` cannot be filled in with ``allowed`` (a typo, a stray brace)."""
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        return str(exc)
    unknown = used - allowed
    if not unknown:
        return None
    allowed_text = ", ".join("{" + a + "}" for a in sorted(allowed)) or "none"
    return f"unknown placeholder {{{sorted(unknown)[0]}}} (allowed: {allowed_text})"


class TextsSection(Section):
    greeting: TextValue = "Hello! Thanks for writing to us. A member of our team will answer here."
    queued: TextValue = "All our operators are busy right now. You are number {position} in line."
    assigned: TextValue = "{operator} will help you with this."
    away: TextValue = (
        "Nobody from the team is online right now. We have your message and will answer "
        "as soon as someone is back."
    )
    outside_hours: TextValue = (
        "Thanks for your message! We are closed right now and open again {opens}; "
        "a member of our team will answer you then."
    )
    still_working: TextValue = (
        "We have not forgotten you: your message is with our team and you will get an "
        "answer here. Thank you for your patience."
    )
    closed: TextValue = "This conversation is now closed. Write again any time if you need us."
    csat_ask: TextValue = (
        "How would you rate our help? Reply with a number from 1 (poor) to 5 (excellent)."
    )
    csat_comment: TextValue = (
        "Thank you! If you like, tell us in one message what we could do better."
    )
    csat_thanks: TextValue = "Thank you for your feedback!"
    transferred: TextValue = "{operator} is taking over your conversation."
    faq_footer: TextValue = (
        "This is an automatic answer. If it did not help, just write again: a person "
        "from our team will answer."
    )
    faq_suggest: TextValue = "Did you mean one of these? Reply with its number."
    faq_person: TextValue = "None of these: talk to a person"
    faq_person_ack: TextValue = "Of course: a person from our team will answer you here."
    faq_feedback: TextValue = (
        "This is an automatic answer. Did it help? Reply 1 if it did, or 0 to talk to a person."
    )
    faq_helped: TextValue = "Yes, that helped"
    card_hidden: TextValue = (
        "For your safety we hid the card number you sent: our team never needs it. "
        "Please do not send card details in this chat."
    )
    #: the web chat: above an empty chat; its header outside hours; the prompt for
    #: an address when nobody can answer now (``[web] ask_contact``), and its thanks
    web_intro: TextValue = "Hi! Ask us anything: a person from our team will answer here."
    web_closed: TextValue = "We are closed now and open again {opens}."
    web_contact: TextValue = (
        "Nobody can answer right away. Leave your email and we will write to you there "
        "if you have gone by then."
    )
    web_contact_thanks: TextValue = "Thank you! If you have left, we will answer at {email}."

    @model_validator(mode="after")
    def _placeholders(self) -> TextsSection:
        problems = []
        for name, allowed in TEXT_PLACEHOLDERS.items():
            value = getattr(self, name)
            variants = value.items() if isinstance(value, dict) else [("", value)]
            for lang, text in variants:
                if lang:
                    check_language(lang)
                problem = placeholder_problem(text, allowed)
                if problem is not None:
                    problems.append((f"{name}.{lang}" if lang else name, problem))
        if problems:
            raise Problems(problems)
        return self


class FaqEntryConfig(Section):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str
    #: example phrasings, in any language: the more varied, the better the matching
    questions: list[str] = Field(min_length=1)
    answer: TextValue
    #: the words customers use for this and the examples miss: they count like an
    #: example question's words
    keywords: list[str] = Field(default_factory=list)
    #: words that mean a question is about something else ("courier" job
    #: applications for a delivery entry): a question with one is never this entry
    not_words: list[str] = Field(default_factory=list, alias="not")
    #: only for customers on these channels (empty: all)
    channels: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        return check_slug(value)

    @field_validator("questions")
    @classmethod
    def _questions(cls, value: list[str]) -> list[str]:
        if any(not q.strip() for q in value):
            raise ValueError("an example question is empty")
        return value


class FaqSection(Section):
    #: the score (0-1) from which an answer is sent; higher is more careful
    threshold: float = Field(default=0.45, gt=0, le=1)
    #: when the FAQ answers: when no operator is free (the conversation is queued),
    #: outside hours (the desk closed by [hours], or nobody online and on shift), or
    #: always first, before any operator
    when: Literal["no_operator_free", "outside_hours", "always_first"] = "no_operator_free"
    #: from this score up to the threshold, the closest questions are offered as a
    #: numbered list instead of an answer (0 offers none)
    suggest_threshold: float = Field(default=0.3, ge=0, le=1)
    #: ask "did this help?" under an answer: a yes resolves the conversation, so
    #: nobody picks it up; without it the conversation always waits for a person
    ask_feedback: bool = True
    #: automatic answers (and suggestion lists) per conversation, at most
    max_auto_replies: int = Field(default=2, ge=0, le=20)
    entries: list[FaqEntryConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> FaqSection:
        seen: dict[str, int] = {}
        problems = []
        if self.suggest_threshold >= self.threshold:
            problems.append(
                ("suggest_threshold", f"must be below threshold ({self.threshold:g}), or 0")
            )
        for index, entry in enumerate(self.entries):
            if entry.id in seen:
                problems.append(
                    (
                        f"entries[{index}].id",
                        f"{entry.id!r} is already used by entries[{seen[entry.id]}]",
                    )
                )
            seen.setdefault(entry.id, index)
            if isinstance(entry.answer, dict):
                for lang in entry.answer:
                    check_language(lang)
        if problems:
            raise Problems(problems)
        return self
