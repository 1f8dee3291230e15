"""The language a customer writes in, from their words: Russian, Ukrainian, English,
German or Spanish (the languages the built-in texts speak).

A platform's language setting says how the customer's app is set up, not what they
write (a Ukrainian with an English phone writes Ukrainian), and Slack and email say
nothing at all. So the first message decides, when it is clear: letters only one of
the two Cyrillic languages has (і ї є ґ against ы э ъ ё), else words common in one
and rare in the other; Latin text is English only with English words in it. When
the text says too little (a greeting, a number), None: the platform's setting, or
the desk's default, stands.

Russian and Ukrainian typed in Latin letters ("skilky koshtuye dostavka") are told
apart by their common words in that spelling and by the Ukrainian infinitive's
-ty (oplatyty against oplatit).
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-zäöüßáéíóúñа-яёіїєґ']+")
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


#: German and Spanish, the other languages the built-in texts speak
GERMAN_WORDS = frozenset(
    "ich du sie wir ist sind nicht und oder aber mein meine meinen meiner bestellung "
    "wo wann wie warum lieferung versand bitte danke hallo guten tag kann können "
    "habe hat noch schon das die der den dem ein eine mit für auf zu von bei ja nein "
    "geld zurück karte zahlen paket".split()
)
SPANISH_WORDS = frozenset(
    "yo tú usted es está están y pero mi mis pedido dónde donde cuándo cuando cómo "
    "como qué que por favor gracias hola buenos días puedo puede tengo tiene el la "
    "los las un una con para del envío entrega dinero tarjeta pagar devolver paquete".split()
)
_LATIN_SCRIPT_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzäöüßáéíóúñ")

UKRAINIAN_LATIN = frozenset(
    "shcho shho yak de koly chomu chy mozhna skilky skilki meni mene moye moya miy tse "
    "ye nemaye nema khochu potriben potribno potribna dyakuyu dyakuju bud laska pryvit "
    "vitayu zamovlennya zamovlennia zamovyty kartka kartkoyu hroshi groshi tyzhden "
    "sohodni vchora vzhe shche abo ale vid pislya nyni zaraz".split()
)
RUSSIAN_LATIN = frozenset(
    "chto shto kak gde kogda pochemu li mozhno skolko mne menya moy moyo eto est net "
    "hochu nuzhno nuzhen nuzhna spasibo pozhaluysta pozhalujsta privet zdravstvuyte "
    "zakaz zakazal karta kartoy dengi nedelyu segodnya vchera uzhe eshche ili no "
    "posle seychas".split()
)
_LATIN_WORD = re.compile(r"[a-z']+")


def _transliterated(words: list[str]) -> str | None:
    """ "uk" or "ru" for Latin-typed words of one of them, None when unclear."""
    uk = sum(w in UKRAINIAN_LATIN for w in words)
    ru = sum(w in RUSSIAN_LATIN for w in words)
    uk += sum(len(w) > 4 and w.endswith(("yty", "aty", "uty")) for w in words)
    if uk > ru:
        return "uk"
    if ru > uk:
        return "ru"
    return None


def _latin_language(words: list[str], letters: set[str]) -> str | None:
    """English, German or Spanish, by two or more of its common words (and letters
    only it has) and more of them than of the others."""
    scores = {
        "en": sum(w in ENGLISH_WORDS for w in words),
        "de": sum(w in GERMAN_WORDS for w in words) + 2 * len(letters & set("äöüß")),
        "es": sum(w in SPANISH_WORDS for w in words) + 2 * len(letters & set("ñ¿¡")),
    }
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    (best, score), (_, runner_up) = ranked[0], ranked[1]
    return best if score >= 2 and score > runner_up else None


def detect(text: str) -> str | None:
    """ "uk", "ru", "en", "de" or "es" when the text says so clearly; None when it
    does not."""
    lowered = text.lower()
    letters = set(lowered)
    uk = len(letters & UKRAINIAN_LETTERS)
    ru = len(letters & RUSSIAN_LETTERS)
    words = _WORD.findall(lowered)
    uk_words = sum(w in UKRAINIAN_WORDS for w in words)
    ru_words = sum(w in RUSSIAN_WORDS for w in words)
    cyrillic = sum(1 for ch in lowered if "а" <= ch <= "я" or ch in "ёіїєґ")
    latin = sum(1 for ch in lowered if ch in _LATIN_SCRIPT_LETTERS)
    if cyrillic >= max(3, latin):
        uk_score, ru_score = 2 * uk + uk_words, 2 * ru + ru_words
        if uk_score > ru_score:
            return "uk"
        if ru_score > uk_score:
            return "ru"
        return None  # Cyrillic, but nothing tells the two apart
    if latin >= 3:
        said = _latin_language(words, letters)
        if said is not None:
            return said
    if latin >= 3 and cyrillic == 0:
        return _transliterated(_LATIN_WORD.findall(lowered))
    return None
