"""`nerctl serve`'s OpenAPI document tells the truth: schemathesis, run against the live server from its own
/openapi.json with every check on, finds no failure (no 5xx, no undeclared status, content type or header, no answer
off its schema, no invalid request accepted or valid one refused, the API key enforced where it is declared); and
the document declares every error a route answers, in the service's one JSON error shape."""
import json
import re
import shutil
import subprocess
import sys

import pytest

from test_serve import Server

pytestmark = pytest.mark.subprocess

KEY = "fuzz-key-value"
MAX_TEXTS = 8  # small, so that schemathesis reaches the limit (the document's maxItems)
# Two of nerctl's choices that schemathesis' defaults cannot know; the checks stay on:
# 413 is how the server refuses a body over its limits (more texts than maxItems): a rejection like 422.
CHECKS = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""
# A labeling config is XML in a string: a schema-valid one may still be one nerctl cannot serve (400), and a task may
# lack the field the config names (/predict's 422).
LABEL_STUDIO_CHECKS = """
[[operations]]
include-path-regex = "^/(setup|predict|webhook|train)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "422"]
"""


@pytest.fixture(scope="module")
def open_server(trained_run):
    served = Server(trained_run, "--max-texts", MAX_TEXTS)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def keyed_server(trained_run, tmp_path_factory):
    """With the API key, and Label Studio's routes: on a copy of the run, since the learner keeps its state beside
    it; without Label Studio's address or key, so that no training it is asked for goes anywhere."""
    folder = tmp_path_factory.mktemp("fuzzed")
    run = shutil.copytree(trained_run, folder / trained_run.name)
    env = {"NERCTL_API_KEY": KEY, "LABEL_STUDIO_URL": "", "LABEL_STUDIO_API_KEY": ""}
    # Its log in a file: fuzzing Label Studio's routes logs a warning a request, more than an unread pipe holds.
    served = Server(run, "--max-texts", MAX_TEXTS, "--label-studio", env=env, log=folder / "serve.log")
    yield served
    served.stop()


def fuzz(server: Server, folder, *options: str, examples: int, label_studio: bool = False) -> int:
    """Schemathesis against `server` from its own document, every phase and check; the test cases it generated.
    A failure shows schemathesis' report (each failure with its curl line to reproduce it)."""
    (folder / "schemathesis.toml").write_text(CHECKS + (LABEL_STUDIO_CHECKS if label_studio else ""))
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", "schemathesis.toml", "--no-color", "run",
               f"{server.url}/openapi.json", "--checks", "all", "--max-examples", str(examples), "--seed", "1",
               "--generation-database", "none", *options]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)  # its cache in folder
    assert done.returncode == 0, f"schemathesis found failures:\n{done.stdout}\n{done.stderr}"
    print(done.stdout[done.stdout.rfind("Test cases"):])
    return int(re.search(r"(\d+) generated", done.stdout)[1])


def answered(server: Server) -> dict[tuple[str, str], float]:
    """The requests the server answered, by (path, status), from its /metrics."""
    metrics = server.request("GET", "/metrics")[1]
    found = re.findall(r'^nerctl_requests_total\{path="([^"]*)",status="(\d+)"\} (\S+)$', metrics, re.M)
    return {(path, status): float(count) for path, status, count in found}


def test_schemathesis_finds_nothing_without_a_key(open_server, tmp_path):
    cases = fuzz(open_server, tmp_path, examples=150)
    assert cases >= 150
    counts = answered(open_server)
    assert sum(counts.values()) >= cases and not any(status.startswith("5") for _, status in counts)
    # It reached the declared refusals: not JSON, wrong shape, too many texts.
    assert all(counts.get(("/v1/ner", status)) for status in ("200", "400", "413", "422")), counts


def test_schemathesis_finds_nothing_with_the_key_on_every_route_and_the_key_is_enforced(keyed_server, tmp_path):
    """Label Studio's routes too; `ignored_auth` sends each guarded route's request without the key and with a
    wrong one, and expects 401."""
    cases = fuzz(keyed_server, tmp_path, "--header", f"Authorization: Bearer {KEY}", examples=40, label_studio=True)
    assert cases >= 200
    counts = answered(keyed_server)
    assert not any(status.startswith("5") for _, status in counts), counts
    for path in ("/v1/ner", "/v1/model", "/webhook", "/train", "/versions"):
        assert counts.get((path, "401")) and counts.get((path, "200")), (path, counts)
    # ignored_auth retries only a request that succeeded; random labeling configs never do, so ask once more here.
    for path in ("/setup", "/predict"):
        assert counts.get((path, "400")) and keyed_server.request("POST", path, {})[0] == 401, (path, counts)
    log = keyed_server.log.read_text()
    assert "Traceback" not in log and KEY not in log


def error_schema(response: dict) -> str | None:
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


def declared(document: dict, path: str, method: str = "get") -> dict[str, dict]:
    return document["paths"][path][method]["responses"]


def test_the_document_declares_each_error_in_the_error_shape_and_nothing_of_fastapis(open_server, keyed_server):
    plain, keyed = (server.request("GET", "/openapi.json")[1] for server in (open_server, keyed_server))
    errors = {("/v1/ner", "post"): {"400", "413", "422", "500", "503"}, ("/v1/model", "get"): {"503"},
              ("/ready", "get"): {"503"}}
    label_studio = {(path, "post"): {"400", "413", "422"} for path in ("/setup", "/predict", "/webhook", "/train")}
    for document, expected, guarded in ((plain, errors, set()), (keyed, errors | label_studio, set(errors) - {
            ("/ready", "get")} | set(label_studio) | {("/versions", "get")})):
        assert "HTTPValidationError" not in json.dumps(document) and "ValidationError" not in document["components"][
            "schemas"]
        for path, method in set(expected) | guarded:
            responses = declared(document, path, method)
            statuses = expected.get((path, method), set()) | ({"401"} if (path, method) in guarded else set())
            assert statuses <= set(responses), (path, responses.keys())
            assert all(error_schema(responses[s]) == "#/components/schemas/ErrorBody" and responses[s]["description"]
                       for s in statuses), path
        assert "Retry-After" in declared(document, "/v1/ner", "post")["503"]["headers"]
        assert set(declared(document, "/metrics")["200"]["content"]) == {"text/plain"}
        assert document["components"]["schemas"]["NerRequest"]["properties"]["texts"]["maxItems"] == MAX_TEXTS
    assert "401" not in declared(plain, "/v1/ner", "post") and "securitySchemes" not in plain["components"]
    assert keyed["paths"]["/v1/ner"]["post"]["security"] == [{"bearer": []}]
    assert keyed["paths"]["/setup"]["post"]["security"] == [{"bearer": []}, {"basic": []}]
    assert "security" not in keyed["paths"]["/health"]["get"] and "401" not in declared(keyed, "/health")
