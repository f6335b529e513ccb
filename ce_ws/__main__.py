"""Command line: `python -m ce_ws serve | image | doctor`."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web
from pydantic import ValidationError

from ce_ws.config import Settings


def main(argv: list[str] | None = None) -> int:
    """Parse the command and run it; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m ce_ws")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the server (settings from CE_* variables)")
    image = commands.add_parser("image", help="build the runtime image when its recipe changed")
    image.add_argument("--force", action="store_true", help="rebuild even when current")
    commands.add_parser("doctor", help="check the engine, runtimes and image; say how to fix")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = "__".join(str(part) for part in error["loc"]).upper()
            prefix = f"CE_{where}: " if where else ""
            print(f"configuration error: {prefix}{error['msg']}", file=sys.stderr)
        print(
            "fix the CE_* variables above (see the README's configuration table)", file=sys.stderr
        )
        return 2
    if args.command == "serve":
        return serve(settings)
    if args.command == "image":
        from ce_ws.image import build

        build(settings.sandbox.image, force=args.force)
        return 0
    from ce_ws.doctor import doctor

    exit_code: int = doctor(settings)
    return exit_code


def serve(settings: Settings) -> int:
    """Run the server until interrupted."""
    from ce_ws.logs import configure_event_log
    from ce_ws.web import create_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    configure_event_log()
    print(f"Code Executor on http://{settings.host}:{settings.port}/", file=sys.stderr, flush=True)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
