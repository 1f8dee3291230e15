"""`gateway faq ask`: what the FAQ does with one question, and why.

An admin who sees a wrong or missing answer needs the reason to fix it: which of
the customer's words the FAQ knew (and as what: a misspelling read as a known
word, a transliteration), which it did not know at all, how far the best entry
was ahead of the next, and which rule held the answer back. The fix is then an
example question, a keyword, a ``not`` word or the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.config.replies import FaqSection
from gateway.faq import AMBIGUITY_MARGIN, Decision, Match, Matcher, margin, sure_enough
from gateway.faq_words import fold, readings_of


def explain(
    matcher: Matcher,
    section: FaqSection,
    question: str,
    matches: Sequence[Match],
    decision: Decision,
) -> list[str]:
    known, unknown, _ = matcher.read(question)
    lines = [_verdict(section, matches, decision), ""]
    read = []
    for word in known:
        if word.known == word.reading and word.reading == fold(word.written):
            read.append(word.written)
        else:
            read.append(f"{word.written} (read as {word.known})")
    known_written = {w.written for w in known}
    strangers = [typed for typed, _ in readings_of(question) if typed not in known_written]
    lines.append("words the FAQ knows: " + (", ".join(read) if read else "none"))
    if unknown:
        lines.append(f"words it does not know: {', '.join(strangers)}")
    if not matches:
        lines.append("no entry shares a word with the question")
        return lines
    lines.append("")
    for match in matches:
        shared = ", ".join(w for w, _ in match.matched) or "only ideas"
        lines.append(
            f"{match.score:.3f}  {match.entry_id:<24} shares: {shared}  (like {match.question!r})"
        )
    return lines


def _verdict(section: FaqSection, matches: Sequence[Match], decision: Decision) -> str:
    if decision.answer is not None:
        ahead = margin(matches)
        return (
            f"answers {decision.answer.entry_id}: score {decision.answer.score:.3f} "
            f"(threshold {section.threshold:g}), {ahead:.3f} ahead of the next"
        )
    if not matches:
        return "stays silent: none of its words are in the FAQ"
    best = matches[0]
    reasons = []
    if best.score < section.threshold:
        reasons.append(
            f"the best score {best.score:.3f} is under the threshold {section.threshold:g}"
        )
    if margin(matches) < AMBIGUITY_MARGIN:
        reasons.append(
            f"{matches[1].entry_id} is only {margin(matches):.3f} behind "
            f"(an answer needs {AMBIGUITY_MARGIN:g})"
        )
    if not sure_enough(best):
        if best.words + best.unknown == 1:
            reasons.append("one word, which other entries have too")
        else:
            reasons.append("it shares one word, among words the FAQ does not know")
    because = "; ".join(reasons)
    if decision.offer:
        offered = ", ".join(m.entry_id for m in decision.offer)
        return f"offers {offered} to choose from, unsure: {because}"
    return f"stays silent: {because}"
