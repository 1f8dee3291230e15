"""From a customer's text to the words the FAQ matcher compares: one spelling per word.

Customers of one desk write the same word many ways: Russian and Ukrainian forms
of it (оплатить, оплатити), either typed in Latin letters (oplatyty, skolko), with
and without ь and ё, with any ending. The matcher should not care, so every word
is brought to one skeleton before it is compared:

- a Latin word is read both as English and as Russian/Ukrainian typed in Latin
  letters (transliterated to Cyrillic); the matcher keeps the reading its FAQ
  knows;
- Cyrillic letters the two languages spell differently are folded together
  (і ї ы й → и, є э ё → е, ґ → г, ь ъ and apostrophes dropped), so a Ukrainian
  question meets a Russian example and the other way round;
- the folded word is cut to a stem: Snowball's English stemmer for Latin words,
  and for Cyrillic ones its first letters (a prefix), which joins a word's forms
  and its family (повернення, повернути, повернуть) better than a Russian
  stemmer does on Ukrainian.

Stopwords (greetings, pronouns, "please") are dropped: they say nothing about
what is asked. Everything here is deterministic and local.
"""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer

_WORD = re.compile(r"[^\W\d_]+(?:['’ʼ`][^\W\d_]+)*")
_CYRILLIC = re.compile(r"[а-яёіїєґ]")
_LATIN = re.compile(r"^[a-z'’ʼ`]+$")
_FOLD = str.maketrans(
    {
        "ё": "е",
        "є": "е",
        "э": "е",
        "і": "и",
        "ї": "и",
        "ы": "и",
        "й": "и",
        "ґ": "г",
        "ь": None,
        "ъ": None,
        "'": None,
        "’": None,
        "ʼ": None,
        "`": None,
    }
)
#: how many letters of a folded Cyrillic word make its stem
CYRILLIC_STEM = 5

# Latin → Cyrillic, longest first; the result is folded, so и/і/ы and е/є need no choice
_TRANSLIT = [
    ("shch", "щ"),
    ("sch", "щ"),
    ("zh", "ж"),
    ("kh", "х"),
    ("ts", "ц"),
    ("ch", "ч"),
    ("sh", "ш"),
    ("yu", "ю"),
    ("ya", "я"),
    ("ye", "е"),
    ("yo", "е"),
    ("yi", "и"),
    ("iu", "ю"),
    ("ia", "я"),
    ("ie", "е"),
    ("a", "а"),
    ("b", "б"),
    ("c", "ц"),
    ("d", "д"),
    ("e", "е"),
    ("f", "ф"),
    ("g", "г"),
    ("h", "х"),
    ("i", "и"),
    ("j", "и"),
    ("k", "к"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("o", "о"),
    ("p", "п"),
    ("q", "к"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("v", "в"),
    ("w", "в"),
    ("x", "кс"),
    ("y", "и"),
    ("z", "з"),
]
_TRANSLIT_RE = re.compile("|".join(latin for latin, _ in _TRANSLIT))
_TRANSLIT_MAP = dict(_TRANSLIT)

#: words that say nothing about what is asked, in every spelling the folding makes
_STOP_SOURCE = """
    a an the is are was were be been am to of in on at for and or but i you we my me
    your our it its this that these those do does did can could would will shall
    should please pls hi hello hey there who whom with from
    by about as so if any some just thanks thank ok okay dear good morning evening
    afternoon day yes get got have has had there here they them he she his her us
    и в во на ли же бы а но или у к ко с со о об
    от до по за из для я мне меня мной мы нам нас вы вас вам ты тебя тебе это этот
    эта эти то та те тот есть был была было были можно пожалуйста пожалуста плиз
    здравствуйте привет добрый доброе доброго день вечер утро скажите подскажите
    мой моя мое моё мои моего свой свою свои ваш ваша ваше ваши вашего спасибо
    благодарю уже еще ещё очень вот тут там так все всё он она они его ее её их
    і й та або але чи ж би з зі із від я мені мене ми нас нам
    ви вам ти тебе це цей ця ці є був була було були можна будь ласка вітаю привіт
    добрий доброго вечора ранку скажіть підкажіть мій моя моє мої мого свій свою
    свої ваш ваша ваше ваші вашого дякую вже ще дуже ось тут там так все усе він
    вона вони його її їх
"""


def fold(word: str) -> str:
    """The letters Russian and Ukrainian (and their Latin spellings) share."""
    return word.translate(_FOLD)


def transliterate(word: str) -> str:
    """A Latin-typed Russian or Ukrainian word in (folded) Cyrillic: skolko → сколко."""
    return fold(_TRANSLIT_RE.sub(lambda m: _TRANSLIT_MAP[m.group(0)], word))


STOPWORDS = frozenset(fold(w) for w in _STOP_SOURCE.split())


@lru_cache(maxsize=1)
def _english_stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


def words(text: str) -> list[str]:
    """The text's words, lower-cased, as written (apostrophes inside words kept)."""
    return _WORD.findall(text.lower())


def skeletons(text: str) -> list[str]:
    """The text's meaningful words, folded, stopwords dropped, in order; Latin words
    as written (an FAQ's own texts are read this way)."""
    return [r[0] for r in readings(text)]


def readings(text: str) -> list[tuple[str, ...]]:
    """Each meaningful word's possible skeletons, the likelier first: a Cyrillic word
    has one; a Latin one is English as written or Russian/Ukrainian transliterated,
    and the matcher keeps the reading the FAQ knows."""
    return [candidates for _, candidates in readings_of(text)]


def readings_of(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """``readings``, each with the word as written."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for word in words(text):
        if _LATIN.match(word):
            plain = word.replace("'", "").replace("’", "").replace("ʼ", "").replace("`", "")
            translit = transliterate(plain)
            if plain in STOPWORDS or translit in STOPWORDS:
                continue
            out.append((word, (plain, translit)))
        else:
            folded = fold(word)
            if folded and folded not in STOPWORDS:
                out.append((word, (folded,)))
    return out


@lru_cache(maxsize=100_000)
def stem(folded: str) -> str:
    """The stem of a folded word: Snowball English for Latin, a prefix for Cyrillic."""
    if _CYRILLIC.search(folded):
        return folded[:CYRILLIC_STEM]
    return _english_stemmer().stemWord(folded)
