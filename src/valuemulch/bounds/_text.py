"""Text as the bounds read it: one canonical form, so that spelling tricks cannot move a mask.

A person who writes ``k\u200bill``, ``kіll`` (Cyrillic і), ``k i l l`` or ``ｋｉｌｌ`` means "kill", and
the red lines and the organisation's refuse topics must read it so. ``canonical`` is applied
before any pattern, classifier or topic sees a question or an option; it is never shown to users.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from confusable_homoglyphs import confusables

# Letters spaced out with one repeated separator ("k i l l", "k.i.l.l", "k-i-l-l", "k_i_l_l"): three
# or more single letters. A run of two ("a b") is left alone: it is too often real text.
_SPACED = re.compile(r"(?<![\w])([A-Za-z])(?P<sep>[ .\-_*·•])(?:[A-Za-z](?P=sep)){1,}[A-Za-z](?![\w])")
_WORD = re.compile(r"\S+")


@lru_cache(maxsize=4096)
def _latin(char: str) -> str | None:
    """The ASCII letter ``char`` is drawn like (Unicode's confusables), or None."""
    found = confusables.is_confusable(char, preferred_aliases=["latin"], greedy=True) or []
    for entry in found:
        for glyph in entry.get("homoglyphs", []):
            c = glyph.get("c", "")
            if len(c) == 1 and c.isascii() and c.isalpha():
                return c
    return None


def _unconfuse(word: str) -> str:
    """Map look-alike letters to Latin in a word that is Latin already, or that is drawn wholly from
    look-alikes; a word of another script ("дом") keeps its letters."""
    if word.isascii():
        return word
    mapped = [ch if ch.isascii() else _latin(ch) for ch in word]
    has_latin = any(ch.isascii() and ch.isalpha() for ch in word)
    letters = [m for ch, m in zip(word, mapped, strict=True) if ch.isalpha()]
    if has_latin or (letters and all(m is not None for m in letters)):
        return "".join(m if m is not None else ch for ch, m in zip(word, mapped, strict=True))
    return word


def _unspace(match: re.Match[str]) -> str:
    return match.group(0).replace(match.group("sep"), "")


def canonical(text: str) -> str:
    """NFKC, invisible format characters (zero-width spaces, soft hyphens, bidi marks) removed,
    look-alike letters mapped to Latin, letter-spacing collapsed and white space made single."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = _WORD.sub(lambda m: _unconfuse(m.group(0)), text)
    text = _SPACED.sub(_unspace, text)
    return " ".join(text.split())
