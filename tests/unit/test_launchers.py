"""Which command a language's box waits in, and what its folder holds meanwhile."""

from __future__ import annotations

from ce_ws.config import Settings
from ce_ws.languages import DEFAULT_LAUNCHER, load_languages
from ce_ws.sandbox.base import BoxProfile
from ce_ws.sandbox.docker import pooled_profiles

LANGUAGES = load_languages()


def test_preloaded_languages_wait_in_their_interpreter_unless_preload_is_off() -> None:
    waits_in = {language.name: language.box_launcher(preload=True)[0] for language in LANGUAGES}
    assert waits_in == {
        "python": DEFAULT_LAUNCHER[0],  # the default launcher is python3 -u itself
        "javascript": "node",
        "ruby": "ruby",
        "bash": DEFAULT_LAUNCHER[0],
        "c": DEFAULT_LAUNCHER[0],
        "cpp": DEFAULT_LAUNCHER[0],
    }
    assert {language.box_launcher(preload=False) for language in LANGUAGES} == {DEFAULT_LAUNCHER}


def test_only_rubys_box_holds_a_placeholder() -> None:
    def placeholders(name: str) -> tuple[str, ...]:
        launcher = LANGUAGES.resolve(name).box_launcher(preload=True)
        return BoxProfile.of(
            Settings().defaults, tty=True, tmp_exec=False, runtime="runc", launcher=launcher
        ).placeholders

    assert {name: placeholders(name) for name in ("python", "javascript", "ruby")} == {
        "python": (),
        "javascript": (),
        "ruby": ("main.rb",),
    }


def test_the_pool_keeps_a_box_for_each_launcher_with_and_without_a_terminal() -> None:
    preloaded = {(p.launcher[0], p.tmp_exec) for p in pooled_profiles(Settings(), LANGUAGES)}
    assert preloaded == {(DEFAULT_LAUNCHER[0], False), (DEFAULT_LAUNCHER[0], True),
                         ("node", False), ("ruby", False)}  # fmt: skip
    assert len(pooled_profiles(Settings(), LANGUAGES)) == 8 == Settings().pool.max_total
    plain = Settings.model_validate({"sandbox": {"preload": False}})
    assert len(pooled_profiles(plain, LANGUAGES)) == 4
