"""`nlptransfer serve`: an HTTP server (FastAPI + uvicorn) answering predictions of any `Predictor`.

    app = create_app(load_predictor("outputs/sentiment-minilm-full"), ServeSettings())
    serve(predictor, settings, bind_socket("127.0.0.1", 8000))       # what `nlptransfer serve` runs

Endpoints (every answer is JSON; every error is `{"error": "one line"}` with a 4xx/5xx status):
- `POST /predict` with `{"texts": ["...", ...]}` (or `{"text": "..."}`) -> `{"predictions": [row, ...]}`, one
  row per text in request order, the rows `nlptransfer predict` writes (text, label, score, probabilities;
  multi-label: label is a list, no score). 400: not JSON (or nested too deep); 422: not an object with exactly
  one of `texts` (a non-empty list of strings) or `text` (a string), or a text that is not valid Unicode (an
  unpaired surrogate); 413: more texts than --max_texts_per_request, a text longer than --max_chars, or a body
  larger than those two allow; 500: the model failed (the server keeps running); 503 (with Retry-After): more
  than --max_queued_texts texts already wait for the model (back-pressure), or the server is shutting down.
- `GET /health` -> `{"status": "ok", "requests_served", "texts_served", "batches_run" (model calls),
  "largest_batch", "errors", "rejected_busy", "queued" (chunks), "texts_waiting"}`.
- `GET /info` -> the predictor's info (folder, back-end, labels, kind, max_length, thresholds), the run's
  model card front matter and title, run.json (recipe, status, times), metrics.json's numbers, the server's
  settings and counters (a NaN or infinite number, which JSON cannot carry, as null).

Batching: each request's texts go on one asyncio queue (in chunks of at most --max_batch_size); one worker
takes chunks in arrival order until --max_batch_size texts are gathered or --max_wait_ms passed since the first,
runs the model on them in one call (in a thread, one call at a time, so the event loop keeps accepting) and
hands each request its own rows; a call that fails on a batch of several chunks runs each chunk again alone,
so one request's bad text fails only that request. `--no_batching` gives every chunk its own model call.
fastapi and uvicorn are imported inside the functions that need them (`pip install 'nlptransfer[serve]'`).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations (`fastapi.Request`,
# imported inside `create_app`) at definition time.
import asyncio
import errno
import ipaddress
import json
import logging
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from nlptransfer.errors import ConfigError, typed_first_line
from nlptransfer.run_dirs import json_safe, model_metadata

logger = logging.getLogger("uvicorn.error")  # shown by uvicorn's log handler, beside its own lines
ENDPOINTS = "POST /predict, GET /health, GET /info"
PARSE_IN_THREAD = 1 << 20  # bytes: a larger body is parsed in a thread (a few ms or more of json.loads)


@dataclass(frozen=True)
class ServeSettings:
    """The server's flags; `nlptransfer serve` takes its defaults from here."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 32
    max_wait_ms: float = 10.0
    max_texts_per_request: int = 256
    max_chars: int = 10000
    max_queued_texts: int = 4096
    batching: bool = True

    def __post_init__(self):
        for name in ("max_batch_size", "max_texts_per_request", "max_chars", "max_queued_texts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"--{name} {value} must be a whole number of at least 1; pass e.g. --{name} 1"
                )
        if self.max_queued_texts < self.max_texts_per_request:
            raise ConfigError(
                f"--max_queued_texts {self.max_queued_texts} is below --max_texts_per_request "
                f"{self.max_texts_per_request}: a full request could never be queued; e.g. --max_queued_texts {4 * self.max_texts_per_request}"
            )
        if not 0 <= self.max_wait_ms <= 60_000:
            raise ConfigError(f"--max_wait_ms {self.max_wait_ms} must be between 0 and 60000; pass e.g. 10")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} must be between 0 and 65535 (0: any free port); e.g. 8000")

    @property
    def max_body_bytes(self) -> int:
        """The largest request body that can hold a request within the limits (12 bytes per JSON-escaped
        character, room for the keys), refused with 413 before it is parsed."""
        return self.max_texts_per_request * (12 * self.max_chars + 16) + 4096


def require_serve_extra():
    """(fastapi, uvicorn), or one ConfigError line naming the extra to install."""
    try:
        import fastapi
        import uvicorn
    except ImportError as err:
        raise ConfigError(
            f"nlptransfer serve needs fastapi and uvicorn ({err.name or err} is not installed); "
            "install them with: pip install 'nlptransfer[serve]'"
        ) from None
    return fastapi, uvicorn


# ------------------------------------------------------------------------------------------- socket


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (not yet listening; uvicorn listens on it), so a port in use is one
    ConfigError line before the model loads. A host that is not a loopback address gets a warning line."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        raise ConfigError(
            f"--host {host!r} is not an address of this machine ({err}); e.g. --host 127.0.0.1"
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to reuse
        sock.bind(address)
        sock.set_inheritable(True)
    except OSError as err:
        sock.close()
        where = f"port {port} on {host}"
        if err.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"{where} is already in use (another server?); stop it or pass another --port, e.g. --port {port + 1}"
            ) from None
        if err.errno == errno.EACCES:
            raise ConfigError(
                f"no permission to bind {where}; use a port above 1023, e.g. --port 8000"
            ) from None
        raise ConfigError(
            f"cannot bind {where}: {err.strerror or err}; pass another --host or --port"
        ) from None
    if not ipaddress.ip_address(address[0]).is_loopback:
        print(
            f"warning: --host {host} serves to the network, without authentication or TLS; "
            "keep the default --host 127.0.0.1 unless the network is trusted",
            file=sys.stderr,
            flush=True,
        )
    return sock


# ------------------------------------------------------------------------------------------ requests


class ServeError(Exception):
    """A request the server could not answer: its HTTP status and the one-line message sent back (4xx: the
    request; 500: the model raised on its batch, the traceback is in the server log; 503: busy or shutting
    down, with a Retry-After header)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.headers = {"Retry-After": "1"} if status == 503 else None


def parse_texts(body: bytes, settings: ServeSettings) -> list[str]:
    """The texts of a `/predict` body, or a ServeError (400 not JSON or nested too deep, 422 wrong shape or
    a text that is not valid Unicode, 413 over a limit)."""
    example = 'send {"texts": ["first text", "second text"]} or {"text": "one text"}'
    try:
        data = json.loads(body)
    except ValueError as err:  # JSONDecodeError and bodies that are not UTF-8/16/32
        raise ServeError(
            400, f"the request body is not valid JSON ({typed_first_line(err)}); {example}"
        ) from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise ServeError(400, f"the request body is JSON nested too deep to parse; {example}") from None
    if not isinstance(data, dict):
        raise ServeError(422, f"the JSON body is a {type(data).__name__}, not an object; {example}")
    unknown = sorted(set(data) - {"texts", "text"})
    if unknown:
        raise ServeError(422, f"unknown key {unknown[0]!r} in the request; {example}")
    if len(data) != 1:
        raise ServeError(
            422, f'pass either "texts" or "text", not {"both" if data else "neither"}; {example}'
        )
    if "text" in data:
        texts, name = [data["text"]], "text"
    else:
        texts, name = data["texts"], "texts[{}]"
        if not isinstance(texts, list):
            raise ServeError(422, f'"texts" is a {type(texts).__name__}, not a list of strings; {example}')
        if not texts:
            raise ServeError(422, f'"texts" is an empty list; {example}')
    if len(texts) > settings.max_texts_per_request:
        raise ServeError(
            413,
            f"{len(texts)} texts in one request is over the limit of {settings.max_texts_per_request} "
            "(--max_texts_per_request); split the request or restart the server with a larger "
            "--max_texts_per_request",
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            kind = "null" if text is None else type(text).__name__
            raise ServeError(
                422, f"{name.format(i)} is a {kind}, not a string; send every text as a JSON string"
            )
        if len(text) > settings.max_chars:
            raise ServeError(
                413,
                f"{name.format(i)} has {len(text)} characters, over the limit of {settings.max_chars} "
                "(--max_chars); shorten it or restart the server with a larger --max_chars",
            )
        try:  # a lone "\ud800" escape is valid JSON, but no tokenizer (nor the answer) can encode it
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ServeError(
                422, f"{name.format(i)} is not valid Unicode (an unpaired surrogate); send UTF-8 text"
            ) from None
    return texts


async def read_body(request, limit: int) -> bytes:
    """The request body, or ServeError 413 as soon as it is known to exceed `limit` bytes."""
    too_big = ServeError(
        413,
        f"the request body is over {limit} bytes, more than --max_texts_per_request texts of --max_chars "
        "characters can take; split the request",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------------------- batching


def fail(items: list[tuple[list[str], asyncio.Future]], error: ServeError) -> None:
    """Answer every queued chunk whose request still waits with `error`."""
    for _, future in items:
        if not future.done():
            future.set_exception(error)


class Batcher:
    """Requests' texts in, one model call per batch, each request's rows out (see the module docstring)."""

    def __init__(self, predictor, settings: ServeSettings):
        self.predictor = predictor
        self.max_batch = settings.max_batch_size
        self.max_wait = settings.max_wait_ms / 1000
        self.batching = settings.batching
        self.max_queued = settings.max_queued_texts
        self.waiting = 0  # texts of the requests being answered: queued or in the model call
        self.stats = {
            "requests_served": 0,
            "texts_served": 0,
            "batches_run": 0,
            "largest_batch": 0,
            "errors": 0,
            "rejected_busy": 0,
        }
        self.queue: asyncio.Queue | None = None
        self.held = None  # a chunk taken from the queue that did not fit in the previous batch
        self.task: asyncio.Task | None = None
        self.executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlptransfer-model")
        self.task = asyncio.get_running_loop().create_task(self.work())

    async def stop(self) -> None:
        """Stop the worker; requests still waiting (only when shutdown did not wait for them) get 503."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        waiting = [self.held] if self.held else []
        while self.queue is not None and not self.queue.empty():
            waiting.append(self.queue.get_nowait())
        fail(waiting, ServeError(503, "the server is shutting down; send the request again when it is back"))
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, texts: list[str]) -> list[dict]:
        """The rows of `texts`, in order; ServeError 500 when the model raised on one of their batches, 503
        when more than --max_queued_texts texts would be waiting (the queue does not grow without bound)."""
        if self.waiting + len(texts) > self.max_queued:
            self.stats["rejected_busy"] += 1
            raise ServeError(
                503,
                f"the server is busy: {self.waiting} texts already wait for the model and {len(texts)} more "
                f"would pass --max_queued_texts {self.max_queued}; send the request again in a moment",
            )
        loop = asyncio.get_running_loop()
        futures = []
        for start in range(0, len(texts), self.max_batch):
            futures.append(loop.create_future())
            self.queue.put_nowait((texts[start : start + self.max_batch], futures[-1]))
        self.waiting += len(texts)
        try:
            parts = await asyncio.gather(*futures, return_exceptions=True)
        finally:
            self.waiting -= len(texts)
        for part in parts:
            if isinstance(part, BaseException):
                raise part
        self.stats["requests_served"] += 1
        return [row for part in parts for row in part]

    async def next_batch(self) -> list[tuple[list[str], asyncio.Future]]:
        """Chunks in arrival order up to max_batch texts, waiting at most max_wait after the first
        (none with batching off); chunks whose request went away are dropped."""
        loop = asyncio.get_running_loop()
        first = self.held or await self.queue.get()
        self.held = None
        batch = [] if first[1].done() else [first]
        size = sum(len(chunk) for chunk, _ in batch)
        deadline = loop.time() + self.max_wait
        while self.batching and batch and size < self.max_batch:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if item[1].done():
                continue
            if size + len(item[0]) > self.max_batch:
                self.held = item
                break
            batch.append(item)
            size += len(item[0])
        return batch

    def run_model(self, texts: list[str]) -> list[dict]:
        rows = self.predictor.predict(texts, len(texts))
        if len(rows) != len(texts):
            raise RuntimeError(f"the predictor returned {len(rows)} rows for {len(texts)} texts")
        return rows

    async def work(self) -> None:
        """The one worker: batches forever, one model call at a time; never dies of a model error."""
        while True:
            batch = await self.next_batch()
            if batch:
                await self.answer(batch)

    async def answer(self, batch: list[tuple[list[str], asyncio.Future]]) -> None:
        """One model call on the batch's texts, each chunk's rows to its request. When the call fails on a
        batch of several chunks, each chunk is run again alone: only the request whose text the model cannot
        take gets the 500, not the others batched with it."""
        loop = asyncio.get_running_loop()
        texts = [text for chunk, _ in batch for text in chunk]
        self.stats["batches_run"] += 1
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(texts))
        stopped = ServeError(503, "the server stopped while answering; send the request again")
        try:
            rows = await loop.run_in_executor(self.executor, self.run_model, texts)
        except asyncio.CancelledError:  # stopped during a model call
            fail(batch, stopped)
            raise
        except Exception as err:
            if len(batch) > 1:
                logger.warning(
                    "the model failed on a batch of %d requests' texts (%s); running each one alone",
                    len(batch),
                    typed_first_line(err),
                )
                try:
                    for item in batch:
                        if not item[1].done():
                            await self.answer([item])
                except asyncio.CancelledError:
                    fail(batch, stopped)
                    raise
                return
            self.stats["errors"] += 1
            logger.exception("the model failed on a batch of %d texts", len(texts))
            message = f"the model failed on this request's batch ({typed_first_line(err)}); the server keeps running"
            fail(batch, ServeError(500, message))
            return
        self.stats["texts_served"] += len(texts)
        start = 0
        for chunk, future in batch:
            if not future.done():
                future.set_result(rows[start : start + len(chunk)])
            start += len(chunk)


# ------------------------------------------------------------------------------------------------ app


def create_app(predictor, settings: ServeSettings):
    """The FastAPI app serving `predictor` with `settings`: any object with `predict(texts, batch_size)` giving
    one row per text (a `nlptransfer.predictor.Predictor`; its `info` and `path` fill /info when present)."""
    from contextlib import asynccontextmanager

    fastapi, _ = require_serve_extra()
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    batcher = Batcher(predictor, settings)
    path = getattr(predictor, "path", None)
    metadata = model_metadata(Path(path)) if path is not None else {}
    described = json_safe(dict(getattr(predictor, "info", {})))

    def error(status: int, message: str, headers=None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = fastapi.FastAPI(title="nlptransfer serve", lifespan=lifespan)
    app.state.batcher = batcher

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):  # 404, 405: JSON too, naming the endpoints
        message = f"{exc.detail}: {request.method} {request.url.path}; endpoints: {ENDPOINTS}"
        return error(exc.status_code, message, exc.headers)  # 405 keeps its Allow header

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):  # FastAPI's default is a list of dicts: one line instead
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def server_error(request, exc):
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, f"internal error ({typed_first_line(exc)}); the server keeps running")

    body_schema = {  # the body is parsed by `parse_texts` (one-line errors); this documents it in /docs
        "oneOf": [
            {"type": "object", "properties": {"texts": {"type": "array", "items": {"type": "string"}}}},
            {"type": "object", "properties": {"text": {"type": "string"}}},
        ]
    }

    @app.post(
        "/predict", openapi_extra={"requestBody": {"content": {"application/json": {"schema": body_schema}}}}
    )
    async def predict(request: fastapi.Request):
        try:
            body = await read_body(request, settings.max_body_bytes)
            if len(body) > PARSE_IN_THREAD:  # up to ~30 MB: parsed beside the event loop, which keeps serving
                texts = await asyncio.to_thread(parse_texts, body, settings)
            else:
                texts = parse_texts(body, settings)
            return JSONResponse({"predictions": await batcher.predict(texts)})  # no re-encoding pass
        except ServeError as err:
            return error(err.status, str(err), err.headers)

    @app.get("/health")
    async def health():
        queued = batcher.queue.qsize() if batcher.queue else 0
        return {"status": "ok", **batcher.stats, "queued": queued, "texts_waiting": batcher.waiting}

    @app.get("/info")
    async def info():
        return {**described, **metadata, "server": asdict(settings), "stats": dict(batcher.stats)}

    return app


def serve(predictor, settings: ServeSettings, sock: socket.socket) -> None:
    """Serve `predictor` on the bound `sock` (see `bind_socket`) until Ctrl-C or SIGTERM, then finish the
    requests in flight and return."""
    _, uvicorn = require_serve_extra()
    config = uvicorn.Config(create_app(predictor, settings), lifespan="on", log_level="info")
    server = uvicorn.Server(config)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    described = (
        f"{getattr(predictor, 'path', 'a model')} ({getattr(predictor, 'kind', type(predictor).__name__)})"
    )
    print(
        f"serving {described} on {url}: {ENDPOINTS}; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shut down gracefully, then re-raised the Ctrl-C
        pass
    print("server stopped", file=sys.stderr, flush=True)
