"""HTML building blocks the report's sections share: escaping, and tables of escaped cells."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table from already-escaped cells; a cell starting with ``<td`` or ``<th`` is used as is."""
    body = "".join(
        "<tr>" + "".join(c if c.startswith(("<td", "<th")) else f"<td>{c}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        '<div class="wide"><table><thead><tr>'
        + "".join(h if h.startswith("<th") else f"<th>{h}</th>" for h in head)
        + f"</tr></thead><tbody>{body}</tbody></table></div>"
    )
