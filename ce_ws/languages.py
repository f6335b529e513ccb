"""The languages data file, parsed once into `Language` models.

Loaded by `create_app` (through `load_languages`) and looked up by name or
alias for every run.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ce_ws.errors import UnknownLanguage

LANGUAGES_FILE = Path(__file__).with_name("languages.toml")
WORK_DIR = "/work"
BINARY_PATH = "/tmp/main"
#: The runtime image's launcher (docker/runtime/launch), `python3 -u` itself:
#: it waits for "go", then execs the run command, or runs Python in place.
DEFAULT_LAUNCHER = ("/opt/ce/launch",)


class Language(BaseModel):
    """One language: how to compile (optionally) and run a program in it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    aliases: tuple[str, ...] = ()
    version: str
    version_command: tuple[str, ...]
    entry_file: str
    source_suffixes: tuple[str, ...] = ()
    compile: tuple[str, ...] = Field(default=())
    run: tuple[str, ...]
    #: The box's launcher can run `run` itself: the interpreter is already
    #: started when the program arrives (see docker/runtime/launch*).
    preloaded: bool = False
    #: The command a box for this language waits in, when it is preloaded.
    launcher: tuple[str, ...] = DEFAULT_LAUNCHER

    def box_launcher(self, *, preload: bool) -> tuple[str, ...]:
        """The command this language's box waits in (`preload`: the server's setting)."""
        return self.launcher if self.preloaded and preload else DEFAULT_LAUNCHER

    @property
    def compiled(self) -> bool:
        return bool(self.compile)

    def compile_argv(self, file_names: list[str]) -> list[str]:
        """The compile command for these staged files (entry first)."""
        sources = [
            f"{WORK_DIR}/{name}" for name in file_names if name.endswith(self.source_suffixes)
        ]
        return self._expand(self.compile, file_names[0], sources)

    def run_argv(self, entry: str) -> list[str]:
        """The run command for this entry file."""
        return self._expand(self.run, entry, [])

    @staticmethod
    def _expand(template: tuple[str, ...], entry: str, sources: list[str]) -> list[str]:
        argv: list[str] = []
        for part in template:
            if part == "{sources}":
                argv.extend(sources)
            else:
                argv.append(
                    part.replace("{entry}", f"{WORK_DIR}/{entry}").replace("{binary}", BINARY_PATH)
                )
        return argv


class LanguageTable:
    """Every language by name, plus an alias index."""

    def __init__(self, languages: list[Language]) -> None:
        self.by_name = {language.name: language for language in languages}
        self._by_alias = {alias: language for language in languages for alias in language.aliases}

    def resolve(self, name: str) -> Language:
        """Find a language by name or alias; called when a run arrives."""
        key = name.strip().lower()
        found = self.by_name.get(key) or self._by_alias.get(key)
        if found is None:
            known = ", ".join(sorted(self.by_name))
            raise UnknownLanguage(f"unknown language {name!r}; known: {known}", field="language")
        return found

    def __iter__(self) -> Iterator[Language]:
        return iter(self.by_name.values())


def load_languages(path: Path = LANGUAGES_FILE) -> LanguageTable:
    """Parse the data file; called once at startup."""
    data = tomllib.loads(path.read_text())
    return LanguageTable([Language(name=name, **entry) for name, entry in data.items()])
