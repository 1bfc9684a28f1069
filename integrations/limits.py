"""Fitting text to a vendor's documented limits before it is sent.

Vendors refuse (or silently cut) values past their limits, and each counts length in its own
unit: Jira counts UTF-16 code units, Slack, PagerDuty and Zoom count characters. A value that
does not fit is made single-line where the vendor wants one line, cut with a visible marker so
a reader knows there is more, and the full text is kept where there is room (timeline, thread,
description). Keys that identify something (dedup keys) are never cut, which could merge two
keys, but hashed deterministically. The limits themselves live in one module per vendor
(`integrations/<vendor>/limits.py`), next to the documentation they come from.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from firelane.registry import ActionContext

__all__ = ["MARKER", "Limit", "chars", "fit", "fit_for", "fit_key", "single_line",
           "transliterate", "utf16_units"]

MARKER = "…"

_BREAKS = re.compile(r"[\s\u0000-\u001f\u007f-\u009f\u2028\u2029]+")
_FOLD = {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE", "ł": "l",
         "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D", "\u0131": "i"}
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units: what Jira (Java strings) counts; an emoji is two."""
    return len(text.encode("utf-16-le")) // 2


def chars(text: str) -> int:
    """Length in code points: what Slack, PagerDuty and Zoom count."""
    return len(text)


@dataclass(frozen=True)
class Limit:
    """One documented limit: the field, its maximum, the unit it is counted in, whether the
    vendor wants a single line, and the documentation it comes from."""

    vendor: str
    field: str
    maximum: int
    doc: str
    unit: Callable[[str], int] = chars
    one_line: bool = False

    def fits(self, text: str) -> bool:
        """Whether the vendor would accept `text` as it is."""
        return self.unit(text) <= self.maximum and not (self.one_line and "\n" in text)

    def fit(self, text: str) -> str:
        """`text` made acceptable to the vendor (see `fit`)."""
        return fit(text, self.maximum, self.unit, one_line=self.one_line)


def single_line(text: str) -> str:
    """`text` on one line: line breaks, tabs and control characters become single spaces."""
    return _BREAKS.sub(" ", text).strip()


def fit(text: str, maximum: int, unit: Callable[[str], int] = chars, *,
        one_line: bool = False) -> str:
    """`text` cut to at most `maximum` in `unit`, ending in `MARKER` when cut; made single-line
    first when `one_line`. Cuts fall between code points, so no surrogate pair is split."""
    if one_line:
        text = single_line(text)
    if unit(text) <= maximum:
        return text
    room = maximum - unit(MARKER)
    if room <= 0:
        return MARKER[:maximum]
    kept: list[str] = []
    used = 0
    for ch in text:
        size = unit(ch)
        if used + size > room:
            break
        kept.append(ch)
        used += size
    return "".join(kept).rstrip() + MARKER


def fit_key(key: str, maximum: int) -> str:
    """`key` unchanged when it fits, else a deterministic stand-in of at most `maximum`
    characters: a readable prefix and the SHA-256 of the whole key, so two different long keys
    stay different and the same key always maps to the same value."""
    if len(key) <= maximum:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    prefix = key[: max(0, maximum - len(digest) - 1)]
    return f"{prefix}-{digest}" if prefix else digest[:maximum]


def _fold_run(match: re.Match[str]) -> str:
    run = match.group(0)
    folded = "".join(_FOLD.get(ch, ch) for ch in run)
    if folded.isascii():
        return folded
    return f"-u{hashlib.sha256(run.encode()).hexdigest()[:6]}-"


def transliterate(text: str) -> str:
    """`text` in ASCII, without dropping words: Latin letters lose their accents (Ü → U,
    ß → ss) through Unicode NFKD; a word in another script becomes `u` and a short hash of its
    characters, so the result is deterministic and different words stay different; other
    symbols (dashes, emoji) become spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(
        ch if ch.isascii() or unicodedata.category(ch)[0] in "LN" else " "
        for ch in decomposed if not unicodedata.combining(ch))
    return _NON_ASCII_RUN.sub(_fold_run, stripped)


def fit_for(ctx: ActionContext, limit: Limit, text: str, *, key: bool = False) -> str:
    """`text` fitted to `limit` (hashed when `key`), with a `vendor.fitted` timeline event
    carrying the full text when it had to change, so nothing the vendor cannot hold is lost."""
    fitted = fit_key(text, limit.maximum) if key else limit.fit(text)
    if fitted != text:
        ctx.emit("vendor.fitted", f"{limit.vendor} {limit.field} fitted to its limit of "
                 f"{limit.maximum}", {"vendor": limit.vendor, "field": limit.field,
                                      "maximum": limit.maximum, "doc": limit.doc,
                                      "sent": fitted, "full": text})
    return fitted
