"""nerctl as the ML backend of a real Label Studio server (its own venv: `make label-studio`), both on 127.0.0.1.

Label Studio is driven through its own REST API, as its UI does: a project with non-default control
names, the backend connected with basic auth, tasks imported, predictions retrieved and stored.
"""
import json

import pytest

from labelstudio_server import LabelStudio
from test_labelstudio import label_config, run_types

pytestmark = pytest.mark.labelstudio
KEY = "nerctl-backend-key"
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


def connect(studio, backend, project: int) -> tuple[int, object]:
    """Settings -> Model -> Connect model, with basic auth (the password is nerctl's API key)."""
    return studio.api("POST", "/api/ml", {"url": backend.url, "project": project, "title": "nerctl",
                                          "auth_method": "BASIC_AUTH", "basic_auth_user": "labelstudio",
                                          "basic_auth_pass": KEY})


def test_label_studio_stores_nerctls_predictions_in_the_projects_names(studio, backend, trained_run):
    status, project = studio.api("POST", "/api/projects", {"title": "movies", "label_config": label_config(
        run_types(trained_run), from_name="entities", to_name="query", field="utterance")})
    assert status == 201, project
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
    status, project = studio.api("POST", "/api/projects", {"title": "other", "label_config": label_config(
        types[1:] + ["PLACE"], from_name="entities", to_name="query", field="utterance")})
    assert status == 201
    status, answer = connect(studio, backend, project["id"])
    message = json.dumps(answer)
    # What Label Studio shows: it names /setup's refusal, not its reason ("check the ML backend server console logs").
    assert status == 400 and "400 Client Error" in message and "/setup" in message, answer
    _, backends = studio.api("GET", f"/api/ml?project={project['id']}")
    assert backends == []
    _, stderr = backend.stop()
    assert f"the model predicts {types[0]}, which the labeling config has no label for" in stderr
    assert "PLACE the model was never trained on" in stderr
