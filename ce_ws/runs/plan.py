"""From a validated request to a `RunPlan`: language, files, effective limits.

Pure logic (no I/O); called for every `run` and `execute` before admission,
so a refused request never costs a container.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ce_ws.config import RunLimits, Settings
from ce_ws.errors import BadMessage, CodeTooLarge, LimitExceeded, Unauthorized, clip
from ce_ws.languages import Language, LanguageTable
from ce_ws.protocol import RunRequest
from ce_ws.sandbox.staging import check_file_name


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything a run needs, checked against the server's settings."""

    language: Language
    files: list[tuple[str, bytes]]
    args: list[str]
    stdin: bytes | None
    limits: RunLimits
    correlation_id: str | int | None
    #: The network policy the run uses; None: no network.
    network: str | None = None
    #: Compile, keep the program in the compile cache, and run nothing (`prepare`).
    compile_only: bool = False

    @property
    def entry(self) -> str:
        return self.files[0][0]


def effective_limits(request: RunRequest, settings: Settings, *, terminal: bool) -> RunLimits:
    """The server defaults, lowered where the client asked; above maxima is refused.

    A terminal run has the long clocks and short CPU budget of `settings.terminal`.
    """
    defaults, maxima = settings.run_limits(terminal=terminal)
    asked = request.limits.model_dump(exclude_none=True) if request.limits else {}
    for name, value in asked.items():
        maximum = getattr(maxima, name)
        if value > maximum:
            raise LimitExceeded(
                f"{name}={value} is above the maximum {maximum}", field=f"limits.{name}"
            )
    # Validated, not copied: a limit below its floor must never reach the engine.
    return RunLimits.model_validate({**defaults.model_dump(), **asked})


def _files(request: RunRequest, language: Language, settings: Settings) -> list[tuple[str, bytes]]:
    if request.files is not None and request.code is not None:
        raise BadMessage("give either code or files, not both", field="code")
    if request.files is not None:
        files = [(f.name, f.data()) for f in request.files]
    elif request.code is not None:
        files = [(language.entry_file, request.code.encode())]
    else:
        raise BadMessage("a run needs code or files", field="code")
    total = sum(len(data) for _, data in files)
    if total > settings.max_code_bytes:
        raise CodeTooLarge(
            f"code is {total} bytes; the limit is {settings.max_code_bytes}", field="code"
        )
    for name, _ in files:
        check_file_name(name)
    return files


def _args(request: RunRequest, settings: Settings) -> list[str]:
    if len(request.args) > settings.max_args:
        raise BadMessage(f"at most {settings.max_args} arguments", field="args")
    # The arguments travel in the launcher's go line, which a TTY caps.
    if len(json.dumps(request.args).encode()) > settings.max_args_bytes or any(
        "\0" in arg for arg in request.args
    ):
        raise BadMessage(
            f"arguments are limited to {settings.max_args_bytes} bytes, no NUL", field="args"
        )
    return request.args


def network_policy(
    request: RunRequest, language: Language, settings: Settings, credentials: tuple[str, ...]
) -> str | None:
    """The policy a run asked for, if this client may use it; unknown is `bad_message`."""
    if request.network is None:
        return None
    if settings.sandbox.runtime_for(language.name) == "runsc":
        # The engine registers runsc with --network=none (docs/network.md).
        raise BadMessage(
            f"{language.name} runs under gVisor here, which has no network;"
            " network policies are for runs under runc",
            field="network",
        )
    policies = settings.network.policies
    policy = policies.get(request.network)
    if policy is None:
        known = ", ".join(sorted(policies)) or "none (this server gives no run a network)"
        raise BadMessage(
            f"no network policy {clip(request.network)!r}; this server has: {known}",
            field="network",
        )
    if not policy.allows((*credentials, request.token)):
        raise Unauthorized(
            f"network policy {request.network!r} needs a token that grants it", field="network"
        )
    return request.network


def plan_run(
    request: RunRequest,
    *,
    languages: LanguageTable,
    settings: Settings,
    terminal: bool = False,
    credentials: tuple[str, ...] = (),
) -> RunPlan:
    """Resolve and check a request (for a terminal run or a batch one).

    Raises a `CeError` naming the bad field.
    """
    language = languages.resolve(request.language)
    if request.version is not None and not language.version.startswith(request.version):
        raise BadMessage(
            f"{language.name} {clip(request.version)} is not available; this server has {language.version}",
            field="version",
        )
    files = _files(request, language, settings)
    stdin = request.stdin.encode() if request.stdin is not None else None
    if stdin is not None and len(stdin) > settings.max_message_bytes:
        raise CodeTooLarge("stdin is larger than the message limit", field="stdin")
    return RunPlan(
        language=language,
        files=files,
        args=_args(request, settings),
        stdin=stdin,
        limits=effective_limits(request, settings, terminal=terminal),
        correlation_id=request.id,
        network=network_policy(request, language, settings, credentials),
    )
