"""Customer texts in the conversation's language, built-in ones included."""

from __future__ import annotations

import string

import pytest

from gateway.config.replies import TextsSection
from gateway.language import detect
from gateway.texts import render
from gateway.texts_builtin import BUILTIN


def test_a_russian_desk_sends_the_built_in_texts_in_russian() -> None:
    """The admin wrote only the greeting: the reminder, the queue place and the
    closing text must not arrive in English to a customer greeted in Russian."""
    texts = TextsSection(greeting="Здравствуйте!")
    assert render(texts, "greeting", None, "ru") == "Здравствуйте!"
    assert render(texts, "still_working", None, "ru").startswith("Мы о вас не забыли")
    assert "3-й" in render(texts, "queued", "ru-RU", "en", position=3)
    assert render(texts, "closed", "uk", "en").startswith("Цю розмову закрито")
    # English when the customer writes English, whatever the desk's default
    assert render(texts, "still_working", "en", "ru").startswith("We have not forgotten")


def test_the_admins_own_text_is_kept_as_written() -> None:
    texts = TextsSection(still_working="Hang on, we are on it.")
    assert render(texts, "still_working", "ru", "ru") == "Hang on, we are on it."


@pytest.mark.parametrize("name", sorted(TextsSection.model_fields))
def test_every_built_in_text_has_its_translations_with_the_same_placeholders(name: str) -> None:
    english = getattr(TextsSection(), name)
    wanted = {f for _, f, _, _ in string.Formatter().parse(english) if f}
    assert set(BUILTIN[name]) >= {"ru", "uk"}
    for text in BUILTIN[name].values():
        assert {f for _, f, _, _ in string.Formatter().parse(text) if f} == wanted


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Де моє замовлення?", "uk"),
        ("Скільки триває доставка?", "uk"),
        ("Як повернути товар?", "uk"),
        ("Где мой заказ?", "ru"),
        ("Сколько идет доставка?", "ru"),
        ("Забыл пароль", "ru"),
        ("Where is my order?", "en"),
        ("Can I pay by card?", "en"),
        ("Wo ist meine Bestellung?", "de"),
        ("Wie lange dauert die Lieferung?", "de"),
        ("¿Dónde está mi pedido?", "es"),
        ("¿Cuánto cuesta el envío?", "es"),
        # typed in Latin letters
        ("skolko stoit dostavka", "ru"),
        ("hochu otmenit zakaz", "ru"),
        ("skilky koshtuye dostavka", "uk"),
        ("chy mozhna oplatyty kartkoyu", "uk"),
        # too little to tell: the platform's setting or the desk's default stands
        ("hi", None),
        ("доставка", None),
        ("12345", None),
    ],
)
def test_the_language_comes_from_what_the_customer_writes(text: str, language: str | None) -> None:
    assert detect(text) == language
