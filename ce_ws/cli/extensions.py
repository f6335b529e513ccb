"""Which of the server's languages a file is written in, from its extension.

Pure logic over `GET /api/v1/languages`: a language matches the extension
of its entry file (`main.py`) first, else its name (`.c`) or one of its
aliases (`.rb`, `.cxx`), so a new language on the server needs nothing here.
"""

from __future__ import annotations

from pathlib import PurePath

from ce_ws.protocol import LanguageInfo


def _extension(path: str) -> str:
    return PurePath(path).suffix.lstrip(".").lower()


def entry_extension(language: LanguageInfo) -> str:
    """The extension of the language's entry file (`py` for `main.py`), maybe empty."""
    return _extension(language.entry_file)


def language_for(path: str, languages: list[LanguageInfo]) -> str | None:
    """The language of `path`, or None when its extension names none of them."""
    extension = _extension(path)
    if not extension:
        return None
    for language in languages:
        if entry_extension(language) == extension:
            return language.name
    for language in languages:
        if extension in {language.name.lower(), *(alias.lower() for alias in language.aliases)}:
            return language.name
    return None
