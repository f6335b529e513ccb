"""The `ce` command line: `ce run`, `ce languages`, `ce watch`.

    ce run FILE [--language L] [--server URL] [--token T] [-- ARGS...]
    ce languages [--server URL]
    ce watch ROOM_URL

Each command returns its exit status (docs/cli.md lists them).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError
from yarl import URL

from ce_ws.cli.connect import Unavailable, fetch_languages, open_socket
from ce_ws.cli.endpoints import BadAddress, room_address, server_url
from ce_ws.cli.extensions import entry_extension, language_for
from ce_ws.cli.outcome import EX_USAGE, Ending
from ce_ws.cli.session import RunRequest, RunSession
from ce_ws.cli.settings import ClientSettings
from ce_ws.cli.terminal import is_terminal
from ce_ws.cli.watch import watch_room

EX_SOFTWARE = 70  # sysexits.h: a bug in `ce` itself
EX_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


class UsageError(Exception):
    """The command line (or the file it names) cannot be used; exit 2."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `ce` command."""
    parser = argparse.ArgumentParser(
        prog="ce", description="Run code on a Code Executor server from your terminal."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run a file (or - for stdin) interactively",
        description="Run FILE on the server; on a terminal you talk to it live, "
        "otherwise stdin is piped to it. Ctrl-\\ stops the run.",
    )
    run.add_argument("file", metavar="FILE", help="the program; - reads it from stdin")
    run.add_argument("args", nargs="*", metavar="ARGS", help="the program's arguments, after --")
    run.add_argument("-l", "--language", help="the language (default: from FILE's extension)")
    languages = commands.add_parser("languages", help="list the server's languages")
    watch = commands.add_parser("watch", help="follow a live room read-only")
    watch.add_argument("room_url", metavar="ROOM_URL", help="the room's viewer URL")
    for command in (run, languages, watch):
        command.add_argument("--server", help="the server's URL (default: $CE_SERVER)")
        command.add_argument("--token", help="the server's token (default: $CE_TOKEN)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ce` (pyproject's [project.scripts]); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = ClientSettings()
    except (ValidationError, SettingsError) as exc:
        print(f"ce: CE_SERVER or CE_TOKEN cannot be used: {exc}", file=sys.stderr)
        return EX_USAGE
    try:
        ending = asyncio.run(_command(args, settings))
    except (UsageError, BadAddress) as exc:
        ending = Ending(EX_USAGE, str(exc))
    except Unavailable as exc:
        ending = exc.ending
    except KeyboardInterrupt:
        ending = Ending(EX_INTERRUPTED)
    except Exception as exc:  # the terminal is already restored: say what broke
        ending = Ending(EX_SOFTWARE, f"unexpected error in ce: {exc!r}")
    if ending.why:
        print(f"ce: {ending.why}", file=sys.stderr)
    return ending.code


async def _command(args: argparse.Namespace, settings: ClientSettings) -> Ending:
    token: str | None = args.token or settings.token
    if args.command == "watch":
        room = room_address(args.room_url)
        server = server_url(args.server) if args.server else room.server
        return await watch_room(server, room.room, token)
    server = server_url(args.server or settings.server)
    if args.command == "languages":
        return await _list_languages(server, token)
    return await _run(args, server, token)


async def _run(args: argparse.Namespace, server: URL, token: str | None) -> Ending:
    code = _read_source(args.file)
    language = args.language or await _language_of(args.file, server, token)
    tty = is_terminal(0) and is_terminal(1)
    async with open_socket(server, token) as ws:
        session = RunSession(ws, tty=tty)
        ending = await session.drive(RunRequest(language=language, code=code, args=args.args))
    if ending.why:  # on a line of its own, after the program's last one
        session.notice(ending.why)
    return Ending(ending.code)


def _read_source(path: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text (byte {exc.start})") from exc


async def _language_of(path: str, server: URL, token: str | None) -> str:
    if path == "-":
        raise UsageError("a program read from stdin needs --language (see `ce languages`)")
    language = language_for(path, await fetch_languages(server, token))
    if language is None:
        raise UsageError(
            f"cannot tell the language of {path} from its extension; "
            "pass --language (see `ce languages`)"
        )
    return language


async def _list_languages(server: URL, token: str | None) -> Ending:
    languages = await fetch_languages(server, token)
    rows = [
        (
            language.name,
            language.version,
            ", ".join(language.aliases) or "-",
            f".{entry_extension(language)}" if entry_extension(language) else "-",
        )
        for language in languages
    ]
    widths = [max(len(row[column]) for row in [*rows, _HEADER]) for column in range(len(_HEADER))]
    for row in [_HEADER, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return Ending(0)


_HEADER = ("LANGUAGE", "VERSION", "ALIASES", "EXTENSION")
