"""Reading a multiple-choice question out of a chat message, in time linear in its length.

A request path must not hold a pattern that can backtrack super-linearly: the message is bounded
first (`Limits.max_chat_chars`), then each line's option prefix is matched with a pattern without
quantifiers, and the option's text is the rest of the line, stripped.
(The old pattern ``(.+?)\\s*$`` took 22.8 s on ``"A. x" + " " * 40000 + "y"``.)
"""

from __future__ import annotations

import re

from valuemulch.serve._middleware import ServiceError
from valuemulch.settings import Limits

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# After leading blanks: the letter, its punctuation and one whitespace character; the rest of the
# line is the option. No quantifier, so matching (or searching) costs constant time per position.
_OPTION_PREFIX = re.compile(r"\(?([A-Z])[\.\):]\s")
_QUESTION_LABEL = re.compile(r"question\s*:\s*", re.IGNORECASE)


def _option(line: str) -> tuple[str, str] | None:
    """``(letter, text)`` when ``line`` is an option such as ``A. Yes`` or ``(B) No``, else None."""
    line = line.lstrip()
    m = _OPTION_PREFIX.match(line)
    if m is None:
        return None
    rest = line[m.end() :]
    # As the old ``\s+(.+?)\s*$`` did: an all-blank remainder of two or more spaces is an (empty) option.
    return (m.group(1), rest.strip() or rest[-1]) if rest else None


def parse_multiple_choice(text: str, limits: Limits) -> tuple[str, list[str]]:
    """Question and options from a chat message: the question, then lines ``A. ...``, ``B. ...``."""
    if len(text) > limits.max_chat_chars:
        raise ServiceError(
            422,
            "invalid_request",
            f"messages: the question message has {len(text)} characters; at most {limits.max_chat_chars}.",
            "messages",
        )
    lines = text.strip().splitlines()
    parsed = [_option(line) for line in lines]
    start = next((i for i, p in enumerate(parsed) if p is not None and p[0] == "A"), None)
    if start is None:
        raise ServiceError(
            422,
            "no_multiple_choice",
            "The last user message has no options: write the question, then one option per line as 'A. ...', 'B. ...'.",
            "messages",
        )
    options: list[str] = []
    for line, p in zip(lines[start:], parsed[start:], strict=True):
        if p is None:
            if line.strip().lower().startswith("answer"):
                break
            continue
        if len(options) >= limits.max_options:
            raise ServiceError(422, "too_many_options", f"At most {limits.max_options} options (A to Z).", "messages")
        if p[0] != LETTERS[len(options)]:
            raise ServiceError(
                422,
                "bad_option_letters",
                f"Options must be lettered A, B, C... in order; found '{p[0]}' where '{LETTERS[len(options)]}' was expected.",
                "messages",
            )
        options.append(p[1])
    joined = " ".join(x.strip() for x in lines[:start] if x.strip())
    question = joined[m.end() :] if (m := _QUESTION_LABEL.match(joined)) else joined
    if len(options) < 2 or not question:
        raise ServiceError(
            422, "no_multiple_choice", "Need a question followed by at least two options 'A. ...', 'B. ...'.", "messages"
        )
    return question, options
