"""`python -m ce_ws.cli` is the `ce` command."""

from __future__ import annotations

from ce_ws.cli.main import main

raise SystemExit(main())
