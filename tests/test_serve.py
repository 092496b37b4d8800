"""`nerctl serve`: the real server in a subprocess on a free loopback port, hit over HTTP."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerctl.cli import app
from conftest import free_ports

TEXTS = ["have you seen the dark knight", "who directed jaws", "", "show me films with tom hanks from the 1980s"]


class Server:
    def __init__(self, run, *options, env=None, log: Path | None = None):
        """`log`: a file for its stderr, for a server that logs more than an unread pipe holds."""
        (self.port,) = free_ports()
        self.url, self.log = f"http://127.0.0.1:{self.port}", log
        sink = open(log, "w") if log else subprocess.PIPE
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nerctl", "serve", *([str(run)] if run is not None else []), "--port",
             str(self.port), *map(str, options)],
            # stdout holds uvicorn's access log, a line a request: unread, it would fill its pipe and stall the
            # server; stderr (start-up, errors, what the tests check) is read when the server stops.
            stdout=subprocess.DEVNULL, stderr=sink, text=True, env={**os.environ, **(env or {})})
        if log:
            sink.close()  # the child has its own copy
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.stop()[1]}")
            with contextlib.suppress(OSError):
                if self.request("GET", "/ready")[0] == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise AssertionError("server not ready in 90 s")

    def request(self, method, path, body=None, headers=None, raw: bytes | None = None):
        """(status, parsed JSON or text, headers)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, text, got = response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as err:
            status, text, got = err.code, err.read().decode(), err.headers
        try:
            return status, json.loads(text), got
        except ValueError:
            return status, text, got

    def stop(self, sig=signal.SIGTERM, timeout=60) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        _, stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, self.log.read_text() if self.log else stderr


@pytest.fixture(scope="module")
def server(trained_run):
    served = Server(trained_run, "--max-texts", 5, "--max-queue", 4, "--max-body-bytes", 4000, "--max-words", 60)
    yield served
    served.stop()


def test_results_are_the_records_predict_writes(server, trained_run):
    printed = CliRunner().invoke(app, ["predict", "--run", str(trained_run), "--format", "jsonl", *TEXTS])
    status, body, _ = server.request("POST", "/v1/ner", {"texts": TEXTS})
    assert status == 200 and body["model"] == trained_run.name
    assert [json.dumps(r, ensure_ascii=False) + "\n" for r in body["results"]] == printed.stdout.splitlines(True)


def test_a_requests_min_score_leaves_out_the_spans_under_it_as_predict_does(server, trained_run):
    """min_score 1 leaves no entity (every span probability is under 1 on the tiny model); 0.3 what
    `predict --min-score 0.3` leaves; a bad value is a 422 naming the field."""
    status, body, _ = server.request("POST", "/v1/ner", {"texts": TEXTS, "min_score": 1.0})
    assert status == 200 and all(r["entities"] == [] and {w["tag"] for w in r["words"]} <= {"O"}
                                 for r in body["results"])
    printed = CliRunner().invoke(app, ["predict", "--run", str(trained_run), "--format", "jsonl", "--min-score", "0.3",
                                       *TEXTS])
    status, body, _ = server.request("POST", "/v1/ner", {"texts": TEXTS, "min_score": 0.3})
    assert [json.dumps(r, ensure_ascii=False) + "\n" for r in body["results"]] == printed.stdout.splitlines(True)
    status, body, _ = server.request("POST", "/v1/ner", {"texts": TEXTS, "min_score": 2})
    assert status == 422 and "min_score" in body["error"]["message"]


def test_model_health_ready_metrics_and_docs(server, trained_run):
    status, model, _ = server.request("GET", "/v1/model")
    assert status == 200
    assert model["labels"] == json.loads((trained_run / "labels.json").read_text())["labels"]
    summary = json.loads((trained_run / "summary.json").read_text())
    assert model["engine"] == {"backend": "litert", "precision": "fp32"} and model["max_len"] == 32
    assert model["best_dev_f1"] == summary["best_dev_f1"] and model["test_f1"] == summary["test"]["f1"]
    assert model["temperature"] == summary["calibration"]["temperature"] and model["min_score"] == 0.0
    assert server.request("GET", "/health")[:2] == (200, {"status": "ok"})
    assert server.request("GET", "/ready")[:2] == (200, {"status": "ready"})
    assert "/v1/ner" in server.request("GET", "/openapi.json")[1]["paths"]
    assert server.request("GET", "/docs")[0] == 200
    status, metrics, headers = server.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'nerctl_requests_total{path="/health",status="200"}' in metrics


def test_the_page_comes_with_its_policy(server):
    """GET / is the page (tests/test_browser.py drives it), sent with the policy that lets only its own code run."""
    from nerctl.inference.html import content_security_policy

    status, page, headers = server.request("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and 'id="texts"' in page
    assert headers["Content-Security-Policy"] == content_security_policy(live=True) + "; frame-ancestors 'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("raw, status, message", [
    (b"{bad", 400, "body: invalid JSON"),
    (b'{"texts": ["\xff"]}', 400, "body: not UTF-8 JSON"),
    (b'{"texts": ["\\ud800"]}', 400, "lone surrogate"),
    (b'{"texts": "one"}', 422, "texts: Input should be a valid list"),
    (b'{"texts": [1]}', 422, "texts.0: Input should be a valid string"),
    (b'{"text": ["a"]}', 422, "texts: Field required"),
    (b'{"texts": ["a"], "extra": 1}', 422, "extra: Extra inputs are not permitted"),
    (json.dumps({"texts": ["a"] * 6}).encode(), 413, "at most 5 per request"),
    (json.dumps({"texts": ["word " * 61]}).encode(), 413, "texts.0: more than 60 words"),
    (json.dumps({"texts": ["x" * 5000]}).encode(), 413, "body over 4000 bytes"),
])
def test_bad_requests_get_a_json_error_and_the_server_lives_on(server, raw, status, message):
    got, body, _ = server.request("POST", "/v1/ner", raw=raw)
    assert got == status and body["error"]["status"] == status and message in body["error"]["message"], body
    assert server.request("POST", "/v1/ner", {"texts": ["who directed jaws"]})[0] == 200


def test_a_body_without_a_length_is_capped_too(server):
    """A chunked body (no Content-Length) over --max-body-bytes is refused with 413.

    The server may answer and close before it has read the whole body: the request
    goes out in one write (a client streaming it chunk by chunk could meet a broken
    pipe first, which says nothing about the server) and the answer is read back.
    """
    body = b'{"texts": ["' + b"x" * 10_000 + b'"]}'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 1000]), body[i : i + 1000])
                       for i in range(0, len(body), 1000)) + b"0\r\n\r\n"
    head = (b"POST /v1/ner HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + chunked)
        with contextlib.suppress(ConnectionResetError):  # a close with the body unread may end in a reset
            while data := sock.recv(65536):
                answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer[:300]
    assert b'"status":413' in rest.replace(b" ", b"")


def test_a_full_queue_answers_503_with_retry_after(server):
    status, body, headers = server.request("POST", "/v1/ner", {"texts": ["a", "b", "c", "d", "e"]})
    assert status == 503 and headers["Retry-After"] == "1" and "busy" in body["error"]["message"]


def test_the_api_key_guards_v1_and_never_reaches_the_log(trained_run):
    key = "s3cret-key-value"
    served = Server(trained_run, env={"NERCTL_API_KEY": key})
    try:
        assert served.request("POST", "/v1/ner", {"texts": ["jaws"]})[0] == 401
        status, body, headers = served.request("GET", "/v1/model", headers={"Authorization": "Bearer wrong"})
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer" and body["error"]["status"] == 401
        assert served.request("POST", "/v1/ner", {"texts": ["jaws"]}, {"Authorization": f"Bearer {key}"})[0] == 200
        assert served.request("GET", "/health")[0] == 200  # probes need no key
    finally:
        code, log = served.stop()
    assert code == 0 and key not in log


def test_concurrent_requests_share_a_batch_and_sigterm_answers_the_one_in_flight(trained_run):
    served = Server(trained_run, "--max-wait-ms", 1500)
    results: dict[int, tuple] = {}

    def ask(i):
        results[i] = served.request("POST", "/v1/ner", {"texts": [TEXTS[i % len(TEXTS)]]})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(results[i][0] == 200 for i in range(8))
    metrics = served.request("GET", "/metrics")[1]
    count = float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith("nerctl_batch_size_texts_count")))
    total = float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith("nerctl_batch_size_texts_sum")))
    assert total == 8 and count < 8  # 8 requests, fewer model calls

    in_flight = threading.Thread(target=ask, args=(100,))
    in_flight.start()
    time.sleep(0.5)  # the request is waiting for company in the batcher (1.5 s)
    code, log = served.stop(signal.SIGTERM)
    in_flight.join(30)
    assert results[100][0] == 200 and results[100][1]["results"][0]["text"] == TEXTS[0]
    assert code == 0, log


def test_ctrl_c_stops_the_server_with_exit_0(trained_run):
    served = Server(trained_run)
    code, log = served.stop(signal.SIGINT)
    assert code == 0 and "Traceback" not in log


def test_serve_usage_errors_exit_2(tmp_path):
    from test_cli import nerctl

    result = nerctl("serve", str(tmp_path / "nope"))
    assert result.returncode == 2 and "no such run directory" in result.stderr
    key = tmp_path / "key"
    key.write_text("")
    result = nerctl("serve", "--api-key-file", str(key), str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
