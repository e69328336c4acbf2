"""`nlptransfer serve` under a bounded load on 127.0.0.1: requests/s and latency with and without batching, and
no request lost or answered differently from `nlptransfer predict`.

    .venv/bin/python -m benchmarks.bench_serve                          # 500 requests x 16 clients, 3 runs per mode
    .venv/bin/python -m benchmarks.bench_serve --quick --out /tmp/bench-serve   # smoke test: 40 requests, 4 clients

Protocol: `--requests` VADER test texts (the four test halves pooled and shuffled with seed 42), one text per
request. `nlptransfer predict` on the same texts (a subprocess) gives the expected rows. Then for each mode
(batching: `--max_batch_size` / `--max_wait_ms`; `--no_batching`), `--repeats` times, alternating: the server
starts as a subprocess on 127.0.0.1 with a free port, gets `--warmup` requests (not timed), then `--concurrency`
clients (one httpx.AsyncClient, one connection each) send the requests, each client taking the next request
when its answer arrives, until all are answered (or `--timeout` seconds pass: the rest count as lost); the
server is stopped with Ctrl-C (SIGINT). Measured: wall time from the first request sent to the last answer
(requests/s), latency per request (p50, p95, max), model calls the server ran (from /health: mean texts per
call), lost requests (no 200 answer) and wrong answers (label differs, or a probability by more than 1e-5 from
predict's; the server and predict pad batches differently, so probabilities may differ in float rounding).

Output: <out>/results.json (every run) and <out>/results.md (one row per mode: medians over repeats).
Server logs: <out>/serve-<mode>-<repeat>.log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_json_atomic, write_text_atomic

SEED = 42
TOLERANCE = 1e-5
MODES = {"batching": [], "no_batching": ["--no_batching"]}
FULL = {"requests": 500, "concurrency": 16, "repeats": 3, "warmup": 16}
FORMATS = {"requests_per_s": 1, "p50_ms": 1, "p95_ms": 1, "max_ms": 1, "texts_per_call": 2, "load_before": 2}
QUICK = {"requests": 40, "concurrency": 4, "repeats": 1, "warmup": 4}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="outputs/sentiment-minilm-full", help="run or export directory to serve")
    p.add_argument("--requests", type=int, help="requests per mode and repeat, one text each (default: 500)")
    p.add_argument("--concurrency", type=int, help="clients sending at the same time (default: 16)")
    p.add_argument("--max_batch_size", type=int, default=32)
    p.add_argument("--max_wait_ms", type=float, default=10.0)
    p.add_argument("--repeats", type=int, help="runs of each mode, alternating (default: 3)")
    p.add_argument("--warmup", type=int, help="untimed requests after the server starts (default: 16)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per load run before giving up")
    p.add_argument("--out", default="outputs/bench-serve")
    p.add_argument(
        "--quick", action="store_true", help="smoke test: 40 requests, 4 clients, 1 repeat, 4 warmup requests"
    )
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not Path(args.run, "config.json").is_file():
        p.error(f"--run {args.run}: no config.json; train it first (make sentiment) or pass another run")
    if min(args.requests, args.concurrency, args.repeats) < 1 or args.warmup < 0:
        p.error("--requests, --concurrency and --repeats must be at least 1, --warmup at least 0")
    return args


def vader_texts(n: int) -> list[str]:
    """The first `n` texts of the four VADER test halves, pooled and shuffled (as bench_trainer)."""
    from datasets import concatenate_datasets

    from nlptransfer.data import load_source

    tests = [load_source(f"vader-{d}", seed=SEED)["test"] for d in ("movies", "tweets", "amazon", "nyt")]
    pool = concatenate_datasets([t.select_columns(["text"]) for t in tests]).shuffle(seed=SEED)
    return list(pool.select(range(min(n, len(pool))))["text"])


def predict_rows(run: str, texts: list[str], out: Path) -> list[dict]:
    """`nlptransfer predict` on `texts` (a subprocess, as a user runs it): its rows, in order."""
    source, target = out / "texts.jsonl", out / "expected.jsonl"
    write_text_atomic(source, "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts))
    cmd = [sys.executable, "-m", "nlptransfer.cli", "predict", "--model", run, "--input", str(source)]
    subprocess.run(cmd + ["--output", str(target), "--overwrite"], check=True)
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]


def same_row(got: dict, expected: dict) -> bool:
    if got.get("text") != expected["text"] or got.get("label") != expected["label"]:
        return False
    probs = got.get("probabilities") or {}
    if set(probs) != set(expected["probabilities"]):
        return False
    return all(abs(probs[k] - v) <= TOLERANCE for k, v in expected["probabilities"].items())


def start_server(run: str, flags: list[str], log: Path, timeout: float = 300) -> tuple[subprocess.Popen, str]:
    """`nlptransfer serve RUN --port 0 FLAGS` on 127.0.0.1; (process, base url) once /health answers."""
    with log.open("w") as err:
        cmd = [sys.executable, "-m", "nlptransfer.cli", "serve", run, "--host", "127.0.0.1", "--port", "0"]
        proc = subprocess.Popen(cmd + flags, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text())
        if found:
            try:
                if httpx.get(found.group(1) + "/health", timeout=5).status_code == 200:
                    return proc, found.group(1)
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"the server did not start:\n{log.read_text()}")


def stop_server(proc: subprocess.Popen) -> int | None:
    """Ctrl-C (SIGINT) to the server, which finishes what it answers and exits; killed after 60 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


async def load(url: str, texts: list[str], concurrency: int, timeout: float) -> dict:
    """Send one request per text from `concurrency` clients; answers (rows or None) and latencies."""
    answers: list[dict | None] = [None] * len(texts)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    next_index = iter(range(len(texts)))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            for i in next_index:
                sent = time.perf_counter()
                try:
                    answer = await client.post("/predict", json={"texts": [texts[i]]})
                    key = str(answer.status_code)
                    if answer.status_code == 200:
                        answers[i] = answer.json()["predictions"][0]
                except httpx.HTTPError as err:
                    key = type(err).__name__
                latencies.append(time.perf_counter() - sent)
                statuses[key] = statuses.get(key, 0) + 1

        started = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout)
        except asyncio.TimeoutError:
            statuses["timeout"] = sum(a is None for a in answers)
        wall = time.perf_counter() - started
    return {"answers": answers, "latencies": latencies, "statuses": statuses, "wall": wall}


def measure(args, mode: str, repeat: int, texts: list[str], expected: list[dict], out: Path) -> dict:
    flags = MODES[mode] + [
        "--max_batch_size",
        str(args.max_batch_size),
        "--max_wait_ms",
        str(args.max_wait_ms),
    ]
    proc, url = start_server(args.run, flags, out / f"serve-{mode}-{repeat}.log")
    try:
        warm = texts[: args.warmup]
        asyncio.run(load(url, warm, min(args.concurrency, max(1, len(warm))), args.timeout))
        before = httpx.get(url + "/health", timeout=30).json()
        load_before = os.getloadavg()[0]
        result = asyncio.run(load(url, texts, args.concurrency, args.timeout))
        after = httpx.get(url + "/health", timeout=30).json()
    finally:
        code = stop_server(proc)
    answers, latencies = result["answers"], sorted(result["latencies"])
    lost = sum(a is None for a in answers)
    wrong = sum(a is not None and not same_row(a, e) for a, e in zip(answers, expected, strict=True))
    calls = after["batches_run"] - before["batches_run"]
    ms = [x * 1000 for x in latencies]
    return {
        "mode": mode,
        "repeat": repeat,
        "requests": len(texts),
        "concurrency": args.concurrency,
        "requests_per_s": round(len(texts) / result["wall"], 2),
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1) if ms else None,
        "max_ms": round(ms[-1], 1) if ms else None,
        "model_calls": calls,
        "texts_per_call": round((after["texts_served"] - before["texts_served"]) / calls, 2)
        if calls
        else None,
        "lost": lost,
        "wrong": wrong,
        "statuses": result["statuses"],
        "load_before": round(load_before, 2),
        "server_exit_code": code,
    }


def render(runs: list[dict], args) -> str:
    rows = []
    for mode in MODES:
        mine = [r for r in runs if r["mode"] == mode]
        if not mine:
            continue
        row = {"mode": mode, "runs": len(mine)}
        for key, digits in FORMATS.items():
            values = [r[key] for r in mine if r[key] is not None]
            row[key] = f"{statistics.median(values):.{digits}f}" if values else ""
        row["lost"] = sum(r["lost"] for r in mine)
        row["wrong"] = sum(r["wrong"] for r in mine)
        rows.append(row)
    columns = ["mode", "runs", *FORMATS, "lost", "wrong"]
    speeds = {row["mode"]: row["requests_per_s"] for row in rows}
    ratio = ""
    if speeds.get("batching") and speeds.get("no_batching"):
        ratio = f"Batching: {float(speeds['batching']) / float(speeds['no_batching']):.2f}x the requests/s. "
    return "\n".join(
        [
            "# nlptransfer serve under load (127.0.0.1)",
            "",
            f"Model: `{args.run}`. {args.requests} single-text requests (VADER test texts) from "
            f"{args.concurrency} concurrent clients per run; batching: --max_batch_size {args.max_batch_size}, "
            f"--max_wait_ms {args.max_wait_ms:g}. Medians over runs; lost = no 200 answer, wrong = label or a "
            f"probability (> {TOLERANCE:g}) differs from `nlptransfer predict` on the same texts.",
            "",
            markdown_table(rows, columns),
            "",
            f"{ratio}load_before: the 1-minute load average before a run (results.json has every run). "
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}.",
            "",
        ]
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = vader_texts(args.requests)
    expected = predict_rows(args.run, texts, out)
    runs = []
    for repeat in range(args.repeats):
        order = list(MODES) if repeat % 2 == 0 else list(reversed(MODES))
        for mode in order:
            runs.append(measure(args, mode, repeat, texts, expected, out))
            print(json.dumps(runs[-1]), flush=True)
            write_json_atomic(out / "results.json", {"args": vars(args), "runs": runs})
    text = render(runs, args)
    write_text_atomic(out / "results.md", text)
    print(text)
    if any(r["lost"] or r["wrong"] for r in runs):
        raise SystemExit(f"requests lost or answered wrongly; see {out / 'results.json'}")


if __name__ == "__main__":
    main()
