"""nerctl as the ML backend of a real Label Studio server (its own venv: `make label-studio`), both on 127.0.0.1.

Label Studio is driven through its own REST API, as its UI does: a project with non-default control
names, the backend connected with basic auth, tasks imported, predictions retrieved and stored.
"""
import base64
import json
import time

import pytest

from nerctl.data.tags import entity_spans

from labelstudio_server import LabelStudio
from test_labelstudio import label_config, run_types

pytestmark = pytest.mark.labelstudio
KEY = "nerctl-backend-key"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"labelstudio:{KEY}".encode()).decode()}
TEXTS = ["have you seen the dark knight", "show me films with tom hanks from the 1980s", "who directed jaws"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    server = LabelStudio(tmp_path_factory.mktemp("label-studio"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def backend(trained_run):
    from test_serve import Server

    served = Server(trained_run, "--label-studio", env={"NERCTL_API_KEY": KEY})
    yield served
    served.stop()


def weak_backend(studio, tiny_model, tmp_path, epochs: int = 1):
    """(the served run, its backend): a weak model (16 sentences) served with --label-studio, pulling
    annotations from `studio` with its token."""
    from conftest import _tiny_training, make_sentences, write_bio
    from test_serve import Server

    files = {"train": write_bio(tmp_path / "train.bio", make_sentences(16, seed=5)),
             "dev": write_bio(tmp_path / "dev.bio", make_sentences(8, seed=6))}
    served = _tiny_training(tiny_model, files, tmp_path / "runs", "--epochs", str(epochs))
    return served, Server(served, "--label-studio", "--min-annotations", "20", env=backend_env(studio))


def backend_env(studio) -> dict:
    return {"NERCTL_API_KEY": KEY, "LABEL_STUDIO_URL": studio.url, "LABEL_STUDIO_API_KEY": studio.token}


def movie_project(studio, types, title: str) -> dict:
    """A project with non-default names: <Labels name="entities"> over <Text name="query" value="$utterance">."""
    status, project = studio.api("POST", "/api/projects", {"title": title, "label_config": label_config(
        types, from_name="entities", to_name="query", field="utterance")})
    assert status == 201, project
    return project


def connect(studio, backend, project: int) -> tuple[int, object]:
    """Settings -> Model -> Connect model, with basic auth (the password is nerctl's API key)."""
    return studio.api("POST", "/api/ml", {"url": backend.url, "project": project, "title": "nerctl",
                                          "auth_method": "BASIC_AUTH", "basic_auth_user": "labelstudio",
                                          "basic_auth_pass": KEY})


def test_label_studio_stores_nerctls_predictions_in_the_projects_names(studio, backend, trained_run):
    project = movie_project(studio, run_types(trained_run), "movies")
    status, ml = connect(studio, backend, project["id"])
    assert status == 201 and ml["state"] == "CO" and ml["model_version"] == trained_run.name, ml
    status, _ = studio.api("POST", f"/api/projects/{project['id']}/import", [{"data": {"utterance": t}} for t in TEXTS])
    assert status == 201
    status, done = studio.api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project['id']}",
                              {"selectedItems": {"all": True}})
    assert status == 200, done
    _, tasks = studio.api("GET", f"/api/tasks?project={project['id']}&fields=all")
    tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
    _, stored = studio.api("GET", f"/api/predictions/?project={project['id']}")
    assert len(stored) == len(TEXTS)
    records = backend.request("POST", "/v1/ner", {"texts": TEXTS}, {"Authorization": f"Bearer {KEY}"})[1]["results"]
    expected = {r["text"]: r for r in records}
    text_of = {t["id"]: t["data"]["utterance"] for t in tasks}
    for prediction in stored:
        record = expected[text_of[prediction["task"]]]
        assert prediction["model_version"] == trained_run.name
        assert prediction["score"] == pytest.approx(1 - record["uncertainty"], abs=1e-4)
        assert [(r["from_name"], r["to_name"], r["value"]["start"], r["value"]["end"], r["value"]["labels"], r["score"])
                for r in prediction["result"]] == [("entities", "query", e["start"], e["end"], [e["type"]], e["score"])
                                                   for e in record["entities"]]


def test_a_mismatching_labeling_config_is_refused_and_the_backend_log_says_why(studio, trained_run):
    from test_serve import Server

    backend = Server(trained_run, "--label-studio", env={"NERCTL_API_KEY": KEY})
    types = run_types(trained_run)
    project = movie_project(studio, types[1:] + ["PLACE"], "other")
    status, answer = connect(studio, backend, project["id"])
    message = json.dumps(answer)
    # What Label Studio shows: it names /setup's refusal, not its reason ("check the ML backend server console logs").
    assert status == 400 and "400 Client Error" in message and "/setup" in message, answer
    _, backends = studio.api("GET", f"/api/ml?project={project['id']}")
    assert backends == []
    _, stderr = backend.stop()
    assert f"the model predicts {types[0]}, which the labeling config has no label for" in stderr
    assert "PLACE the model was never trained on" in stderr


def annotated_task(sentence, from_name: str, to_name: str) -> dict:
    """A task with the annotation a person would make: each entity span by its character offsets."""
    words, tags = [w for w, _ in sentence], [t for _, t in sentence]
    text, starts = " ".join(words), []
    for word in words:
        starts.append(sum(len(w) + 1 for w in words[: len(starts)]))
    result = []
    for kind, first, end in entity_spans(tags):
        start, stop = starts[first], starts[end - 1] + len(words[end - 1])
        result.append({"from_name": from_name, "to_name": to_name, "type": "labels",
                       "value": {"start": start, "end": stop, "text": text[start:stop], "labels": [kind]}})
    return {"data": {"utterance": text}, "annotations": [{"result": result}]}


def test_annotations_train_a_new_version_that_label_studio_then_predicts_with(studio, tiny_model, tmp_path):
    """A weak model is served; 100 annotated tasks and one annotation made in Label Studio start a training
    (START_TRAINING, Label Studio's own trigger); the new version holds its own on the held-out share, goes
    live, and Label Studio's next predictions carry its model_version."""
    from conftest import make_sentences

    served, backend = weak_backend(studio, tiny_model, tmp_path)
    try:
        pid = movie_project(studio, run_types(served), "learning")["id"]
        assert connect(studio, backend, pid)[0] == 201
        tasks = [annotated_task(s, "entities", "query") for s in make_sentences(100, seed=11)]
        assert studio.api("POST", f"/api/projects/{pid}/import", tasks + [{"data": {"utterance": "who directed jaws"}}])[0] == 201
        assert studio.api("PATCH", f"/api/projects/{pid}", {"start_training_on_annotation_update": True})[0] == 200
        _, listed = studio.api("GET", f"/api/tasks?project={pid}&fields=all&page_size=200")
        listed = listed["tasks"] if isinstance(listed, dict) else listed
        last = next(t for t in listed if t["data"]["utterance"] == "who directed jaws")
        jaws = {"from_name": "entities", "to_name": "query", "type": "labels",
                "value": {"start": 13, "end": 17, "text": "jaws", "labels": ["TITLE"]}}
        load = Load(backend)  # requests all through the training and the swap: none may fail
        assert studio.api("POST", f"/api/tasks/{last['id']}/annotations/", {"result": [jaws]})[0] == 201
        versions = wait_for_training(backend)
        time.sleep(1)
        answers = load.stop()
        (version,) = versions["details"]
        # Label Studio sends START_TRAINING before it commits the annotation that triggered it: 100 or 101.
        assert version["annotations"] in (100, 101) and version["dev_sentences"] > 0, version
        assert version["accepted"], version
        assert versions["served"] == version["name"] != served.name
        assert backend.request("GET", "/health")[1]["model_version"] == version["name"]
        assert {status for status, _ in answers} == {200} and len(answers) > 10
        assert [model for _, model in answers][0] == served.name and answers[-1][1] == version["name"]
        status, _ = studio.api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={pid}",
                               {"selectedItems": {"all": True}})
        _, stored = studio.api("GET", f"/api/predictions/?project={pid}")
        assert {p["model_version"] for p in stored} >= {version["name"]}
    finally:
        _, stderr = backend.stop()
    assert studio.token not in stderr and KEY not in stderr  # keys are never logged


def wait_for_training(backend, timeout_s: float = 300) -> dict:
    """/versions once a training has started and ended."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        versions = backend.request("GET", "/versions", headers=BASIC)[1]
        if versions.get("details") and versions.get("training") is None:
            return versions
        time.sleep(2)
    raise AssertionError(f"no training finished in {timeout_s} s: {versions}")


class Load:
    """POST /v1/ner over and over on a thread, recording (status, model) of each answer, until stopped."""

    def __init__(self, backend):
        import threading

        self.backend, self.answers, self.done = backend, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            status, body, _ = self.backend.request("POST", "/v1/ner", {"texts": ["who directed jaws"]},
                                                   {"Authorization": f"Bearer {KEY}"})
            self.answers.append((status, body.get("model") if isinstance(body, dict) else None))

    def stop(self) -> list:
        self.done.set()
        self.thread.join(60)
        return self.answers


def test_kill_9_during_a_training_then_a_restart_serves_the_last_version_and_finishes_it(studio, tiny_model, tmp_path):
    import signal

    from conftest import make_sentences
    from test_serve import Server

    served, backend = weak_backend(studio, tiny_model, tmp_path, epochs=6)
    project = movie_project(studio, run_types(served), "killed")
    status, ml = connect(studio, backend, project["id"])
    tasks = [annotated_task(s, "entities", "query") for s in make_sentences(100, seed=12)]
    assert studio.api("POST", f"/api/projects/{project['id']}/import", tasks)[0] == 201
    assert studio.api("POST", f"/api/ml/{ml['id']}/train", {})[0] == 200  # Label Studio's "Start training"
    metrics = tmp_path / "runs" / f"ls{project['id']}-v1" / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        time.sleep(0.1)
    assert metrics.exists(), "the training never finished an epoch"
    backend.process.send_signal(signal.SIGKILL)  # mid-training: epochs 2-6 are still to come
    backend.stop()
    state = json.loads((tmp_path / "runs" / "labelstudio.json").read_text())
    assert state["training"] == f"ls{project['id']}-v1" and state["served"] == str(served)

    restarted = Server(served, "--label-studio", "--min-annotations", "20", env=backend_env(studio))
    try:
        assert restarted.request("GET", "/health")[1]["model_version"] == served.name  # the last accepted one
        versions = wait_for_training(restarted)
        (version,) = versions["details"]
        assert version["name"] == f"ls{project['id']}-v1" and version["dev_f1"] is not None
        log = (tmp_path / "runs" / ".labelstudio" / version["name"] / "train.log").read_text()
        # The restart ran `nerctl train --resume`: from the last checkpoint, or from epoch 1 when the kill
        # came before the first one was complete (the tiny epochs take a fraction of a second).
        assert "resumed after epoch" in log or "no epoch had finished: starting again from epoch 1" in log, log
        assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [1, 2, 3, 4, 5, 6]
    finally:
        restarted.stop()


def test_too_few_annotations_train_nothing_and_a_burst_of_requests_trains_twice(studio, tiny_model, tmp_path):
    """Under --min-annotations nothing is trained (the log says why); 30 START_TRAINING in a burst start one
    training, and what arrived during it coalesces into exactly one more."""
    from conftest import make_sentences

    served, backend = weak_backend(studio, tiny_model, tmp_path)
    try:
        project = movie_project(studio, run_types(served), "burst")
        assert connect(studio, backend, project["id"])[0] == 201
        sentences = make_sentences(100, seed=13)
        tasks = [annotated_task(s, "entities", "query") for s in sentences]
        assert studio.api("POST", f"/api/projects/{project['id']}/import", tasks[:5])[0] == 201
        event = {"action": "START_TRAINING", "project": {"id": project["id"], "label_config": project["label_config"]}}
        assert backend.request("POST", "/webhook", event, BASIC)[1]["status"] == "training started"
        time.sleep(5)
        assert backend.request("GET", "/versions", headers=BASIC)[1]["details"] == []
        assert studio.api("POST", f"/api/projects/{project['id']}/import", tasks[5:])[0] == 201
        statuses = [backend.request("POST", "/webhook", event, BASIC)[1]["status"] for _ in range(30)]
        assert statuses[0] == "training started" and set(statuses[1:]) == {"queued"}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            versions = backend.request("GET", "/versions", headers=BASIC)[1]
            if len(versions["details"]) == 2 and versions["training"] is None:
                break
            time.sleep(2)
        time.sleep(5)  # and no third one follows
        versions = backend.request("GET", "/versions", headers=BASIC)[1]
        assert [v["name"] for v in versions["details"]] == [f"ls{project['id']}-v1", f"ls{project['id']}-v2"]
        assert versions["training"] is None
    finally:
        _, stderr = backend.stop()
    assert "5 annotated tasks; training starts at --min-annotations 20" in stderr


def test_without_a_run_the_backend_trains_its_first_version_from_the_projects_annotations(studio, tiny_model,
                                                                                          tmp_path):
    from conftest import SMOKE, make_sentences
    from test_serve import Server

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(open(SMOKE).read() + f"\nmodel = {json.dumps(str(tiny_model))}\n")
    runs = tmp_path / "runs"
    backend = Server(None, "--label-studio", "--train-config", recipe, "--min-annotations", "20",
                     env={**backend_env(studio), "NERCTL_RUNS_ROOT": str(runs)})
    try:
        assert backend.request("GET", "/health")[1] == {"status": "UP", "model_class": "nerctl", "model_version": None}
        status, answer, _ = backend.request("POST", "/v1/ner", {"texts": ["jaws"]}, {"Authorization": f"Bearer {KEY}"})
        assert status == 503 and "no model yet" in answer["error"]["message"]
        types = ["ACTOR", "DIRECTOR", "GENRE", "TITLE", "YEAR"]
        project = movie_project(studio, types, "first")
        status, ml = connect(studio, backend, project["id"])
        assert status == 201, ml
        tasks = [annotated_task(s, "entities", "query") for s in make_sentences(100, seed=14)]
        assert studio.api("POST", f"/api/projects/{project['id']}/import", tasks)[0] == 201
        assert studio.api("POST", f"/api/ml/{ml['id']}/train", {})[0] == 200
        (version,) = wait_for_training(backend)["details"]
        assert version["accepted"] and version["reason"] == "first model" and version["served_dev_f1"] is None
        assert backend.request("GET", "/health")[1]["model_version"] == version["name"]
        assert backend.request("POST", "/v1/ner", {"texts": ["who directed jaws"]},
                               {"Authorization": f"Bearer {KEY}"})[0] == 200
        assert (runs / version["name"] / "summary.json").exists()
    finally:
        backend.stop()


def test_annotations_are_pulled_with_a_legacy_token_or_a_personal_access_token(studio):
    """A personal access token is a JWT refresh token: exchanged for a 5-minute access token, then Bearer."""
    from nerctl.core.errors import NerctlError
    from nerctl.serving.labelstudio_api import LabelStudioClient

    _, project = studio.api("POST", "/api/projects", {"title": "tokens", "label_config": label_config(["TITLE"])})
    task = {"data": {"utterance": "who directed jaws"}, "annotations": [{"result": [
        {"from_name": "ner_tags", "to_name": "doc", "type": "labels",
         "value": {"start": 13, "end": 17, "text": "jaws", "labels": ["TITLE"]}}]}]}
    assert studio.api("POST", f"/api/projects/{project['id']}/import", [task])[0] == 201
    status, pat = studio.api("POST", "/api/token/", {})
    assert status == 201 and pat["token"].count(".") == 2
    for key in (studio.token, pat["token"]):
        (exported,) = json.loads(LabelStudioClient(studio.url, key).export(str(project["id"])))
        assert exported["data"]["utterance"] == "who directed jaws"
    with pytest.raises(NerctlError, match="answered 401"):
        LabelStudioClient(studio.url, "0" * 40).export(str(project["id"]))
