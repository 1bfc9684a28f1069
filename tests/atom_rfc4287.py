"""A structural check of an Atom feed document against what RFC 4287 requires.

Not the RFC's RELAX NG schema (appendix B; no RELAX NG validator is installed here and lxml is
not a dependency): the MUST-level rules of sections 3 and 4 that a feed like ours can break,
written out from the RFC. Each problem is reported with the element's path.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit
from xml.etree import ElementTree

__all__ = ["ATOM", "atom_problems"]

ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_TEXT_TYPES = {"text", "html", "xhtml"}
_FEED_ONCE = ("id", "title", "updated")
_FEED_AT_MOST_ONCE = ("generator", "icon", "logo", "rights", "subtitle")
_ENTRY_ONCE = ("id", "title", "updated")
_ENTRY_AT_MOST_ONCE = ("content", "published", "rights", "source", "summary")


def _count(parent: ElementTree.Element, name: str) -> int:
    return len(parent.findall(ATOM + name))


def _text_construct(node: ElementTree.Element, where: str) -> list[str]:
    kind = node.get("type", "text")
    if kind not in _TEXT_TYPES:
        return [f"{where}: type {kind!r} is not text, html or xhtml (3.1.1)"]
    if kind == "text" and len(node):
        return [f"{where}: a text construct of type text has child elements (3.1.1.1)"]
    return []


def _iri(value: str | None, where: str) -> list[str]:
    if not value or not urlsplit(value).scheme:
        return [f"{where}: {value!r} is not an absolute IRI (4.2.6)"]
    return []


def _date(node: ElementTree.Element | None, where: str) -> list[str]:
    text = (node.text or "").strip() if node is not None else ""
    return [] if RFC3339.match(text) else [f"{where}: {text!r} is not an RFC 3339 "
                                           "date-time (3.3)"]


def _persons(parent: ElementTree.Element, where: str) -> list[str]:
    return [f"{where}/author: a person construct needs exactly one name (3.2)"
            for author in parent.findall(ATOM + "author") if _count(author, "name") != 1]


def _links(parent: ElementTree.Element, where: str) -> list[str]:
    problems = [f"{where}/link: no href (4.2.7.1)" for link in parent.findall(ATOM + "link")
                if not link.get("href")]
    alternates = [(link.get("type"), link.get("hreflang"))
                  for link in parent.findall(ATOM + "link")
                  if link.get("rel", "alternate") == "alternate"]
    if len(alternates) != len(set(alternates)):
        problems.append(f"{where}: two alternate links with the same type and hreflang "
                        "(4.1.1, 4.1.2)")
    return problems


def _common(parent: ElementTree.Element, where: str, once: tuple[str, ...],
            at_most_once: tuple[str, ...]) -> list[str]:
    problems = [f"{where}: needs exactly one atom:{name}, has {_count(parent, name)}"
                for name in once if _count(parent, name) != 1]
    problems += [f"{where}: more than one atom:{name}" for name in at_most_once
                 if _count(parent, name) > 1]
    for name in ("title", "subtitle", "summary", "rights"):
        for node in parent.findall(ATOM + name):
            problems += _text_construct(node, f"{where}/{name}")
    for node in parent.findall(ATOM + "id"):
        problems += _iri((node.text or "").strip(), f"{where}/id")
    for name in ("updated", "published"):
        for node in parent.findall(ATOM + name):
            problems += _date(node, f"{where}/{name}")
    return problems + _persons(parent, where) + _links(parent, where)


def _entry(entry: ElementTree.Element, where: str, feed_has_author: bool) -> list[str]:
    problems = _common(entry, where, _ENTRY_ONCE, _ENTRY_AT_MOST_ONCE)
    if not feed_has_author and _count(entry, "author") == 0:
        problems.append(f"{where}: no atom:author here or on the feed (4.1.1, 4.1.2)")
    content = entry.find(ATOM + "content")
    alternate = [link for link in entry.findall(ATOM + "link")
                 if link.get("rel", "alternate") == "alternate"]
    if content is None and not alternate:
        problems.append(f"{where}: neither atom:content nor an alternate link (4.1.2)")
    if content is not None:
        if content.get("src") is not None and _count(entry, "summary") == 0:
            problems.append(f"{where}: content with src needs a summary (4.1.2)")
        if content.get("type", "text") in _TEXT_TYPES:
            problems += _text_construct(content, f"{where}/content")
    return problems


def atom_problems(document: str) -> list[str]:
    """What makes `document` not an RFC 4287 feed document (empty: nothing found)."""
    try:
        root = ElementTree.fromstring(document.encode("utf-8"))
    except ElementTree.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    if root.tag != ATOM + "feed":
        return [f"the root is {root.tag}, not atom:feed (4.1.1)"]
    problems = _common(root, "feed", _FEED_ONCE, _FEED_AT_MOST_ONCE)
    has_author = _count(root, "author") > 0
    ids: list[str] = []
    for n, entry in enumerate(root.findall(ATOM + "entry")):
        problems += _entry(entry, f"feed/entry[{n}]", has_author)
        ids.append((entry.findtext(ATOM + "id") or "").strip())
    if len(ids) != len(set(ids)):
        problems.append("feed: two entries share an atom:id (4.1.1)")
    return problems
