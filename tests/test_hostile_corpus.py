"""The fast subset of the hostile-input corpus (scripts/hostile_corpus.py, the cases marked
``ci``) through the CLI (in-process) and the server: each case ends as expected (an image with
every pixel outside the regions identical to the displayed input, a notice, or one error line
/ a 4xx JSON answer), never a traceback. Time and RSS bounds are checked by the script's full
run (python scripts/hostile_corpus.py), not here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hostile_corpus as corpus
import httpx
import pytest

CASES = [c for c in corpus.generate(light=True) if c.ci]
# Cases whose fix lives on another branch and is not merged yet stay in the script only.
PENDING: set[str] = set()


def test_corpus_is_large_and_named_uniquely() -> None:
    every = corpus.generate(light=True)
    assert len(every) >= 300
    assert {"valid", "truncated", "corrupt", "bomb", "animated", "exif", "regions", "names",
            "special"} <= {c.group for c in every}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli(case, tmp_path: Path, capsys) -> None:
    if case.name in PENDING:
        pytest.skip(f"needs {case.needs}")
    from deepcream.cli import main

    folder = corpus.materialize(case, tmp_path / "in")
    out = tmp_path / "out"
    code = main(case.cli_args(folder, out))
    err = capsys.readouterr().err
    outcome, problem = corpus.cli_outcome(case, code, err, out)
    assert problem is None, f"{case.name}: {outcome}: {problem}"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    from deepcream.server import Settings
    from deepcream.server.runner import serve_in_thread

    with serve_in_thread(Settings(engine="classical")) as base, \
            httpx.Client(base_url=base, timeout=120, trust_env=False) as http:
        yield http


HTTP_CASES = [c for c in CASES if c.http is not None and isinstance(c.files.get(c.input), bytes)]


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.name for c in HTTP_CASES])
def test_server(case, client: httpx.Client) -> None:
    if case.name in PENDING:
        pytest.skip(f"needs {case.needs}")
    resp = client.post("/v1/decensor", files=case.upload(), data=case.form())
    problem = corpus.http_outcome(case, resp.status_code, dict(resp.headers), resp.content)
    assert problem is None, f"{case.name}: {problem}"


def test_server_healthy_after_the_corpus(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    # (/readyz answers 503 while the server starts: only the corpus requests count here.)
    metrics = client.get("/metrics").text.splitlines()
    assert not [m for m in metrics if 'route="/v1/decensor"' in m and 'status="5' in m]
