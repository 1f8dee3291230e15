"""Reading a misspelt word as the FAQ word it was meant to be.

Customers type fast on phones: letters dropped (доствка), doubled (заказз),
swapped (retrun) or near on the keyboard. Two ways of seeing two words as one,
and the better one counts:

- letter trigrams in common (Dice), which absorbs several small slips in a long
  word and an ending the stemmer did not cut;
- one letter added, dropped, changed or two swapped (the "delete" neighbourhoods
  of both words meet), which trigrams miss in short words: a swap breaks three of
  a five-letter word's five trigrams.

Everything is indexed once per FAQ; a question's lookups are dictionary reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

#: how alike a word one slip away is taken to be (trigram likeness is 0-1)
ONE_SLIP = 0.8
#: shorter words are not read as a slip of another: too many real words are one apart
SLIP_FROM = 5


def trigrams(word: str) -> set[str]:
    padded = f" {word} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class Spelling:
    """The FAQ's own words, indexed for reading misspelt ones as them."""

    def __init__(self, vocabulary: Iterable[str], likeness: float) -> None:
        self.likeness = likeness
        self._grams: dict[str, list[str]] = defaultdict(list)
        self._slips: dict[str, set[str]] = defaultdict(set)
        for word in set(vocabulary):
            for gram in trigrams(word):
                self._grams[gram].append(word)
            if len(word) >= SLIP_FROM:
                self._slips[word].add(word)
                for variant in _deletes(word):
                    self._slips[variant].add(word)
        self._seen: dict[str, tuple[str, float] | None] = {}

    def closest(self, word: str) -> tuple[str, float] | None:
        """The FAQ word most like ``word`` and how alike (0-1), or None below the
        likeness asked for."""
        if word in self._seen:
            return self._seen[word]
        best = self._by_trigrams(word)
        slipped = self._by_one_slip(word)
        if slipped is not None and (best is None or best[1] < ONE_SLIP):
            best = (slipped, ONE_SLIP)
        if len(self._seen) > 50_000:
            self._seen.clear()
        self._seen[word] = best
        return best

    def _by_trigrams(self, word: str) -> tuple[str, float] | None:
        grams = trigrams(word)
        shared: dict[str, int] = defaultdict(int)
        for gram in grams:
            for candidate in self._grams.get(gram, ()):
                shared[candidate] += 1
        best: tuple[str, float] | None = None
        for candidate, count in shared.items():
            dice = 2 * count / (len(grams) + len(candidate))
            if dice >= self.likeness and (best is None or (dice, candidate) > (best[1], best[0])):
                best = (candidate, dice)
        return best

    def _by_one_slip(self, word: str) -> str | None:
        if len(word) < SLIP_FROM - 1:
            return None
        found = set(self._slips.get(word, ()))  # a letter dropped
        if len(word) >= SLIP_FROM:
            for variant in _deletes(word) | {word}:  # added, changed or swapped
                found |= self._slips.get(variant, set())
        found.discard(word)
        return min(found, key=lambda w: (abs(len(w) - len(word)), w)) if found else None
