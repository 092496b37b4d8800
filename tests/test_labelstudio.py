"""Label Studio as a live partner: its labeling configs, and the ML backend nerctl serves it."""
import base64
import json

import pytest

from nerctl.core.errors import InputError
from nerctl.data.formats.labelstudio import parse_labeling_config, parse_labelstudio

CONFIG = ('<View><Header value="Tag the query"/><Labels name="ner_tags" toName="doc">'
          '<Label value="ACTOR" background="red"/><Label value="TITLE"/></Labels>'
          '<Text name="doc" value="$utterance"/></View>')


def test_a_labeling_config_gives_the_names_the_text_field_and_the_types():
    config = parse_labeling_config(CONFIG)
    assert (config.from_name, config.to_name, config.text_key, config.labels) == (
        "ner_tags", "doc", "utterance", ("ACTOR", "TITLE"))
    config.check_types(["TITLE", "ACTOR"])


@pytest.mark.parametrize("xml, message", [
    ("<View>", "not valid XML"),
    ('<View><Text name="t" value="$text"/></View>', "no <Labels> control over a <Text> object"),
    ('<View><Labels name="l" toName="other"><Label value="A"/></Labels><Text name="t" value="$text"/></View>',
     "no <Labels> control over a <Text> object"),
    ('<View><Labels name="a" toName="t"><Label value="A"/></Labels><Labels name="b" toName="t"><Label value="B"/>'
     '</Labels><Text name="t" value="$text"/></View>', "2 <Labels> controls"),
    ('<View><Labels name="l" toName="t"><Label value="A B"/></Labels><Text name="t" value="$text"/></View>',
     "label(s) A B are not entity types"),
    ('<View><Labels name="l" toName="t"></Labels><Text name="t" value="$text"/></View>', "no <Label value=...>"),
    ('<View><Labels name="l" toName="t"><Label value="A"/></Labels><Text name="t" value="text"/></View>',
     'value="text" is not a task field'),
])
def test_a_config_nerctl_cannot_serve_says_why(xml, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")):
        parse_labeling_config(xml)


def test_types_must_match_both_ways_and_the_error_names_them():
    config = parse_labeling_config(CONFIG)
    with pytest.raises(InputError) as err:
        config.check_types(["ACTOR", "YEAR"])
    assert "the model predicts YEAR" in str(err.value) and "label(s) TITLE the model was never trained on" in str(err.value)


def test_an_export_is_read_from_the_configs_text_field():
    export = ('[{"id": 7, "data": {"utterance": "have you seen jaws"}, "annotations": [{"result": [{"from_name": '
              '"ner_tags", "to_name": "doc", "type": "labels", "value": {"start": 14, "end": 18, "labels": ["TITLE"]}}]}]}]')
    (sentence,) = parse_labelstudio(export, "export.json", text_key="utterance")
    assert list(sentence.words) == ["have", "you", "seen", "jaws"] and list(sentence.tags) == ["O", "O", "O", "B-TITLE"]
    with pytest.raises(InputError, match='task 7: no "text" field'):
        parse_labelstudio(export, "export.json")


# ---------------------------------------------------------------- the backend's routes, on a real server

def label_config(types, from_name="ner_tags", to_name="doc", field="utterance") -> str:
    labels = "".join(f'<Label value="{t}"/>' for t in types)
    return (f'<View><Labels name="{from_name}" toName="{to_name}">{labels}</Labels>'
            f'<Text name="{to_name}" value="${field}"/></View>')


def run_types(run) -> list[str]:
    labels = json.loads((run / "labels.json").read_text())["labels"]
    return sorted({label[2:] for label in labels if label != "O"})


@pytest.fixture(scope="module")
def backend(trained_run):
    from test_serve import Server

    served = Server(trained_run, "--label-studio", env={"NERCTL_API_KEY": KEY})
    yield served
    served.stop()


KEY = "ls-secret-key"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"labelstudio:{KEY}".encode()).decode()}
TEXTS = ["have you seen the dark knight", "who directed jaws", ""]


def test_health_answers_in_label_studios_shape_without_auth(backend, trained_run):
    for path in ("/health", "/"):
        assert backend.request("GET", path)[:2] == (200, {"status": "UP", "model_class": "nerctl",
                                                          "model_version": trained_run.name})
    status, page, headers = backend.request("GET", "/", headers={"Accept": "text/html,*/*"})  # a browser
    assert status == 200 and page.startswith("<!doctype html>") and "Content-Security-Policy" in headers


def test_setup_accepts_a_config_that_matches_the_model_and_names_any_mismatch(backend, trained_run):
    types = run_types(trained_run)
    body = {"project": "3.1764633000", "schema": label_config(types), "hostname": "http://127.0.0.1:8200",
            "access_token": "token", "extra_params": None}
    assert backend.request("POST", "/setup", body, AUTH)[:2] == (200, {"model_version": trained_run.name})
    status, answer, _ = backend.request("POST", "/setup", {**body, "schema": label_config(types[1:] + ["PLACE"])},
                                        AUTH)
    assert status == 400 and f"the model predicts {types[0]}" in answer["error"]["message"]
    assert "PLACE the model was never trained on" in answer["error"]["message"]


def test_predict_gives_one_prediction_per_task_in_the_configs_names_with_nerctls_scores(backend, trained_run):
    body = {"tasks": [{"id": i, "data": {"utterance": t}} for i, t in enumerate(TEXTS)], "model_version": None,
            "project": "3.1764633000", "label_config": label_config(run_types(trained_run)), "params": {"context": {}}}
    status, answer, _ = backend.request("POST", "/predict", body, AUTH)
    assert status == 200 and answer["model_version"] == trained_run.name and len(answer["results"]) == len(TEXTS)
    records = backend.request("POST", "/v1/ner", {"texts": TEXTS}, {"Authorization": f"Bearer {KEY}"})[1]["results"]
    for text, got, record in zip(TEXTS, answer["results"], records):
        assert got["model_version"] == trained_run.name and got["score"] == round(1 - record["uncertainty"], 4)
        spans = [(r["value"]["start"], r["value"]["end"], r["value"]["labels"], r["score"]) for r in got["result"]]
        assert spans == [(e["start"], e["end"], [e["type"]], e["score"]) for e in record["entities"]]
        assert all(r["from_name"] == "ner_tags" and r["to_name"] == "doc" and r["type"] == "labels"
                   and r["value"]["text"] == text[r["value"]["start"]:r["value"]["end"]] for r in got["result"])
    # Without a label_config, the one /setup or a /predict checked for the project is used.
    again = backend.request("POST", "/predict", {**body, "label_config": None}, AUTH)[1]
    assert again["results"] == answer["results"]


@pytest.mark.parametrize("path, body, status, message", [
    ("/predict", {"tasks": "x"}, 422, "tasks: Input should be a valid list"),
    ("/predict", {"tasks": [{"id": 1}]}, 422, "tasks.0.data: Field required"),
    ("/predict", {"tasks": [{"id": 9, "data": {"text": "jaws"}}], "label_config": None, "project": "77"}, 400,
     "no /setup for its project"),
    ("/predict", {"tasks": [{"id": 9, "data": {"text": "jaws"}}], "label_config": "<View"}, 400, "not valid XML"),
    ("/setup", {"project": "1"}, 422, "schema: Field required"),
    ("/setup", {"schema": "<View><Text name='t' value='$text'/></View>"}, 400, "no <Labels> control"),
])
def test_malformed_label_studio_requests_get_a_4xx_json_error_never_500(backend, path, body, status, message):
    got, answer, _ = backend.request("POST", path, body, AUTH)
    assert got == status and message in answer["error"]["message"], answer


def test_a_task_without_the_configs_text_field_is_named(backend, trained_run):
    body = {"tasks": [{"id": 5, "data": {"text": "jaws"}}], "label_config": label_config(run_types(trained_run))}
    status, answer, _ = backend.request("POST", "/predict", body, AUTH)
    assert status == 422 and "tasks.0 (id 5): data.utterance is not a text" in answer["error"]["message"]


def test_the_backend_routes_need_the_key_as_bearer_or_basic_password(backend, trained_run):
    body = {"schema": label_config(run_types(trained_run))}
    assert backend.request("POST", "/setup", body)[0] == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"labelstudio:nope").decode()}
    assert backend.request("POST", "/setup", body, wrong)[0] == 401
    assert backend.request("POST", "/setup", body, {"Authorization": f"Bearer {KEY}"})[0] == 200
    assert backend.request("GET", "/versions", headers=AUTH)[:2] == (200, {
        "versions": [trained_run.name], "served": trained_run.name, "training": None, "details": []})


# ---------------------------------------------------------------- when it trains

def test_a_burst_of_annotations_during_a_training_coalesces_into_one_more():
    from nerctl.serving.schedule import Schedule

    schedule = Schedule(every=1)
    starts = [schedule.on_event("ANNOTATION_CREATED") for _ in range(100)]
    assert starts == [True] + [False] * 99 and schedule.pending  # one running, one due after it
    assert schedule.on_finished() is True and not schedule.pending  # the coalesced one starts
    assert schedule.on_finished() is False and not schedule.running  # and nothing after it


def test_train_every_n_annotations_and_start_training_at_once():
    from nerctl.serving.schedule import Schedule, UnknownEvent

    schedule = Schedule(every=3)
    assert [schedule.on_event("ANNOTATION_UPDATED") for _ in range(3)] == [False, False, True]
    assert schedule.on_finished() is False
    assert schedule.on_event("ANNOTATION_DELETED") is False and schedule.events == 1
    assert schedule.on_event("START_TRAINING") is True and schedule.events == 0
    assert schedule.on_event("START_TRAINING") is False and schedule.pending  # never two at once
    with pytest.raises(UnknownEvent):
        schedule.on_event("TASKS_DELETED")


@pytest.mark.parametrize("body, status, answer", [
    ({"action": "TASKS_CREATED", "tasks": []}, 200, {"status": "Unknown event", "action": "TASKS_CREATED"}),
    ({"action": "LABEL_LINK_CREATED", "project": {"id": 3}}, 200, {"status": "Unknown event",
                                                                   "action": "LABEL_LINK_CREATED"}),
    ({}, 422, "action: Field required"),
    ({"action": 5}, 422, "action: Input should be a valid string"),
    ({"action": "START_TRAINING", "project": "3"}, 422, "project: Input should be a valid dictionary"),
    ({"action": "START_TRAINING", "project": {"id": 3, "label_config": "<View"}}, 400,
     "project.label_config: the labeling config is not valid XML"),
])
def test_webhook_events_nerctl_does_not_train_on_and_malformed_ones(backend, body, status, answer):
    got, reply, _ = backend.request("POST", "/webhook", body, AUTH)
    assert got == status, reply
    assert reply == answer if isinstance(answer, dict) else answer in reply["error"]["message"]


@pytest.mark.parametrize("body, status", [({"project": []}, 422), ({"label_config": 5}, 422)])
def test_the_legacy_train_route_refuses_malformed_bodies(backend, body, status):
    got, reply, _ = backend.request("POST", "/train", body, AUTH)
    assert got == status and reply["error"]["status"] == status, reply


def test_the_legacy_train_route_asks_for_a_training_like_start_training(backend, trained_run):
    """Older Label Studio builds POST /train with the tasks; nerctl pulls them itself, as for START_TRAINING.
    (Without Label Studio's address or key the training that starts fails in the log, the service lives on.)"""
    body = {"annotations": [{"id": 1, "data": {"utterance": "jaws"}, "annotations": []}], "project": "3.1764633000",
            "label_config": label_config(run_types(trained_run)), "params": {"login": None, "password": None}}
    status, reply, _ = backend.request("POST", "/train", body, AUTH)
    assert status == 200 and reply == {"status": "training started", "action": "START_TRAINING"}
    assert backend.request("GET", "/health")[0] == 200


def test_the_training_child_gets_no_key_and_no_option_that_would_override_the_recipe(monkeypatch, tmp_path):
    from nerctl.serving.learner import training_environment

    for name, value in {"NERCTL_API_KEY": "k1", "LABEL_STUDIO_API_KEY": "k2", "NERCTL_SERVE_SETTINGS": "{...k1...}",
                        "NERCTL_EPOCHS": "50", "NERCTL_DATA_DIR": "/data", "PATH": "/bin"}.items():
        monkeypatch.setenv(name, value)
    env = training_environment(tmp_path)
    assert not {"NERCTL_API_KEY", "LABEL_STUDIO_API_KEY", "NERCTL_SERVE_SETTINGS", "NERCTL_EPOCHS"} & set(env)
    assert env["NERCTL_DATA_DIR"] == "/data" and env["PATH"] == "/bin" and env["NERCTL_RUNS_ROOT"] == str(tmp_path)


def test_the_recipe_file_reads_back_as_the_served_runs_config_and_the_held_out_share_is_stable(tmp_path):
    import tomllib

    from nerctl.config import TrainConfig, resolve_config
    from nerctl.serving.learner import RECIPE_SKIP, held_out, recipe_toml

    served = TrainConfig(epochs=3, lr=1e-4, model="/models/tiny bert", train_file="old.bio", head="softmax")
    text = recipe_toml(served)
    assert tomllib.loads(text)["model"] == "/models/tiny bert" and "train_file" not in tomllib.loads(text)
    (tmp_path / "recipe.toml").write_text(text)
    again = resolve_config(tmp_path / "recipe.toml", environ={})
    assert {k: v for k, v in again.to_dict().items() if k not in RECIPE_SKIP} == {
        k: v for k, v in served.to_dict().items() if k not in RECIPE_SKIP}
    chosen = [held_out(i) for i in range(2000)]
    assert 0.15 < sum(chosen) / len(chosen) < 0.25 and chosen == [held_out(i) for i in range(2000)]
