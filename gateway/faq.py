"""FAQ matching: which configured answer (if any) a customer's question asks for.

Precision over recall: a wrong automatic answer annoys more than none. Each entry
is one bag of word stems (``gateway.faq_words``: folded, transliterated, cut) and
of the ideas they stand for (``gateway.faq_lexicon``, which carries a question
across English, Russian and Ukrainian and across synonyms), from its example
questions and keywords (and its answers' words, if ``Tuning.answer_weight`` says
so). Stems are weighted by how few entries have them (IDF), so the word that
tells two entries apart counts most.

A question's words are looked up in the FAQ's vocabulary: a stem the FAQ has
counts fully; a misspelt word counts as the known word closest in letters
(character trigrams, or one letter added, dropped or swapped), by how close it
is; a word the FAQ does not know at all weighs the question down, so "how long
is this cable" does not answer "how long does delivery take". The score is the
cosine of the two bags, in [0, 1], times the share the question has of what all
the entry's examples share (its topic), so "how much is a sofa" does not answer
"how much is delivery"; a question that says all one example says scores as that
example. An entry's ``not`` words rule it out.
Everything is deterministic and local.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.faq_lexicon import marks
from gateway.faq_spelling import Spelling
from gateway.faq_words import readings_of, skeletons, stem, words

if TYPE_CHECKING:
    from gateway.config.replies import FaqSection


@dataclass(frozen=True)
class Entry:
    """What the matcher needs of an FAQ entry (the config's model has more)."""

    id: str
    questions: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()  # the answer's texts, every language
    not_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    entry_id: str
    score: float
    question: str  # the example question closest to the customer's
    #: (the customer's word, the FAQ's word it was read as) that this entry shares
    matched: tuple[tuple[str, str], ...] = ()
    #: how many of the question's words this entry shares (by word or by idea)
    words: int = 0
    #: how many of the question's words the whole FAQ does not know
    unknown: int = 0
    #: how many of the question's words no other entry has
    own: int = 0


@dataclass(frozen=True)
class Tuning:
    """The matcher's weights, chosen on bench/faq_set (bench/faq_quality.py)."""

    #: an answer's words weigh this much against an example question's. 0: measured
    #: on bench/faq_set, the answers' words cost recall (they make more entries share
    #: a word with any question) whether the examples are in one language or three;
    #: the shared vocabulary carries a question across languages instead
    answer_weight: float = 0.0
    #: a word the FAQ does not know weighs this much of the rarest word's weight
    unknown_weight: float = 0.15
    #: a misspelt word counts as a known one from this letter likeness (Dice, 0-1)
    fuzzy: float = 0.6
    #: a shared idea weighs this much against a shared word
    concept_weight: float = 1.0
    #: a question this like one example question (cosine) scores as that example
    #: does, not as the entry as a whole: an entry with many varied examples still
    #: answers each of them
    as_example: float = 0.8
    #: a question without part of what all an entry's examples share (its topic)
    #: scores by the share it has, to this power: "how much is a sofa" is not "how
    #: much is delivery"
    core_weight: float = 1.0


@dataclass(frozen=True)
class _Word:
    """One word of a question as the FAQ reads it."""

    written: str  # as the customer typed it
    reading: str  # folded, or transliterated
    known: str  # the FAQ's word it was read as
    terms: tuple[tuple[str, float], ...]  # its stem and ideas, with how sure


class Matcher:
    def __init__(self, entries: Sequence[Entry], tuning: Tuning | None = None) -> None:
        self.tuning = tuning or Tuning()
        self.entries = {e.id: e for e in entries}
        self._ids = [e.id for e in entries]
        #: each example question's stems and ideas (then each keyword's), per entry
        self._example_terms = [[_terms(t) for t in (*e.questions, *e.keywords)] for e in entries]
        self._bags = [
            self._bag(entry, examples)
            for entry, examples in zip(entries, self._example_terms, strict=True)
        ]
        df: dict[str, int] = defaultdict(int)
        for bag in self._bags:
            for term in bag:
                df[term] += 1
        total = max(1, len(entries))
        self._df = dict(df)
        self._idf = {t: math.log((1 + total) / (1 + n)) + 1.0 for t, n in df.items()}
        self._unknown_idf = math.log(1 + total) + 1.0
        self._postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for number, bag in enumerate(self._bags):
            for term, weight in self._vector(bag).items():
                self._postings[term].append((number, weight))
        self._examples = [
            [self._vector(dict.fromkeys(terms, 1.0)) for terms in each]
            for each in self._example_terms
        ]
        self._core = [
            self._core_of(terms[: len(e.questions)])
            for e, terms in zip(entries, self._example_terms, strict=True)
        ]
        self._not = [{stem(w) for text in e.not_words for w in skeletons(text)} for e in entries]
        surfaces = {
            folded
            for entry in entries
            for text in (*entry.questions, *entry.keywords, *entry.answers)
            for folded in skeletons(text)
        }
        self._spelling = Spelling(surfaces, self.tuning.fuzzy)

    def _core_of(self, questions: list[set[str]]) -> dict[str, float]:
        """What every example question of an entry has (its topic: the idea of
        delivery in "how much is delivery", "сколько стоит доставка"), by IDF."""
        if len(questions) < 2:
            return {}
        return {t: self._idf[t] for t in set.intersection(*questions)}

    def _vector(self, bag: dict[str, float]) -> dict[str, float]:
        vector = {t: w * self._idf[t] for t, w in bag.items()}
        norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
        return {t: w / norm for t, w in vector.items()}

    def _bag(self, entry: Entry, examples: list[set[str]]) -> dict[str, float]:
        """The entry's stems and ideas: 1 + log(how many examples have it), and the
        answer's with less weight."""
        counts: dict[str, int] = defaultdict(int)
        for terms in examples:
            for term in terms:
                counts[term] += 1
        bag = {t: 1.0 + math.log(n) for t, n in counts.items()}
        if self.tuning.answer_weight > 0:
            for term in {t for text in entry.answers for t in _terms(text)}:
                bag[term] = bag.get(term, 0.0) + self.tuning.answer_weight
        return bag

    def read(self, text: str) -> tuple[list[_Word], int, set[str]]:
        """The question's words the FAQ knows, how many it does not, and the stems of
        all its words in every reading (for the entries' ``not`` words)."""
        known: list[_Word] = []
        unknown = 0
        lexicon = marks()
        said: set[str] = set()
        for typed, candidates in readings_of(text):
            said.update(stem(c) for c in candidates)
            found = self._known(candidates)
            if found is None:
                unknown += 1
                continue
            reading, as_known, term, sure = found
            concept = self.tuning.concept_weight * sure
            terms = [(term, sure)] if term in self._idf else []
            terms += [(m, concept) for m in lexicon.get(term, ()) if m in self._idf]
            if terms:
                known.append(_Word(typed, reading, as_known, tuple(terms)))
            else:
                unknown += 1
        return known, unknown, said

    def _known(self, candidates: tuple[str, ...]) -> tuple[str, str, str, float] | None:
        """One word's reading the FAQ (or the lexicon) has, else the closest in
        letters: (the reading, the FAQ's word, its stem, how sure)."""
        lexicon = marks()
        for surface in candidates:
            term = stem(surface)
            if term in self._idf or term in lexicon:
                return surface, surface, term, 1.0
        best: tuple[str, str, str, float] | None = None
        for surface in candidates:
            near = self._spelling.closest(surface)
            if near is not None and (best is None or near[1] > best[3]):
                best = (surface, near[0], stem(near[0]), near[1])
        return best

    def match(self, text: str, *, limit: int = 3, allowed: set[str] | None = None) -> list[Match]:
        """The best entries for ``text``, best first, one match per entry."""
        known, unknown, said = self.read(text)
        if not known:
            return []
        query: dict[str, float] = {}
        for word in known:
            for term, sure in word.terms:
                query[term] = max(query.get(term, 0.0), sure * self._idf[term])
        penalty = self.tuning.unknown_weight * self._unknown_idf
        norm = math.sqrt(sum(w * w for w in query.values()) + unknown * penalty * penalty)
        if norm == 0:
            return []
        scores: dict[int, float] = defaultdict(float)
        for term, weight in query.items():
            for number, entry_weight in self._postings[term]:
                scores[number] += weight * entry_weight
        ranked = []
        for number, score in scores.items():
            if allowed is not None and self._ids[number] not in allowed:
                continue
            if self._not[number] & said:
                continue
            ranked.append((-score / norm, number))
        ranked.sort()
        # a question that says all one of a leader's examples says is as sure as it
        rescored = []
        for negative, number in ranked[: limit + 4]:
            closest = max(self._like(query, norm, example) for example in self._examples[number])
            if closest >= self.tuning.as_example:
                negative = min(negative, -closest)
            core = self._core[number]
            if core and self.tuning.core_weight:
                covered = sum(w for t, w in core.items() if t in query) / sum(core.values())
                negative *= covered**self.tuning.core_weight
            rescored.append((negative, number))
        rescored.sort()
        return [
            self._match(number, -negative, known, unknown) for negative, number in rescored[:limit]
        ]

    @staticmethod
    def _like(query: dict[str, float], norm: float, example: dict[str, float]) -> float:
        """The cosine of a question and an example, or 0 when the question leaves out a
        word of the example ("how much is a sofa" against "how much is delivery")."""
        if any(term not in query for term in example):
            return 0.0
        return (
            sum(weight * example[term] for term, weight in query.items() if term in example) / norm
        )

    def _match(self, number: int, score: float, known: list[_Word], unknown: int) -> Match:
        bag = self._bags[number]
        shared = [w for w in known if any(term in bag for term, _ in w.terms)]
        own = sum(1 for w in shared if any(self._df[term] == 1 for term, _ in w.terms))
        entry = self.entries[self._ids[number]]
        present = {term for w in shared for term, _ in w.terms}
        questions = self._example_terms[number]
        closest = entry.questions[
            max(range(len(entry.questions)), key=lambda i: len(questions[i] & present))
        ]
        return Match(
            entry.id,
            round(min(1.0, score), 4),
            closest,
            tuple((w.written, w.known) for w in shared),
            len(shared),
            unknown,
            own,
        )


def _terms(text: str) -> set[str]:
    """An FAQ text's stems and the ideas they stand for."""
    lexicon = marks()
    terms = set()
    for surface in skeletons(text):
        term = stem(surface)
        terms.add(term)
        terms.update(lexicon.get(term, ()))
    return terms


#: a best match this close to the runner-up is a guess between two answers: the
#: customer is offered both instead
AMBIGUITY_MARGIN = 0.08


@dataclass(frozen=True)
class Decision:
    answer: Match | None = None  # send this entry's answer
    offer: tuple[Match, ...] = ()  # or offer these questions to choose from


def margin(found: Sequence[Match]) -> float:
    """How far the best match is ahead of the runner-up."""
    if not found:
        return 0.0
    return found[0].score - (found[1].score if len(found) > 1 else 0.0)


def sure_enough(best: Match) -> bool:
    """Enough words to answer on: one shared word among words the FAQ has never
    seen ("I love your shop") is too thin, however rare the word; a question of
    one word ("delivery") is answered only when no other entry has that word
    ("самовывоз"), else the entries that have it are offered."""
    if best.words + best.unknown == 1:
        return best.own == 1
    return best.words >= 2 or best.unknown == 0


def answers(score: float, ahead: float, sure: bool, threshold: float) -> bool:
    """Whether a best match is answered outright: sure enough (``sure_enough``), at
    the threshold, and clearly ahead of the runner-up."""
    return sure and score >= threshold and ahead >= AMBIGUITY_MARGIN


def decide(found: Sequence[Match], threshold: float, suggest_threshold: float) -> Decision:
    """What to do with the matches for one question (best first)."""
    if not found:
        return Decision()
    best = found[0]
    if answers(best.score, margin(found), sure_enough(best), threshold):
        return Decision(answer=best)
    floor = suggest_threshold if suggest_threshold > 0 else threshold
    if best.words + best.unknown == 1:
        # one word ("доставка") several entries have: each of them is a fair guess
        close = tuple(m for m in found if m.words == 1)
    else:
        close = tuple(m for m in found if m.score >= floor)
    if suggest_threshold > 0 and close:
        return Decision(offer=close)
    return Decision()


def word_count(text: str) -> int:
    """Words as written, stopwords included: "where is my order" is four."""
    return len(words(text))


def answers_of(answer: str | dict[str, str]) -> tuple[str, ...]:
    """An entry's answer texts, every language."""
    return (answer,) if isinstance(answer, str) else tuple(answer.values())


def build_matcher(section: FaqSection, tuning: Tuning | None = None) -> Matcher:
    """The matcher of a config's ``[faq]`` entries (the enabled ones)."""
    return Matcher(
        [
            Entry(
                e.id,
                tuple(e.questions),
                tuple(e.keywords),
                answers_of(e.answer),
                tuple(e.not_words),
            )
            for e in section.entries
            if e.enabled
        ],
        tuning,
    )
