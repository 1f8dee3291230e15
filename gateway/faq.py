"""FAQ matching: which configured answer (if any) a customer's question asks for.

Precision over recall: a wrong automatic answer annoys more than none. Every
example phrasing of every entry is indexed as a bag of character trigrams of its
stemmed words (Snowball: Russian for Cyrillic, which also takes most Ukrainian
endings; English for Latin), weighted by TF-IDF. Trigrams absorb typos and the
endings a stemmer misses; stems absorb inflection; a bag ignores word order. The
score is the best cosine similarity over an entry's phrasings, a number in [0, 1],
plus a small bonus for a configured keyword. Everything is deterministic and local:
nothing is downloaded.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import snowballstemmer

if TYPE_CHECKING:
    from gateway.config.models import FaqSection

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-яёіїєґ]")
#: words that say nothing about what is asked; dropped before scoring
STOPWORDS = frozenset(
    """
    a an the is are was be been to of in on at for and or but i you we my me your our it
    this that do does did can could would will please hi hello hey there how what when
    where why which who whom with from by about as so if not no yes any some just
    и в во на не что как где когда почему зачем ли же бы а но или у к ко с со о об от
    до по за из для я мне меня мы вы вас вам ты тебя это этот эта есть был была было
    можно пожалуйста здравствуйте привет добрый день скажите подскажите мой моя мое мои
    і й та або але що як де коли чому чи ж би з зі із до від по за для я мені мене ми
    ви вас вам ти тебе це цей ця є був була було можна будь ласка вітаю привіт добрий
    скажіть підкажіть мій моя моє мої
    """.split()
)


@lru_cache(maxsize=1)
def _stemmers() -> tuple[snowballstemmer.stemmer, snowballstemmer.stemmer]:
    return snowballstemmer.stemmer("russian"), snowballstemmer.stemmer("english")


def normalise(text: str) -> list[str]:
    """Lower-cased words, ё as е, without stopwords, stemmed."""
    words = _WORD.findall(text.lower().replace("ё", "е"))
    return [_stem(w) for w in words if w not in STOPWORDS]


def word_count(text: str) -> int:
    """Words as written, stopwords included: "where is my order" is four."""
    return len(_WORD.findall(text))


@lru_cache(maxsize=50_000)
def _stem(word: str) -> str:
    russian, english = _stemmers()
    return (russian if _CYRILLIC.search(word) else english).stemWord(word)


def trigrams(stems: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for stem in stems:
        padded = f" {stem} "
        if len(stem) <= 2:
            counts[padded] += 1  # short words count whole
            continue
        for i in range(len(padded) - 2):
            counts[padded[i : i + 3]] += 1
    return counts


@dataclass(frozen=True)
class Entry:
    """What the matcher needs of an FAQ entry (the config's model has more)."""

    id: str
    questions: tuple[str, ...]
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    entry_id: str
    score: float
    question: str  # the phrasing that matched best


class Matcher:
    #: added to the score when a keyword's stem is among the question's
    KEYWORD_BONUS = 0.08

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = {e.id: e for e in entries}
        self._docs: list[tuple[str, str, dict[str, float]]] = []
        raw: list[tuple[str, str, dict[str, int]]] = [
            (e.id, q, trigrams(normalise(q))) for e in entries for q in e.questions
        ]
        df: dict[str, int] = defaultdict(int)
        for _, _, grams in raw:
            for gram in grams:
                df[gram] += 1
        total = max(1, len(raw))
        self._idf = {g: math.log((1 + total) / (1 + n)) + 1.0 for g, n in df.items()}
        self._unknown_idf = math.log(1 + total) + 1.0
        self._postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for number, (entry_id, question, grams) in enumerate(raw):
            vector = self._weigh(grams)
            self._docs.append((entry_id, question, vector))
            for gram, weight in vector.items():
                self._postings[gram].append((number, weight))
        self._keywords = {
            e.id: {s for k in e.keywords for s in normalise(k)} for e in entries if e.keywords
        }

    def _weigh(self, grams: dict[str, int]) -> dict[str, float]:
        vector = {
            g: (1 + math.log(n)) * self._idf.get(g, self._unknown_idf) for g, n in grams.items()
        }
        norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
        return {g: w / norm for g, w in vector.items()}

    def match(self, text: str, *, limit: int = 3, allowed: set[str] | None = None) -> list[Match]:
        """The best entries for ``text``, best first, one match per entry."""
        stems = normalise(text)
        if not stems:
            return []
        query = self._weigh(trigrams(stems))
        scores: dict[int, float] = defaultdict(float)
        postings = self._postings
        for gram, weight in query.items():
            for number, doc_weight in postings.get(gram, ()):
                scores[number] += weight * doc_weight
        # the best phrasing per entry first; Match objects only for the few returned
        docs = self._docs
        best: dict[str, tuple[float, int]] = {}
        for number, score in scores.items():
            entry_id = docs[number][0]
            if allowed is not None and entry_id not in allowed:
                continue
            current = best.get(entry_id)
            if current is None or score > current[0]:
                best[entry_id] = (score, number)
        present = set(stems)
        ranked = []
        for entry_id, (score, number) in best.items():
            if self._keywords.get(entry_id, set()) & present:
                score += self.KEYWORD_BONUS
            ranked.append((-min(1.0, score), entry_id, number))
        ranked.sort()
        return [
            Match(entry_id, round(-negative, 4), docs[number][1])
            for negative, entry_id, number in ranked[:limit]
        ]


#: a best match this close to the runner-up is a guess between two answers: the
#: customer is offered both instead
AMBIGUITY_MARGIN = 0.08


@dataclass(frozen=True)
class Decision:
    answer: Match | None = None  # send this entry's answer
    offer: tuple[Match, ...] = ()  # or offer these questions to choose from


def decide(
    found: Sequence[Match], threshold: float, suggest_threshold: float, *, words: int = 2
) -> Decision:
    """What to do with the matches for one question (best first). ``words``: how many
    meaningful words the question had; one word ("account") is never answered
    outright, however well it matches: it is offered."""
    if not found:
        return Decision()
    best = found[0]
    runner_up = found[1].score if len(found) > 1 else 0.0
    if words >= 2 and best.score >= threshold and best.score - runner_up >= AMBIGUITY_MARGIN:
        return Decision(answer=best)
    floor = suggest_threshold if suggest_threshold > 0 else threshold
    close = tuple(m for m in found if m.score >= floor)
    if suggest_threshold > 0 and close:
        return Decision(offer=close)
    return Decision()


def build_matcher(section: FaqSection) -> Matcher:
    """The matcher of a config's ``[faq]`` entries (the enabled ones)."""
    return Matcher(
        [Entry(e.id, tuple(e.questions), tuple(e.keywords)) for e in section.entries if e.enabled]
    )
