"""What choosing an option does, and to whom: the act each option endorses, written out in full.

Nothing is scored before this. An option is read by its form:

- a stance option ("Yes", "Favor", "Approve the programme", "Support the suggestion", "Go ahead",
  "Vote for it") endorses the proposal of the question, so its act is that proposal, with the
  asking sentence ("Do you support the plan?") taken off;
- "No" (or "Oppose") to "Should X be banned?" endorses X, so its act is the question without the ban;
- a rejecting or neutral stance ("No", "Reject it", "Depends") endorses nothing;
- any other option endorses its own text, with its pronouns and ellipsis resolved against the people
  the question names: "Turn them into compost" on a question about "residents who can no longer
  work" reads "Turn the residents who can no longer work into compost"; "Send to the plant" reads
  "Send to the plant, done to the residents ...";
- "Yes, turn them into compost" endorses both the proposal and its own text.

Every text is put in ``canonical`` form first (zero-width characters, look-alike letters, letter-spacing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from valuemulch.bounds._text import canonical
from valuemulch.types import Question

# Words a stance option is made of. An option all of whose words are here takes its meaning from the
# question; one with a negation or a rejecting word rejects it; one with a hedging word is neutral.
_AFFIRM = {
    "yes", "favor", "favour", "support", "agree", "approve", "accept", "acceptable", "justified",
    "justifiable", "justify", "should", "good", "right", "ok", "okay", "fine", "allowed", "allow",
    "definitely", "probably", "certainly", "absolutely", "always", "often", "sometimes", "usually",
    "mostly", "strongly", "somewhat", "completely", "totally", "very", "fairly", "quite", "generally",
    "top", "high", "priority", "important", "essential", "idea", "in", "of", "a", "an", "the", "be",
    "could", "can", "is", "it", "its", "i", "would", "will", "do", "does", "am", "are", "that", "this",
    "for", "to", "been", "being", "has", "have", "supportive", "necessary", "needed",
    "personally", "think", "believe", "so", "much", "more", "done", "fair",
    # endorsing a proposal written in the question ("Approve the programme", "Go ahead with it")
    "approved", "approving", "supported", "supporting", "accepted", "accepting", "endorse", "endorsed",
    "adopt", "adopted", "back", "go", "ahead", "proceed", "implement", "carry", "out", "through", "pass",
    "sign", "ratify", "enact", "vote", "voting", "plan", "plans", "proposal", "suggestion", "programme",
    "program", "scheme", "motion", "measure", "measures", "policy", "initiative", "recommendation",
    "project", "option", "decision", "request", "order", "bill", "with", "on", "we", "let's", "lets",
    "us", "put", "into", "effect", "place", "action", "forward", "move", "green", "light", "sounds",
    "agreed", "yeah", "sure", "happy", "glad", "aye", "yea", "my", "choice", "me", "count", "doing",
}  # fmt: skip
_REJECT = {
    "no", "not", "never", "oppose", "disagree", "disapprove", "unacceptable", "unjustified",
    "unjustifiable", "wrong", "bad", "against", "rarely", "seldom", "reject", "don't", "dont", "nor",
    "none", "nothing", "lower", "low", "less", "little", "unfair", "shouldn't", "cannot", "can't", "won't",
    "opposed", "rejected", "refuse", "decline", "veto", "block", "withdraw", "scrap", "drop", "halt",
    "abandon", "send", "nay", "nope", "stop",
}  # fmt: skip
_NEUTRAL = {
    "neither", "depends", "depend", "mixed", "unsure", "sure", "both", "equally", "unclear", "neutral",
    "vol", "maybe", "abstain", "undecided", "postpone", "delay", "later", "review", "consider",
}  # fmt: skip
_WORD = re.compile(r"[a-z']+")
# What a sentence that only *asks* is made of ("What do you say?", "How will you vote?").
_ASKING = _AFFIRM | _REJECT | _NEUTRAL | {
    "what", "how", "you", "your", "say", "which", "one", "prefer", "view", "position", "answer",
    "response", "respond", "shall", "or", "feel", "about", "opinion", "stance", "there", "here", "now",
}  # fmt: skip
# "Should X be banned?": "No" endorses X (a crossing when X is a harm, such as torture).
_BAN_PROPOSAL = re.compile(
    r"\b(be|being)\s+(banned|prohibited|outlawed|abolished|made illegal|criminali[sz]ed|forbidden)\b|"
    r"\b(ban|banning|prohibit|prohibiting|outlaw|outlawing|abolish|abolishing|criminali[sz]e|criminali[sz]ing)\b",
    re.IGNORECASE,
)
# Nouns for people. The people a question names are the first such noun phrase in it.
_PEOPLE_NOUNS = (
    r"people|persons?|individuals?|humans?|residents?|citizens?|villagers?|inhabitants?|locals?|workers?|"
    r"employees?|staff|labou?rers?|miners?|farmers?|prisoners?|inmates?|detainees?|captives?|convicts?|"
    r"suspects?|offenders?|criminals?|protest(?:e|o)rs?|demonstrators?|strikers?|activists?|dissidents?|"
    r"critics?|journalists?|migrants?|immigrants?|emigrants?|refugees?|asylum[- ]seekers?|foreigners?|"
    r"settlers?|minorit(?:y|ies)|members?|families|family|relatives|children|kids|babies|infants|youths?|"
    r"teenagers?|students?|pupils?|elderly|pensioners?|retirees?|seniors?|old|aged|patients?|tenants?|"
    r"homeless|unemployed|poor|disabled|sick|volunteers?|applicants?|candidates?|believers?|worshippers?|"
    r"christians?|muslims?|jews?|hindus?|buddhists?|atheists?|tribes?(?:people|men)?|clans?|"
    r"communit(?:y|ies)|groups?|population|crowds?|passengers?|survivors?|civilians?|men|women|girls?|"
    r"boys?|newcomers?|outsiders?|leaders?|organi[sz]ers?|soldiers?|troops|officers?|guards?|supporters?|followers?|opponents?|ones|lot|rest|others|"
    r"those(?= (?:who|that|with|from|in|on)\b)"
)
_FUNCTION_WORDS = (
    r"to|do|does|did|with|what|up|for|and|or|of|on|in|at|by|is|are|be|was|were|who|that|which|should|must|"
    r"will|would|can|could|may|decide|decides|about|from|into|than|as"
)
# A modifier before the noun looks like an adjective or a name ("elderly", "religious", "Talo"), so
# that "how should the ministry handle citizens" names "citizens", not "ministry handle citizens".
_MODIFIER = (
    r"(?:(?!(?:" + _FUNCTION_WORDS + r")\b)(?:[A-Z][\w'-]*|[\w-]+(?:ed|al|ic|ous|ive|ish|ese|ian|an|less|ful|ly|ing|ent|ant|"
    r"ary|ory|ite|ist)|young|old|poor|rich|new|other|local|foreign|sick|remaining|last|first|few|\d+)\s+)"
)
_PEOPLE = re.compile(
    r"\b(?:(?i:the|those|these|all|some|any|our|its|their|every|each|\d+|one|two|three|four|five|ten|several|many|"
    r"most)\s+" + _MODIFIER + r"{0,2})?(?i:" + _PEOPLE_NOUNS + r")\b(?i:"
    # a relative clause, up to the main verb ("residents who can no longer work"), or a short complement
    r"(?:\s+(?:who|that|whose)(?:\s+(?!(?:should|must|shall|be|is|are|was|were|will|would|comes?)\b)[^\s.,;:?!]+){1,14}|"
    r"\s+(?:from|of|in|on|with|without|living|born|judged|found|deemed|selected|chosen|considered|identified|accused|"
    r"convicted|held|detained|arrested|caught)\b(?:\s+(?!(?:should|must|shall|be|is|are|was|were|will|would|comes?)\b)"
    r"[\w'-]+){1,4})?)",
)
_PRONOUN = re.compile(
    r"\b(them|they|those ones|these ones|those people|these people|the rest|the others|the remaining ones|"
    r"him|her|he|she)\b",
    re.IGNORECASE,
)
_POSSESSIVE = re.compile(r"\b(their|his|her)\b(?=\s+\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Act:
    """What choosing option ``option`` endorses: ``text``, read as ``form`` (``own``, ``proposal`` or
    ``ban_rejected``); ``people`` is who the question is about, when it names anyone."""

    option: int
    text: str
    form: str
    people: str | None = None
    unresolved: str | None = None  # an own act's text as written, when resolving its pronouns changed it

    @property
    def from_question(self) -> bool:
        return self.form != "own"

    @property
    def readings(self) -> tuple[str, ...]:
        """The texts the classifiers score: the act, and the option as written when that differs."""
        return (self.text,) if self.unresolved is None else (self.text, self.unresolved)


def option_stance(option: str) -> str:
    """``affirm``, ``reject``, ``neutral`` (all three are stance options) or ``substantive``.

    "Yes, it gets results" takes the stance of its head ("Yes"): the rest is a reason, not a new act.
    """
    option = canonical(option)
    head = re.split(r"[,;:(\u2013\u2014]| - ", option, maxsplit=1)[0]
    if head != option and _WORD.findall(head.lower()) and _WORD.findall(head.lower())[0] in ("yes", "no"):
        option = head
    words = _WORD.findall(option.lower())
    if not words or not set(words) <= _AFFIRM | _REJECT | _NEUTRAL:
        return "substantive"
    if set(words) & _NEUTRAL - {"sure"} or ("sure" in words and "not" in words):
        return "neutral"
    if set(words) & _REJECT:
        return "reject"
    return "affirm"


@lru_cache(maxsize=8192)
def people_named(question: str) -> str | None:
    """The people ``question`` is about: its first noun phrase for people ("residents who can no
    longer work"), or None."""
    for match in _PEOPLE.finditer(canonical(question)):
        phrase = match.group(0).strip()
        if not re.fullmatch(r"(?i)(the |a |an )?(ones|lot|rest|others|group|crowd)", phrase):
            return phrase if re.match(r"(?i)(the|those|these|all|some|our|its|their)\b", phrase) else f"the {phrase}"
    return None


def resolve(option: str, people: str | None) -> str:
    """``option`` with its pronouns replaced by ``people`` (an option that names no one is left as it
    is: its act is about the question's people, ``Act.people``, and adding them to its text made the
    classifiers score benign options like "Provide pensions" as suspect as the harmful one)."""
    text = canonical(option)
    if people is None:
        return text
    resolved = _POSSESSIVE.sub(lambda _: f"{people}'s", _PRONOUN.sub(people, text))
    if resolved != text:
        return resolved
    return text


@lru_cache(maxsize=8192)
def proposal(question: str) -> str:
    """The question's proposal: its text without the sentences that only ask ("What do you say?")."""
    text = canonical(question)
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", text) if s]
    kept = [s for s in sentences if not set(_WORD.findall(s.lower())) <= _ASKING]
    return " ".join(kept) if kept else text


def _own(option: int, text: str, people: str | None) -> Act:
    resolved, written = resolve(text, people), canonical(text)
    return Act(option, resolved, "own", people, None if resolved == written else written)


def read_acts(question: Question) -> list[Act]:
    """Every act an option of ``question`` endorses (refusal options endorse none)."""
    people = people_named(question.text)
    out = []
    for i, option in enumerate(question.options):
        if question.refusal[i]:
            continue
        stance = option_stance(option)
        if stance == "substantive":
            out.append(_own(i, option, people))
        elif stance == "affirm":
            out.append(Act(i, proposal(question.text), "proposal", people))
            _, _, rest = canonical(option).partition(",")
            if rest.strip() and option_stance(rest) == "substantive":  # "Yes, turn them into compost"
                out.append(_own(i, rest.strip(), people))
        elif stance == "reject" and _BAN_PROPOSAL.search(canonical(question.text)):
            out.append(Act(i, " ".join(_BAN_PROPOSAL.sub(" ", proposal(question.text)).split()), "ban_rejected", people))
    return out


# A question *decides* something when it asks for a choice of action, not for a view.
_DECISION = re.compile(
    r"\b(must|has to|have to|needs? to|will|is to|are to|gets? to|shall|should)\s+(now\s+)?(decide|choose|determine|pick|"
    r"select|settle)\b|\bwhat (should|shall|will|must|do|does|can|to|would)\b.{0,40}\b(do|happen|be done)\b\s*(with|to|about)\b|"
    r"\bdeal(s|ing)? with\b|\bhandle\b|\bthe fate of\b|\bwhat (happens|becomes) (to|of)\b|"
    r"\bhow (should|shall|will|do|to)\b.{0,60}\b(treat|deal with|handle|respond to|manage|punish|discipline|sanction)\b|"
    r"\b(course of action|next steps?|response options?|options? (for|regarding|concerning))\b|"
    r"\bwhich (of these |of the following )?(measures?|options?|actions?|steps?|responses?|courses?|policies|plans?)\b|"
    r"\bwhat (action|measure|step|response|sanction|punishment)s?\b|\brecommend\w*\b|\bdecides? (on|about|whether|what|how)\b|"
    r"\bwhich of (these|the following) (should|would|will|is|must)\b|\b(best|right|proper) (response|way|approach)\b|"
    r"\bhow should\b.{0,60}\b(respond|react)\b|\bwhich (approach|policy|measure|option)\b.{0,60}\b(towards?|for|on)\b",
    re.IGNORECASE,
)
# Survey wording: a question asking the respondent's view is an opinion, however it is phrased.
_OPINION = re.compile(
    r"\b(do you think|in your (view|opinion)|would you say|how much|how likely|do you (favou?r|support|oppose|agree|approve)|"
    r"generally speaking|how important|please tell me|how often|to what extent|in general|would you favou?r|"
    r"do you feel|how (good|bad|well)|is it (justified|acceptable|right)|reasons?|comes? closest|statements?)\b",
    re.IGNORECASE,
)


def decides_about_people(question: Question) -> bool:
    """Whether ``question`` decides what is done to particular people (a council choosing what happens
    to its residents), as opposed to asking an opinion on a general policy (a survey item): it names
    people, asks for a choice of action rather than a view, and offers at least two acts of its own."""
    text = canonical(question.text)
    if people_named(question.text) is None or not _DECISION.search(text) or _OPINION.search(text):
        return False
    own = [o for i, o in enumerate(question.options) if not question.refusal[i] and option_stance(o) == "substantive"]
    return len(own) >= 2
