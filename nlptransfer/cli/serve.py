"""`nlptransfer serve`: an HTTP server answering predictions of a run or export directory (nlptransfer/serving.py).

The port is bound and the extras checked before the model loads, so a port in use or a missing fastapi is one
line at once. fastapi, uvicorn, torch and transformers are imported only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nlptransfer.cli.common import Subcommand, add_loading_flags, user_path
from nlptransfer.cli.predict import check_positive
from nlptransfer.errors import ModelError
from nlptransfer.predictor import load_predictor
from nlptransfer.serving import ServeSettings, bind_socket, require_serve_extra, serve

DEFAULTS = ServeSettings()

EXAMPLES = """examples:
  nlptransfer serve outputs/sentiment-minilm-full
  nlptransfer serve outputs/sentiment-onnx --port 8080 --max_batch_size 64 --max_wait_ms 5
  curl -s localhost:8000/predict -d '{"texts": ["great film", "dull plot"]}'
  curl -s localhost:8000/info

POST /predict with {"texts": [...]} (or {"text": "..."}) answers {"predictions": [...]}: one row per
text, in order, the rows `nlptransfer predict` writes. GET /health: status and counters (requests, texts,
model calls). GET /info: labels, back-end, model card and run metadata, settings. Errors are JSON
{"error": "..."}: 400 not JSON, 422 wrong shape (empty list, a text that is not a string), 413 over
--max_texts_per_request or --max_chars, 500 model failure, 503 busy (more than --max_queued_texts texts
already waiting; retry after the Retry-After seconds). Concurrent requests are batched into one
model call of up to --max_batch_size texts, waiting at most --max_wait_ms for more (--no_batching: one
call per request). Listens on 127.0.0.1 only unless --host says otherwise (no authentication, no TLS).
Ctrl-C finishes the requests in flight and stops."""


def cmd_serve(args: argparse.Namespace) -> None:
    check_positive(args, "max_length")
    settings = ServeSettings(
        host=args.host,
        port=args.port,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_texts_per_request=args.max_texts_per_request,
        max_chars=args.max_chars,
        max_queued_texts=args.max_queued_texts,
        batching=not args.no_batching,
    )
    if not Path(args.model).is_dir():
        raise ModelError(
            f"{args.model!r} is not a directory; pass a run's output directory or an export directory"
        )
    require_serve_extra()
    sock = bind_socket(settings.host, settings.port)
    try:
        predictor = load_predictor(
            args.model,
            max_length=args.max_length,
            allow_pickle=args.allow_pickle,
            trust_remote_code=args.trust_remote_code,
        )
        serve(predictor, settings, sock)
    finally:
        sock.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    p.add_argument(
        "model",
        type=user_path,
        metavar="RUN_OR_EXPORT_DIR",
        help="a run's output directory or an export directory",
    )
    p.add_argument(
        "--host", default=d.host, help=f"address to listen on (default: {d.host}, this machine only)"
    )
    p.add_argument("--port", type=int, default=d.port, help=f"port (default: {d.port}; 0: any free port)")
    p.add_argument(
        "--max_batch_size",
        type=int,
        default=d.max_batch_size,
        help=f"texts per model call (default: {d.max_batch_size})",
    )
    p.add_argument(
        "--max_wait_ms",
        type=float,
        default=d.max_wait_ms,
        help=f"wait for more requests to batch, in ms (default: {d.max_wait_ms:g})",
    )
    p.add_argument(
        "--max_texts_per_request",
        type=int,
        default=d.max_texts_per_request,
        help=f"more texts in one request: 413 (default: {d.max_texts_per_request})",
    )
    p.add_argument(
        "--max_chars", type=int, default=d.max_chars, help=f"a longer text: 413 (default: {d.max_chars})"
    )
    p.add_argument(
        "--max_queued_texts",
        type=int,
        default=d.max_queued_texts,
        help=f"texts waiting for the model at most; a request beyond: 503 busy (default: {d.max_queued_texts})",
    )
    p.add_argument("--no_batching", action="store_true", help="one model call per request (no batching)")
    p.add_argument("--max_length", type=int, default=None, help="default: the run's max_length")
    add_loading_flags(p)


SERVE = Subcommand(
    help="serve predictions over HTTP (POST /predict, GET /health, GET /info)",
    examples=EXAMPLES,
    add_arguments=add_arguments,
    run=cmd_serve,
)
