"""`nerctl serve`: a finished run as an HTTP tagging service (FastAPI on uvicorn).

    POST /v1/ner     {"texts": [...]} -> {"model": RUN, "results": [record, ...]}, each record
                     exactly what `nerctl predict --format jsonl` writes for that text
    GET  /v1/model   labels, max_len, engine, and the run's data and scores
    GET  /health     alive;  GET /ready: the model is loaded (503 before)
    GET  /metrics    Prometheus: requests by status, texts tagged, batch sizes, queue depth, latency
    GET  /docs       the OpenAPI documentation

Each worker process loads the run once, on the engine `predict` uses (LiteRT:
no TensorFlow import), and tags concurrent requests together (batching.py).
Every error is a JSON body {"error": {"status": N, "message": "..."}}, never a
traceback. The service keeps no state between requests, so any number of
replicas can sit behind a load balancer.
"""
from __future__ import annotations

import base64
import hmac
import json
import os
import re
import signal
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from .batcher import Batcher, QueueFull
from .common import BODY_ERRORS, INTERNAL_ERROR, NO_MODEL, error_response, error_responses, run_name
from .settings import ServeSettings

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# Label Studio's routes (serving/labelstudio.py): guarded by the API key like /v1/.
LABEL_STUDIO_PATHS = ("/setup", "/predict", "/webhook", "/train", "/versions")
# JSON's escape of a surrogate (UTF-8 itself cannot hold one): a pair is one character, one alone no Unicode.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
UNPARSEABLE = {UnicodeDecodeError: "body: not UTF-8 JSON", RecursionError: "body: JSON nested too deep"}
KNOWN_PATHS = ("/v1/ner", "/v1/model", "/health", "/ready", "/metrics", "/docs", "/", *LABEL_STUDIO_PATHS)

SETTINGS_ENV = "NERCTL_SERVE_SETTINGS"  # how `serve` hands its settings to uvicorn's worker processes

RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again (when the queue is full).",
                               "schema": {"type": "integer"}}}
NER_ERRORS = error_responses({**BODY_ERRORS, 413: "The body is over --max-body-bytes, it has more than --max-texts "
                              "texts, or a text has more than --max-words words.",
                              503: "No model yet, or more than --max-queue texts waiting (then with Retry-After).",
                              **INTERNAL_ERROR})
NER_ERRORS[503]["headers"] = RETRY_AFTER
MODEL_ERRORS = error_responses({503: "No model yet (Label Studio mode, before its first version).", **INTERNAL_ERROR})
# How the guarded routes authenticate, declared in the OpenAPI document when an API key is set (authorized() checks).
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "The API key (--api-key-file or NERCTL_API_KEY)."},
    "basic": {"type": "http", "scheme": "basic", "description": "Any user name, the API key as the password (how "
              "Label Studio authenticates to an ML backend)."},
}
UNAUTHORIZED = {"description": "Missing or wrong API key.",
                "headers": {"WWW-Authenticate": {"description": "The scheme to use.", "schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}


def serve(settings: ServeSettings) -> None:
    """Run the service until SIGTERM or Ctrl-C: stop accepting, finish in-flight requests, return."""
    import uvicorn

    os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))  # read by each worker's create_app_from_env
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with
    # these handlers in place that is a no-op, and the command exits 0 as a service should.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: None)
    uvicorn.run("nerctl.serving.app:create_app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, timeout_graceful_shutdown=30, log_level="info",
                server_header=False, proxy_headers=False)


def create_app_from_env():
    """The app for one uvicorn worker, from the settings `serve` left in the environment."""
    return create_app(ServeSettings(**json.loads(os.environ[SETTINGS_ENV])))


def authorized(header: str | None, key: str | None) -> bool:
    """True without a key; else the header must be `Bearer <key>`, or HTTP Basic with the key as password
    (how Label Studio authenticates to an ML backend), compared in constant time."""
    if key is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), key.encode())


def guarded(settings: ServeSettings, path: str) -> bool:
    """Whether `path` needs the API key (when one is set): /v1/, and Label Studio's routes."""
    return path.startswith("/v1/") or (settings.label_studio and path in LABEL_STUDIO_PATHS)


def create_app(settings: ServeSettings):
    """The FastAPI application: routes, limits, auth, metrics; the model loads at start-up."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app):
        from ..api import load

        tagger = load(settings.run, settings.backend, settings.precision, settings.max_batch) if settings.run else None
        app.state.tagger = tagger
        app.state.batcher = Batcher(tagger.tag_texts if tagger else _no_model,
                                    settings.max_batch, settings.max_wait_ms / 1000, settings.max_queue,
                                    on_batch=metrics.batch_size.observe, on_queue=metrics.queue_depth.set)
        app.state.batcher.start()
        if settings.label_studio:
            from .labelstudio import start_learner

            start_learner(app)
        app.state.ready = True
        yield
        app.state.ready = False
        await app.state.batcher.stop()

    from .. import __version__

    app = FastAPI(title="nerctl", version=__version__, lifespan=lifespan,
                  description="Named-entity tagging with a run trained by nerctl. Errors are "
                  '{"error": {"status": N, "message": "..."}}.')
    app.state.settings, app.state.metrics, app.state.ready = settings, metrics, False
    app.state.run_path = Path(settings.run) if settings.run else None  # the served run (a swap changes it)
    _add_error_handlers(app)
    _add_routes(app)
    if settings.label_studio:
        from .labelstudio import add_label_studio_routes

        add_label_studio_routes(app)
    _add_middleware(app, settings, metrics)
    _document_settings(app, settings)
    return app


def _document_settings(app, settings: ServeSettings) -> None:
    """Add to the OpenAPI document what the settings decide: the most texts a request may hold, the JSON that /
    gives Label Studio, and with an API key which routes need it and how (Bearer; Label Studio's Basic too)."""
    build = app.openapi  # FastAPI's: builds the document once, then answers the same dict

    def openapi() -> dict[str, Any]:
        document = build()
        document["components"]["schemas"]["NerRequest"]["properties"]["texts"]["maxItems"] = settings.max_texts
        if settings.label_studio:
            document["paths"]["/"]["get"]["responses"]["200"]["content"]["application/json"] = {
                "schema": {"type": "object"}}
        if settings.api_key is not None:
            document["components"]["securitySchemes"] = SECURITY_SCHEMES
            for path, operations in document["paths"].items():
                for operation in operations.values() if guarded(settings, path) else ():
                    operation["security"] = [{"bearer": []}] + ([{"basic": []}] if path in LABEL_STUDIO_PATHS else [])
                    operation["responses"]["401"] = UNAUTHORIZED
        return document

    app.openapi = openapi


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("nerctl_requests", "HTTP requests by path and status", ["path", "status"],
                                registry=self.registry)
        self.texts = Counter("nerctl_texts_tagged", "Texts tagged", registry=self.registry)
        self.batch_size = Histogram("nerctl_batch_size_texts", "Texts per model call", buckets=BATCH_BUCKETS,
                                    registry=self.registry)
        self.queue_depth = Gauge("nerctl_queue_depth_texts", "Texts waiting for a batch", registry=self.registry)
        self.latency = Histogram("nerctl_request_latency_seconds", "Time to answer POST /v1/ner",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def _add_error_handlers(app) -> None:
    """Every error as JSON: an unparseable body (400), validation (422 naming the field), HTTP errors, and
    anything unexpected (500)."""
    @app.exception_handler(RequestValidationError)
    async def invalid(request, err):
        first = err.errors()[0] if err.errors() else {"loc": ("body",), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return error_response(400, f"body: invalid JSON at character {first['loc'][-1]}")
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
        return error_response(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(HTTPException)
    async def http_error(request, err):
        # FastAPI's 400 says only "There was an error parsing the body": say which.
        unparseable = next((m for kind, m in UNPARSEABLE.items() if isinstance(err.__cause__, kind)), None)
        message = unparseable if err.status_code == 400 and unparseable else str(err.detail)
        return error_response(err.status_code, message, getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request, err):
        import logging

        logging.getLogger("uvicorn.error").error("error answering %s: %s: %s", request.url.path,
                                                 type(err).__name__, err)
        return error_response(500, f"internal error: {type(err).__name__}")


class NerRequest(BaseModel):
    """The body of POST /v1/ner (strict: `false` is not a min_score; the document's maxItems is --max-texts)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    texts: list[str] = Field(description="Texts to tag; each result is the record `nerctl predict` writes.")
    min_score: float | None = Field(None, ge=0.0, le=1.0, description="Leave out entities scored under this "
                                    "(their words tagged O) [default: serve's --min-score].")


class EntityRecord(BaseModel):
    type: str
    text: str
    start: int = Field(description="Offset of its first character in the text (code points).")
    end: int
    score: float


class WordRecord(BaseModel):
    word: str
    start: int
    end: int
    tag: str
    score: float


class Record(BaseModel):
    """One text's result: the record `nerctl predict --format jsonl` writes."""

    text: str
    uncertainty: float
    entities: list[EntityRecord]
    words: list[WordRecord]


class NerAnswer(BaseModel):
    """The answer of POST /v1/ner: a record per text, in order."""

    model: str | None = Field(description="The served run.")
    results: list[Record]


class ModelFacts(BaseModel):
    """GET /v1/model: the served run, its labels and engine, its scores (and more facts of the run)."""

    model: str | None
    labels: list[str]
    max_len: int
    engine: dict[str, Any] | None
    temperature: float
    min_score: float


def _no_model(texts: list[str]) -> list:
    raise RuntimeError(NO_MODEL)  # never called: the routes answer 503 first


def _add_routes(app) -> None:
    @app.post("/v1/ner", summary="Tag texts", responses={200: {"model": NerAnswer}, **NER_ERRORS})
    async def ner(body: NerRequest, request: Request):
        started = time.perf_counter()
        settings = request.app.state.settings
        if request.app.state.tagger is None:
            return error_response(503, NO_MODEL)
        if len(body.texts) > settings.max_texts:
            return error_response(413, f"texts: {len(body.texts)} texts, at most {settings.max_texts} per request")
        if settings.max_words:
            from ..data.sentence import split_words

            for i, text in enumerate(body.texts):
                if len(split_words(text, request.app.state.tagger.words)) > settings.max_words:
                    return error_response(413, f"texts.{i}: more than {settings.max_words} words")
        try:
            docs = await request.app.state.batcher.tag(body.texts)
        except QueueFull as err:
            return error_response(503, f"busy: {err}; retry shortly", {"Retry-After": "1"})
        min_score = settings.min_score if body.min_score is None else body.min_score
        results = [doc.filtered(min_score).to_dict() for doc in docs]
        request.app.state.metrics.texts.inc(len(body.texts))
        request.app.state.metrics.latency.observe(time.perf_counter() - started)
        payload = {"model": run_name(request.app), "results": results}
        return Response(json.dumps(payload, ensure_ascii=False), media_type="application/json")

    @app.get("/v1/model", summary="The model and its run", responses={200: {"model": ModelFacts}, **MODEL_ERRORS})
    async def model(request: Request):
        if request.app.state.tagger is None:
            return error_response(503, NO_MODEL)
        return _model_facts(request.app)

    @app.get("/", summary="A page to try the model in a browser", response_class=HTMLResponse,
             responses={200: {"description": "The page (text/html); with --label-studio, a client that does not "
                              "ask for HTML gets Label Studio's health record (JSON)."}})
    async def page(request: Request):
        if request.app.state.settings.label_studio and "text/html" not in request.headers.get("accept", ""):
            from .labelstudio import health_record  # Label Studio's probe of an ML backend asks / too

            return JSONResponse(health_record(request.app))
        return page_response(request.app.state.settings)

    @app.get("/health", summary="The process is alive")
    async def health(request: Request):
        if request.app.state.settings.label_studio:  # the shape Label Studio's probe expects
            from .labelstudio import health_record

            return health_record(request.app)
        return {"status": "ok"}

    @app.get("/ready", summary="The model is loaded",
             responses=error_responses({503: "The model is not loaded yet."}))
    async def ready(request: Request):
        if not request.app.state.ready:
            return error_response(503, "the model is not loaded yet")
        return {"status": "ready"}

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics(request: Request):
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def page_response(settings: ServeSettings) -> HTMLResponse:
    """The page, with a policy that lets it run its own inline script and style and call this server only."""
    from ..inference.html import content_security_policy, live_page

    return HTMLResponse(live_page(auth=settings.api_key is not None), headers={
        "Content-Security-Policy": content_security_policy(live=True) + "; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


def _model_facts(app) -> dict:
    """/v1/model: the served tagger's facts (run, labels, types, scores, engine) and the served --min-score."""
    return app.state.tagger.facts() | {"model": run_name(app), "min_score": app.state.settings.min_score}


def _add_middleware(app, settings: ServeSettings, metrics: Metrics) -> None:
    """Body size limit, API key, request counting (outermost) and CORS when asked for."""
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(_Guard, settings=settings, metrics=metrics)


class _Guard:
    """ASGI middleware: counts every answer by status, checks the API key (guarded()), caps the body size."""

    def __init__(self, app, settings: ServeSettings, metrics: Metrics):
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, status = scope["path"], {"code": 500}

        async def counted_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is None and scope["method"] in ("POST", "PUT", "PATCH"):
                body = await self._body(receive)
                refusal = _body_refusal(body, self.settings.max_body_bytes)
                receive = _replay(body, receive)
            if refusal is not None:
                return await refusal(scope, receive, counted_send)
            await self.app(scope, receive, counted_send)
        finally:
            known = path if path in KNOWN_PATHS else "other"
            self.metrics.requests.labels(known, str(status["code"])).inc()

    def _refusal(self, scope):
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = self.settings.api_key
        if guarded(self.settings, scope["path"]) and not authorized(headers.get("authorization"), key):
            # Label Studio authenticates to an ML backend with HTTP Basic, the key as the password.
            challenge = 'Basic realm="nerctl"' if scope["path"] in LABEL_STUDIO_PATHS else "Bearer"
            return error_response(401, "missing or wrong API key (Authorization: Bearer KEY, or Basic with "
                                  "the key as password)", {"WWW-Authenticate": challenge})
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.settings.max_body_bytes:
            return error_response(413, f"body over {self.settings.max_body_bytes} bytes")
        return None

    async def _body(self, receive) -> bytes | None:
        """The whole request body, or None once it passes max_body_bytes (also without a Content-Length)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.settings.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _body_refusal(body: bytes | None, limit: int):
    """413 for a body over the limit; 400 for JSON with a lone surrogate, which no tokenizer, XML parser or
    answer (UTF-8) can take: refused here, before any of them fails with a 500."""
    if body is None:
        return error_response(413, f"body over {limit} bytes")
    if SURROGATE_ESCAPE.search(body) is None:  # nearly every body: no surrogate at all
        return None
    try:
        json.dumps(json.loads(body), ensure_ascii=False).encode("utf-8")  # a surrogate pair is one character
    except UnicodeEncodeError as err:
        return error_response(400, f"body: a lone surrogate ({err.object[err.start]!r}) is not Unicode")
    except (ValueError, RecursionError):
        pass  # not JSON: FastAPI's parser says what is wrong
    return None


def _replay(body: bytes | None, receive):
    """An ASGI `receive` that gives the buffered `body` first, then the connection's own (a disconnect)."""
    sent = {"done": False}

    async def replayed():
        if not sent["done"]:
            sent["done"] = True
            return {"type": "http.request", "body": body or b"", "more_body": False}
        return await receive()

    return replayed
