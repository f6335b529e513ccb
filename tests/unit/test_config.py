"""Settings: defaults within maxima, environment names, and the README table."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from ce_ws.__main__ import main
from ce_ws.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def env_names(model: type[BaseModel], prefix: str = "CE_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_readme_documents_every_setting() -> None:
    readme = README.read_text()
    missing = [name for name in env_names(Settings) if f"`{name}`" not in readme]
    assert missing == [], f"add these to the README's configuration table: {missing}"


def test_settings_come_from_ce_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CE_DEFAULTS__WALL_MS", "1234")
    monkeypatch.setenv("CE_POOL__ENABLED", "false")
    monkeypatch.setenv("CE_ALLOWED_ORIGINS", '["https://a.example"]')
    settings = Settings()
    assert settings.defaults.wall_ms == 1234
    assert settings.pool.enabled is False
    assert settings.allowed_origins == ["https://a.example"]


def test_a_default_above_its_maximum_is_refused() -> None:
    with pytest.raises(ValidationError, match="above maxima"):
        Settings(defaults={"memory_mb": 2048}, maxima={"memory_mb": 1024})


def test_no_setting_exceeds_its_hard_ceiling() -> None:
    with pytest.raises(ValidationError):
        Settings(maxima={"memory_mb": 10**6})
    with pytest.raises(ValidationError):
        Settings(sandbox={"runtime": "kata"})


def test_a_bad_setting_is_named_with_its_variable_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CE_DEFAULTS__WALL_MS", "soon")
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert "configuration error: CE_DEFAULTS__WALL_MS: Input should be a valid integer" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("CE_SANDBOX__LANGUAGE_RUNTIMES", '{"c": "gvisor"}', "CE_SANDBOX__LANGUAGE_RUNTIMES: Input should be"),
        ("CE_SANDBOX__LANGUAGE_RUNTIMES", "{c: runsc}", "error parsing value for field \"sandbox\""),
        ("CE_SANDBOX__LANGUAGE_RUNTIMES", '{"cobol": "runsc"}', "names unknown languages ['cobol']"),
        ("CE_PUBLIC_URL", "ce.example.org", "is not an http(s)://host[:port] URL"),
        ("CE_PUBLIC_URL", "ftp://ce.example.org", "is not an http(s)://host[:port] URL"),
        ("CE_ALLOWED_HOSTS", '["box.lan:8080"]', "'box.lan:8080' is not a host name"),
        ("CE_ALLOWED_HOSTS", '["https://box.lan"]', "'https://box.lan' is not a host name"),
        ("CE_SANDBOX__DOCKER_URL", "tcp://127.0.0.1:2375", "only a local engine's socket"),
        ("CE_REDIS_URL", "127.0.0.1:6379", "must start with redis://, rediss:// or unix://"),
        ("CE_SANDBOX__ENGINES", '[{"name": "a", "url": "tcp://127.0.0.1:2375"}]', "a tcp:// engine needs \"tls\""),
        ("CE_SANDBOX__ENGINES", '[{"name": "a", "url": "unix:///s", "tls": {"ca": "c", "cert": "c", "key": "k"}}]', "\"tls\" is for a tcp:// engine"),
        ("CE_SANDBOX__ENGINES", '[{"name": "a", "url": "http://box:2376"}]', "only a local engine's socket"),
        ("CE_SANDBOX__ENGINES", '[{"name": "a", "url": "unix:///s"}, {"name": "a", "url": "unix:///t"}]', "each name once, ['a'] repeats"),
        ("CE_SANDBOX__ENGINES", '[{"name": "A b", "url": "unix:///s"}]', "String should match pattern"),
        ("CE_ADMIN_TOKEN", "short", "CE_ADMIN_TOKEN must be 16 characters or more"),
        ("CE_ADVERTISE_URL", "10.0.0.5:8080", "CE_ADVERTISE_URL='10.0.0.5:8080' is not an http(s)://host[:port] URL"),
    ],
)  # fmt: skip
def test_bad_structured_settings_are_explained_too(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    said: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
