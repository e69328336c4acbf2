"""`nlptransfer serve`: the real server on 127.0.0.1 (a subprocess on a tiny trained run, or uvicorn in a thread on
a fake predictor) through a real HTTP client: same rows as `nlptransfer predict`, batching across concurrent
clients, input limits and bad input answered with one JSON error line, a port in use, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from test_cli import _error
from tiny import sentiment_rows, tiny_model_dir, write_csv

from benchmarks.bench_serve import start_server, stop_server
from nlptransfer import cli, serving
from nlptransfer.predictor import Predictor
from nlptransfer.serving import ServeError, ServeSettings, bind_socket, create_app, parse_texts

LIMITS = ["--max_texts_per_request", "20", "--max_chars", "200"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny sentiment run made by `nlptransfer run` (model, tokenizer, card, run.json, metrics.json)."""
    root = tmp_path_factory.mktemp("serve")
    data = write_csv(root / "reviews.csv", sentiment_rows(90))
    out = root / "run"
    cli.main(
        [
            "run",
            "sentiment",
            "--model_name_or_path",
            str(tiny_model_dir(root / "models")),
            "--dataset",
            str(data),
        ]
        + ["--eval_datasets", "none", "--text_column", "review", "--label_column", "sentiment"]
        + ["--output_dir", str(out), "--strategy", "full", "--max_steps", "24", "--warmup_steps", "0"]
        + ["--per_device_train_batch_size", "16", "--learning_rate", "5e-3", "--use_cpu", "true"]
        + ["--eval_strategy", "no", "--save_strategy", "no"]  # enough steps to learn more than one label
    )
    return out


@contextmanager
def serve_process(run: Path, log: Path, *flags: str):
    """`nlptransfer serve RUN --port 0 FLAGS` in a subprocess (the benchmark's launcher); yields (base url,
    process); stops it with Ctrl-C (SIGINT) and checks that it shut down cleanly."""
    proc, url = start_server(str(run), list(flags), log, timeout=180)
    try:
        yield url, proc
    finally:
        code = stop_server(proc)
    assert code == 0, log.read_text()
    assert "server stopped" in log.read_text()


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """The batching server (wait up to 500 ms for more requests, so concurrent ones meet) with small limits."""
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with serve_process(trained, log, "--max_wait_ms", "500", "--max_batch_size", "16", *LIMITS) as (url, _):
        yield url


def health(url: str) -> dict:
    return httpx.get(url + "/health", timeout=30).json()


def concurrently(url: str, bodies: list[dict]) -> list[httpx.Response]:
    """POST each body to /predict from its own thread and connection, all released at once."""
    barrier = threading.Barrier(len(bodies))
    answers: list[httpx.Response | None] = [None] * len(bodies)

    def send(i: int) -> None:
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            answers[i] = client.post(url + "/predict", json=bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def assert_same_rows(got: list[dict], expected: list[dict]) -> None:
    """The rows of `nlptransfer predict`: same keys, texts and labels; probabilities equal up to float
    rounding (a batch pads differently)."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert set(g) == set(e) and g["text"] == e["text"] and g["label"] == e["label"]
        assert g["probabilities"] == pytest.approx(e["probabilities"], abs=1e-5)
        assert g.get("score", 0) == pytest.approx(e.get("score", 0), abs=1e-5)


# within the server's --max_chars 200: the last is 194 characters
TEXTS = [r["review"] for r in sentiment_rows(12, seed=3)] + ["", "an unknownword", " ".join(["good"] * 39)]


def test_predict_answers_the_rows_of_nlptransfer_predict(trained, server):
    expected = cli.cli(["predict", "--model", str(trained), *(f"--text={t}" for t in TEXTS)])
    answer = httpx.post(server + "/predict", json={"texts": TEXTS}, timeout=60)
    assert answer.status_code == 200 and list(answer.json()) == ["predictions"]
    assert_same_rows(answer.json()["predictions"], expected)
    assert len({r["label"] for r in expected}) > 1  # a trained model, not one constant answer
    one = httpx.post(server + "/predict", json={"text": TEXTS[0]}, timeout=60).json()
    assert_same_rows(one["predictions"], expected[:1])


def test_info_has_the_labels_card_and_run(trained, server):
    info = httpx.get(server + "/info", timeout=30).json()
    config = json.loads((trained / "config.json").read_text())
    assert info["labels"] == [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    assert info["backend"] == "pytorch" and info["multilabel"] is False
    assert info["model_card"]["pipeline_tag"] == "text-classification" and info["model_card"]["title"]
    assert info["run"]["recipe"] == "sentiment" and info["run"]["status"] == "complete"
    assert info["server"]["max_texts_per_request"] == 20 and info["server"]["batching"] is True
    assert {"batches_run", "texts_served", "requests_served"} <= set(info["stats"])


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(trained, server):
    texts = TEXTS[:8]
    expected = cli.cli(["predict", "--model", str(trained), *(f"--text={t}" for t in texts)])
    before = health(server)
    answers = concurrently(server, [{"texts": [t]} for t in texts])
    after = health(server)
    for answer, row in zip(answers, expected, strict=True):
        assert answer.status_code == 200
        assert_same_rows(answer.json()["predictions"], [row])
    assert after["texts_served"] - before["texts_served"] == 8
    assert after["requests_served"] - before["requests_served"] == 8
    assert after["batches_run"] - before["batches_run"] < 8  # fewer model calls than requests
    assert after["largest_batch"] > 1  # one model call answered several clients' texts


def test_no_batching_runs_one_model_call_per_request(trained, tmp_path):
    with serve_process(trained, tmp_path / "serve.log", "--no_batching", "--max_wait_ms", "500") as (url, _):
        before = health(url)
        answers = concurrently(url, [{"texts": [t]} for t in TEXTS[:6]])
        after = health(url)
    assert [a.status_code for a in answers] == [200] * 6
    assert after["batches_run"] - before["batches_run"] == 6
    assert after["texts_served"] - before["texts_served"] == 6


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe\x00", 400, "not valid JSON"),
        (b'["a", "b"]', 422, "not an object"),
        (b"{}", 422, "neither"),
        (b'{"texts": ["a"], "text": "b"}', 422, "both"),
        (b'{"textz": ["a"]}', 422, "unknown key 'textz'"),
        (b'{"texts": []}', 422, "empty list"),
        (b'{"texts": "a"}', 422, "not a list"),
        (b'{"texts": ["a", 3]}', 422, "texts[1] is a int, not a string"),
        (b'{"texts": ["a", null]}', 422, "texts[1] is a null"),
        (b'{"text": ["a"]}', 422, "text is a list, not a string"),
        (json.dumps({"texts": ["a"] * 21}).encode(), 413, "limit of 20 (--max_texts_per_request)"),
        (json.dumps({"texts": ["a", "b" * 201]}).encode(), 413, "texts[1] has 201 characters"),
        (json.dumps({"text": "b" * 201}).encode(), 413, "limit of 200 (--max_chars)"),
        (json.dumps({"texts": ["a" * 100] * 600}).encode(), 413, "request body is over"),
        (b'{"texts": ["a", "\\ud800"]}', 422, "texts[1] is not valid Unicode"),
        (b"[" * 5000, 400, "nested too deep"),
    ],
)
def test_bad_input_is_a_json_error_line(server, body, status, words):
    answer = httpx.post(
        server + "/predict", content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert answer.status_code == status
    error = answer.json()
    assert list(error) == ["error"] and "\n" not in error["error"] and words in error["error"], error
    assert health(server)["status"] == "ok"  # still serving


def test_unknown_paths_and_methods_are_json_errors(server):
    missing = httpx.get(server + "/nope", timeout=30)
    assert missing.status_code == 404 and "POST /predict" in missing.json()["error"]
    wrong = httpx.get(server + "/predict", timeout=30)
    assert wrong.status_code == 405 and list(wrong.json()) == ["error"]


# ------------------------------------------------------------------- in-process server on a fake predictor


class Fake(Predictor):
    """Rows that name their text; raises on the text "boom"; records the size of every model call."""

    kind = "fake"
    labels = ["a", "b"]

    def __init__(self, path: Path):
        self.path = path
        self.calls: list[int] = []

    def predict(self, texts, batch_size=64):
        self.calls.append(len(texts))
        time.sleep(0.02)  # a model call takes time, so requests queue up meanwhile
        if "boom" in texts:
            raise RuntimeError("boom\nsecond line of the message")
        return [
            {"text": t, "label": "a" if len(t) % 2 else "b", "probabilities": {"a": 0.5, "b": 0.5}}
            for t in texts
        ]


@contextmanager
def serve_thread(predictor: Predictor, settings: ServeSettings):
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(
        uvicorn.Config(create_app(predictor, settings), lifespan="on", log_level="warning")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def test_a_model_error_is_a_500_line_and_the_server_keeps_serving(tmp_path):
    with serve_thread(Fake(tmp_path), ServeSettings(max_wait_ms=0)) as url:
        failed = httpx.post(url + "/predict", json={"texts": ["x", "boom"]}, timeout=30)
        assert failed.status_code == 500
        assert list(failed.json()) == ["error"] and "(RuntimeError: boom)" in failed.json()["error"]
        assert "\n" not in failed.json()["error"]
        fine = httpx.post(url + "/predict", json={"texts": ["ok"]}, timeout=30)
        assert fine.status_code == 200 and fine.json()["predictions"][0]["text"] == "ok"
        assert health(url)["errors"] == 1


def test_parse_texts_refuses_a_lone_surrogate_and_deep_nesting():
    settings = ServeSettings()
    assert parse_texts(b'{"texts": ["a", "\\ud83d\\ude00"]}', settings) == ["a", "\U0001f600"]  # a pair
    for body, status, words in [
        (b'{"texts": ["a", "\\ud800"]}', 422, "texts[1] is not valid Unicode (an unpaired surrogate)"),
        (b'{"text": "b\\udfff"}', 422, "text is not valid Unicode"),
        (b'{"text": "\xed\xa0\x80"}', 422, "text is not valid Unicode"),  # a surrogate encoded as bytes
        (b"[" * 5000, 400, "nested too deep"),
        (b'{"texts": ' + b"[" * 5000 + b"]", 400, "nested too deep"),
    ]:
        with pytest.raises(ServeError) as err:
            parse_texts(body, settings)
        assert err.value.status == status and words in str(err.value) and "\n" not in str(err.value)


def test_a_text_the_model_cannot_take_fails_only_its_own_request(tmp_path):
    """A batch of several requests whose model call fails is run again request by request: only the
    request with the bad text gets the 500."""
    fake = Fake(tmp_path)
    with serve_thread(fake, ServeSettings(max_batch_size=16, max_wait_ms=500)) as url:
        bodies = [{"texts": ["a"]}, {"texts": ["boom"]}, {"texts": ["c", "dd"]}]
        answers = concurrently(url, bodies)
        stats = health(url)
    assert [a.status_code for a in answers] == [200, 500, 200]
    assert [r["text"] for r in answers[2].json()["predictions"]] == ["c", "dd"]
    assert "(RuntimeError: boom)" in answers[1].json()["error"]
    assert max(fake.calls) == 4  # the three requests met in one model call, which failed
    assert stats["errors"] == 1 and stats["texts_served"] == 3


class NaNs(Predictor):
    """Logits of a model whose weights diverged: NaN."""

    kind = "nan"
    labels = ["a", "b"]

    def __init__(self, path: Path):
        self.path = path

    def logits(self, texts, batch_size=64):
        return np.full((len(texts), 2), np.nan)


def test_nan_is_never_sent_as_json(tmp_path):
    """NaN in metrics.json is null in /info; NaN probabilities are a 500 naming them, not a broken answer."""
    (tmp_path / "metrics.json").write_text('{"train_loss": NaN, "accuracy": 0.5, "eval_loss": Infinity}')
    with serve_thread(NaNs(tmp_path), ServeSettings(max_wait_ms=0)) as url:
        info = httpx.get(url + "/info", timeout=30)
        answer = httpx.post(url + "/predict", json={"texts": ["x", "y"]}, timeout=30)
    assert info.status_code == 200
    assert info.json()["metrics"] == {"train_loss": None, "accuracy": 0.5, "eval_loss": None}
    assert answer.status_code == 500 and "NaN or infinite probabilities" in answer.json()["error"]


def test_a_large_body_is_parsed_beside_the_event_loop(tmp_path, monkeypatch):
    parsed = []
    real = asyncio.to_thread

    async def to_thread(func, *args):
        parsed.append(func.__name__)
        return await real(func, *args)

    monkeypatch.setattr(serving.asyncio, "to_thread", to_thread)
    texts = ["x" * 5000] * 250  # 1.25 MB of JSON
    with serve_thread(Fake(tmp_path), ServeSettings(max_wait_ms=0, max_batch_size=256)) as url:
        small = httpx.post(url + "/predict", json={"texts": ["a"]}, timeout=30)
        large = httpx.post(url + "/predict", json={"texts": texts}, timeout=60)
        bad = httpx.post(url + "/predict", json={"texts": texts + [3]}, timeout=60)
    assert small.status_code == 200 and large.status_code == 200
    assert len(large.json()["predictions"]) == 250
    assert bad.status_code == 422 and "texts[250] is a int" in bad.json()["error"]
    assert parsed.count("parse_texts") == 2  # the two large bodies; the small one was parsed on the loop


class Bare:
    """Only `predict(texts, batch_size)`, the least another back-end must provide (no path, info or kind)."""

    def predict(self, texts, batch_size):
        return [{"text": t, "label": "x"} for t in texts]


def test_any_object_with_predict_is_served():
    with serve_thread(Bare(), ServeSettings(max_wait_ms=0)) as url:
        answer = httpx.post(url + "/predict", json={"text": "hi"}, timeout=30)
        assert answer.json() == {"predictions": [{"text": "hi", "label": "x"}]}
        info = httpx.get(url + "/info", timeout=30).json()
    assert info["stats"]["requests_served"] == 1 and info["server"]["max_wait_ms"] == 0


def test_large_and_concurrent_requests_are_split_into_batches_and_routed_back_in_order(tmp_path):
    fake = Fake(tmp_path)
    with serve_thread(fake, ServeSettings(max_batch_size=4, max_wait_ms=50)) as url:
        big = httpx.post(url + "/predict", json={"texts": [f"t{i}" for i in range(10)]}, timeout=30).json()
        assert [r["text"] for r in big["predictions"]] == [f"t{i}" for i in range(10)]
        bodies = [{"texts": [f"r{i}-{j}" for j in range(1 + i % 3)]} for i in range(12)]
        answers = concurrently(url, bodies)
        for body, answer in zip(bodies, answers, strict=True):
            assert [r["text"] for r in answer.json()["predictions"]] == body["texts"]
        stats = health(url)
    assert max(fake.calls) <= 4 and sum(fake.calls) == 10 + sum(len(b["texts"]) for b in bodies)
    assert len(fake.calls) < 3 + len(bodies)  # concurrent requests shared model calls (10 texts: 3 calls)
    assert stats["batches_run"] == len(fake.calls) and stats["texts_served"] == sum(fake.calls)


class Gate(Fake):
    """A model call that waits until the test opens the gate, so requests pile up in the queue."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.gate = threading.Event()

    def predict(self, texts, batch_size=64):
        assert self.gate.wait(30)
        return super().predict(texts, batch_size)


def test_an_overloaded_server_answers_503_busy_and_recovers(tmp_path):
    """More than --max_queued_texts texts waiting: the next request is a 503 with Retry-After, not an
    ever-growing queue; once the model catches up, requests are answered again."""
    gate = Gate(tmp_path)
    settings = ServeSettings(max_batch_size=2, max_wait_ms=0, max_texts_per_request=3, max_queued_texts=4)
    with serve_thread(gate, settings) as url:
        held = threading.Thread(
            target=httpx.post,
            args=(url + "/predict",),
            kwargs={"json": {"texts": ["a", "bb", "c"]}, "timeout": 60},
        )
        held.start()
        deadline = time.monotonic() + 30
        while health(url)["texts_waiting"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        busy = httpx.post(url + "/predict", json={"texts": ["d", "e"]}, timeout=30)
        assert health(url)["rejected_busy"] == 1
        gate.gate.set()
        held.join(60)
        fine = httpx.post(url + "/predict", json={"texts": ["d", "e"]}, timeout=30)
        stats = health(url)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert "3 texts already wait" in busy.json()["error"] and "--max_queued_texts 4" in busy.json()["error"]
    assert fine.status_code == 200 and [r["text"] for r in fine.json()["predictions"]] == ["d", "e"]
    assert stats["texts_waiting"] == 0 and stats["texts_served"] == 5 and stats["requests_served"] == 2


# ---------------------------------------------------------------------------------------------- the CLI


def test_a_port_in_use_is_one_line_naming_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "nlptransfer.cli",
                "serve",
                str(tmp_path),  # the port is checked before the model loads
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"port {port}" in lines[0], done.stderr
    assert "already in use" in lines[0] and "--port" in lines[0]


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--max_batch_size", "0"], "--max_batch_size 0"),
        (["--max_texts_per_request", "-1"], "--max_texts_per_request"),
        (["--max_chars", "0"], "--max_chars"),
        (["--max_wait_ms", "-5"], "--max_wait_ms"),
        (["--max_queued_texts", "0"], "--max_queued_texts 0"),
        (["--max_queued_texts", "100"], "--max_queued_texts 100 is below --max_texts_per_request 256"),
        (["--port", "70000"], "--port 70000"),
        (["--host", "192.0.2.1", "--port", "0"], "cannot bind port 0 on 192.0.2.1"),  # not this machine's
    ],
)
def test_bad_flags_are_one_line(tmp_path, capsys, flags, words):
    assert words in _error(capsys, ["serve", str(tmp_path), *flags])


def test_a_folder_without_a_model_is_one_line_and_frees_the_port(tmp_path, capsys):
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    assert str(tmp_path) in _error(capsys, ["serve", str(tmp_path), "--port", str(port)])
    bind_socket("127.0.0.1", port).close()  # the port was released


def test_missing_fastapi_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # `import fastapi` now raises ImportError
    assert "pip install 'nlptransfer[serve]'" in _error(capsys, ["serve", str(tmp_path)])


def test_a_host_that_is_not_local_gets_a_warning(capsys):
    bind_socket("0.0.0.0", 0).close()
    assert "warning: --host 0.0.0.0 serves to the network" in capsys.readouterr().err
    bind_socket("127.0.0.1", 0).close()
    assert capsys.readouterr().err == ""
