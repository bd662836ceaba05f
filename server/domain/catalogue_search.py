"""Search terms for the service catalogue: the words residents and clerks actually type.

A resident asks for 低保, not 最低生活保障审批; a clerk on a tablet types ``dbsq`` rather than switch
the keyboard to Chinese. So every item is found by its name, its district-maintained aliases (俗称,
``ServiceItemSpec.aliases``), its code, and the pinyin of the name and aliases — full (``dibao``) and
initials (``dbsq``). Each term carries a weight so that exact and alias hits rank before pinyin
guesses, and pinyin guesses before mentions deep in an item's guide (the full-text index).

Pure: ``terms_for`` is a function of the strings given (pypinyin's dictionary, no I/O).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pypinyin import Style, lazy_pinyin

TermKind = Literal["name", "alias", "code", "initials", "pinyin"]

# Lower ranks first. Words a person typed (name, alias, code) outrank pinyin readings of them.
KIND_WEIGHT: dict[str, int] = {"name": 0, "alias": 0, "code": 0, "initials": 1, "pinyin": 1}

_NOT_HAN_OR_WORD = re.compile(r"[^\w\u3400-\u9fff]+")
_ASCII_LETTERS = re.compile(r"^[a-z]+$")


@dataclass(frozen=True)
class Term:
    term: str
    kind: TermKind

    @property
    def weight(self) -> int:
        return KIND_WEIGHT[self.kind]


def normalise(text: str) -> str:
    """Lower case, no spaces or punctuation: 「低保 申请」, 「DBSQ」 and 「dbsq」 search alike."""
    return _NOT_HAN_OR_WORD.sub("", text.strip().lower())


def _readings(text: str) -> tuple[str, str]:
    """(initials, full pinyin) of the Chinese in ``text``; other characters are dropped."""
    han = "".join(ch for ch in text if "\u3400" <= ch <= "\u9fff")
    if not han:
        return "", ""
    initials = "".join(lazy_pinyin(han, style=Style.FIRST_LETTER))
    full = "".join(lazy_pinyin(han))
    return initials.lower(), full.lower()


def terms_for(name: str, aliases: Iterable[str], code: str) -> list[Term]:
    """Every term an item is found by, without duplicates (first kind wins)."""
    out: dict[str, Term] = {}

    def add(term: str, kind: TermKind) -> None:
        term = normalise(term)
        if term and term not in out:
            out[term] = Term(term, kind)

    add(name, "name")
    for alias in aliases:
        add(alias, "alias")
    add(code, "code")
    for text in (name, *aliases):
        initials, full = _readings(text)
        add(initials, "initials")
        add(full, "pinyin")
    return list(out.values())


def is_pinyin_query(query: str) -> bool:
    """Only a query of latin letters can be pinyin; Chinese queries never match readings."""
    return bool(_ASCII_LETTERS.match(normalise(query)))


def matched_alias(query: str, name: str, aliases: Iterable[str]) -> str | None:
    """The alias a hit came through, for 「又称：低保」; None when the name itself matches."""
    term = normalise(query)
    if not term or term in normalise(name):
        return None
    pinyin = is_pinyin_query(term)
    for alias in aliases:
        if term in normalise(alias) or (pinyin and any(term in r for r in _readings(alias))):
            return alias
    return None
