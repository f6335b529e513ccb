"""The `ce` command's own settings: where the server is, and the token.

Loaded once in `main`; a command-line option overrides its variable.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SERVER = "http://127.0.0.1:8080"
#: How long `ce` waits for the server to accept a connection.
CONNECT_TIMEOUT_S = 10.0
#: After Ctrl-\ or a signal to `ce`: how long the run's `exit` may take to come back.
KILL_WAIT_S = 5.0
#: A window being resized sends its size once it has been still this long.
RESIZE_SETTLE_S = 0.1


class ClientSettings(BaseSettings):
    """`CE_SERVER` (the server's base URL) and `CE_TOKEN` (when it requires one)."""

    # Only these two variables: the server's other CE_* settings are not ours.
    model_config = SettingsConfigDict(env_prefix="CE_", extra="ignore", frozen=True)

    server: str = DEFAULT_SERVER
    token: str | None = None
