"""Replicas sharing one Redis (`CE_REDIS_URL`): a Judge0 token answers on any of them,
and a client's runs a minute are one budget across them.

Judge0 is driven by the real `judge0` client from PyPI, as in
test_compat_judge0.py. Each replica ends only its own unfinished
submissions, also after a crash; with Redis gone, Judge0 requests are
refused `busy` while native runs go on, counted per replica.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import judge0

from tests.integration.redis_server import redis_replica, redis_server
from tests.integration.server_process import ServerProcess

SDK_WAIT_S = 60
PYTHON = 71  # Judge0 CE's id for Python 3
ECHO = b'{"language": "bash", "code": "echo on"}'


def sdk(server: ServerProcess) -> judge0.Client:
    return judge0.Client(f"{server.url}/judge0", retry_strategy=judge0.MaxWaitTime(SDK_WAIT_S))


def by_token(token: str) -> judge0.Submission:
    asked = judge0.Submission(source_code="", language=PYTHON)
    asked.token = token
    return asked


def test_a_token_made_on_one_replica_is_read_on_the_other(tmp_path: Path) -> None:
    with (
        redis_server() as redis,
        redis_replica(redis, tmp_path, "a") as a,
        redis_replica(redis, tmp_path, "b") as b,
    ):
        ran = judge0.run(client=sdk(a), source_code="print('from a')", language=PYTHON)
        found = sdk(b).get_submission(by_token(ran.token))
    assert (ran.status, found.status, found.stdout) == (
        judge0.Status.ACCEPTED, judge0.Status.ACCEPTED, "from a\n",
    )  # fmt: skip
    assert not (tmp_path / "a-unused.sqlite3").exists(), "the submissions went to the file"


def test_a_crashed_replica_ends_only_its_own_submissions_at_its_next_start(tmp_path: Path) -> None:
    with redis_server() as redis, redis_replica(redis, tmp_path, "b") as b:
        with redis_replica(redis, tmp_path, "a") as a:
            waiting = sdk(a).create_submission(
                judge0.Submission(source_code="import time; time.sleep(60)", language=PYTHON)
            )
            a.crash()  # kill -9: nothing ended it
        mid = sdk(b).get_submission(by_token(waiting.token))
        with redis_replica(redis, tmp_path, "a"):  # its start ends what it left
            ended = sdk(b).get_submission(by_token(waiting.token))
    assert mid.status in (judge0.Status.IN_QUEUE, judge0.Status.PROCESSING), mid.status
    assert ended.status == judge0.Status.INTERNAL_ERROR, ended.status


def test_a_clients_runs_a_minute_are_one_budget_across_replicas(tmp_path: Path) -> None:
    limit = {"CE_CAPACITY__RUNS_PER_MINUTE": "2"}
    with (
        redis_server() as redis,
        redis_replica(redis, tmp_path, "a", **limit) as a,
        redis_replica(redis, tmp_path, "b", **limit) as b,
    ):
        answers = [_post(f"{server.url}/api/v1/execute", ECHO)[0] for server in (a, b, a, b)]
    # Alone, each replica would have allowed two: four in all.
    assert answers == [200, 200, 429, 429], answers


def test_without_redis_judge0_is_busy_and_native_runs_go_on(tmp_path: Path) -> None:
    with redis_server() as redis, redis_replica(redis, tmp_path, "a") as a:
        redis.stop()
        refused = _post(f"{a.url}/judge0/submissions?wait=true",
                        b'{"source_code": "print(1)", "language_id": 71}')  # fmt: skip
        native = _post(f"{a.url}/api/v1/execute", ECHO)
        redis.start()
        again = judge0.run(client=sdk(a), source_code="print('back')", language=PYTHON)
    assert refused[0] == 503 and b"Redis" in refused[1], refused
    assert native[0] == 200 and b'"stdout":"on\\n"' in native[1], native
    assert again.status == judge0.Status.ACCEPTED


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
