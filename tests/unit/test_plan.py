"""Planning a run: language resolution, files, argument and limit checks."""

from __future__ import annotations

import pytest

from ce_ws.config import Settings
from ce_ws.errors import BadMessage, CodeTooLarge, LimitExceeded, UnknownLanguage
from ce_ws.languages import load_languages
from ce_ws.protocol import RunRequest
from ce_ws.runs.plan import plan_run

LANGUAGES = load_languages()
SETTINGS = Settings()


def plan(**fields: object):  # type: ignore[no-untyped-def]
    return plan_run(RunRequest.model_validate(fields), languages=LANGUAGES, settings=SETTINGS)


def test_code_becomes_the_languages_entry_file() -> None:
    result = plan(language="c++", code="int main(){}")
    assert result.language.name == "cpp" and result.files == [("main.cpp", b"int main(){}")]


def test_limits_default_and_may_be_lowered() -> None:
    assert plan(language="py", code="").limits == SETTINGS.defaults
    lowered = plan(language="py", code="", limits={"memory_mb": 32, "cpus": 0.25})
    assert (lowered.limits.memory_mb, lowered.limits.cpus, lowered.limits.wall_ms) == (
        32,
        0.25,
        SETTINGS.defaults.wall_ms,
    )


def test_limits_may_rise_up_to_the_maximum_but_not_past_it() -> None:
    assert (
        plan(language="py", code="", limits={"wall_ms": SETTINGS.maxima.wall_ms}).limits.wall_ms
        == SETTINGS.maxima.wall_ms
    )
    with pytest.raises(LimitExceeded) as caught:
        plan(language="py", code="", limits={"wall_ms": SETTINGS.maxima.wall_ms + 1})
    assert caught.value.field == "limits.wall_ms"


def test_unknown_language_lists_the_known_ones() -> None:
    with pytest.raises(UnknownLanguage, match="python"):
        plan(language="brainfuck", code="+")


def test_version_must_match_the_servers() -> None:
    assert plan(language="python", version="3.11", code="").language.name == "python"
    with pytest.raises(BadMessage) as caught:
        plan(language="python", version="2.7", code="")
    assert caught.value.field == "version"


def test_code_size_counts_every_file() -> None:
    half = "x" * (SETTINGS.max_code_bytes // 2 + 1)
    with pytest.raises(CodeTooLarge):
        plan(
            language="py",
            files=[{"name": "a.py", "content": half}, {"name": "b.py", "content": half}],
        )


@pytest.mark.parametrize("name", ["../x.py", "a/b.py", ".", "..", "x\0.py", "é" * 200])
def test_file_names_must_be_one_plain_component(name: str) -> None:
    with pytest.raises(BadMessage):
        plan(language="py", files=[{"name": name, "content": ""}])


def test_duplicate_file_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        RunRequest.model_validate({"language": "py", "files": [{"name": "a", "content": ""}] * 2})


def test_arguments_are_bounded() -> None:
    with pytest.raises(BadMessage):
        plan(language="py", code="", args=["x" * (SETTINGS.max_args_bytes + 1)])
    with pytest.raises(BadMessage):
        plan(language="py", code="", args=["nul\0"])
