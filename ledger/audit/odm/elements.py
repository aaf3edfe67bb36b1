"""Building ODM's XML: elements whose text and attributes XML can carry, serialized by level."""

from __future__ import annotations

import re
from datetime import datetime
from xml.etree.ElementTree import Element, indent, tostring
from xml.sax.saxutils import quoteattr

ODM_NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot carry
_NOT_NCNAME = re.compile(r"[^A-Za-z0-9._-]")


def element(tag: str, text: str | None = None, **attributes: str) -> Element:
    """``<tag attributes>text</tag>``, each value made text XML can carry."""
    made = Element(tag, {name: clean(value) for name, value in attributes.items()})
    if text is not None:
        made.text = clean(text)
    return made


def child(parent: Element, tag: str, text: str | None = None, **attributes: str) -> Element:
    made = element(tag, text, **attributes)
    parent.append(made)
    return made


def clean(text: str) -> str:
    """Text XML can carry: a character XML 1.0 forbids is written as its code, ``\\u0001``."""
    return _NOT_XML.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def attr(value: str) -> str:
    return quoteattr(clean(value))


def serialized(tree: Element, level: int) -> str:
    """``tree`` as indented XML text, for a place ``level`` deep in the file."""
    indent(tree, space="  ", level=level)
    return "  " * level + tostring(tree, encoding="unicode").rstrip() + "\n"


def ncname(text: str) -> str:
    return _NOT_NCNAME.sub("_", text)


def timestamp(value: datetime) -> str:
    return value.isoformat()
