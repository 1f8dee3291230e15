"""The language a customer writes in, from their words: Russian, Ukrainian or English.

A platform's language setting says how the customer's app is set up, not what they
write (a Ukrainian with an English phone writes Ukrainian), and Slack and email say
nothing at all. So the first message decides, when it is clear: letters only one of
the two Cyrillic languages has (і ї є ґ against ы э ъ ё), else words common in one
and rare in the other; Latin text is English only with English words in it. When
the text says too little (a greeting, a number), None: the platform's setting, or
the desk's default, stands.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-zа-яёіїєґ']+")
UKRAINIAN_LETTERS = frozenset("іїєґ")
RUSSIAN_LETTERS = frozenset("ыэъё")
UKRAINIAN_WORDS = frozenset(
    "що як це мені мій моє моя мого де коли чому дякую будь ласка привіт вітаю "
    "не можу хочу треба потрібно замовлення замовив замовила скільки триває "
    "мене його він вона вони ні нема немає з із який яка яке є "
    "картка картку гроші повернути тиждень сьогодні вчора чи ви ваш вже ще "
    "та й або але добрий день".split()
)
RUSSIAN_WORDS = frozenset(
    "что как это мне мой моё моя моего где когда почему спасибо пожалуйста "
    "привет здравствуйте не могу хочу надо нужно заказ заказал заказала сколько "
    "идет идёт меня его он она они нет из какой какая какое есть "
    "карта карту деньги вернуть неделю сегодня вчера ли вы ваш уже еще или но "
    "добрый день".split()
)
# a word both languages spell alike tells them not apart
UKRAINIAN_WORDS, RUSSIAN_WORDS = (
    UKRAINIAN_WORDS - RUSSIAN_WORDS,
    RUSSIAN_WORDS - UKRAINIAN_WORDS,
)
ENGLISH_WORDS = frozenset(
    "the a an is are was my me i you your we our it this that what where when how "
    "why can could would please thanks thank hello hi order delivery payment card "
    "refund not do does did have has with for to of in on and or but".split()
)


def detect(text: str) -> str | None:
    """ "uk", "ru" or "en" when the text says so clearly; None when it does not."""
    lowered = text.lower()
    letters = set(lowered)
    uk = len(letters & UKRAINIAN_LETTERS)
    ru = len(letters & RUSSIAN_LETTERS)
    words = _WORD.findall(lowered)
    uk_words = sum(w in UKRAINIAN_WORDS for w in words)
    ru_words = sum(w in RUSSIAN_WORDS for w in words)
    cyrillic = sum(1 for ch in lowered if "а" <= ch <= "я" or ch in "ёіїєґ")
    latin = sum(1 for ch in lowered if "a" <= ch <= "z")
    if cyrillic >= max(3, latin):
        uk_score, ru_score = 2 * uk + uk_words, 2 * ru + ru_words
        if uk_score > ru_score:
            return "uk"
        if ru_score > uk_score:
            return "ru"
        return None  # Cyrillic, but nothing tells the two apart
    if latin >= 3 and sum(w in ENGLISH_WORDS for w in words) >= 2:
        return "en"
    return None
