"""`nerctl serve --label-studio`: the routes Label Studio calls on an ML backend.

    GET  /health, GET /   {"status": "UP", "model_class": "nerctl", "model_version"}: Label Studio's probe
    POST /setup           the project's labeling config checked against the model; {"model_version"}
    POST /predict         one prediction per task: `labels` results with span scores, a task score
    GET  /versions        the versions trained, and how each fared against the served one
    POST /webhook         annotation events and START_TRAINING, for the learner (learner.py)
    POST /train           the legacy way to ask for a training

Label Studio waits about a second for /health and a few for /setup, so
neither loads or trains anything. The labeling config (sent with /setup and
/predict) names the results' from_name and to_name and the task field that
holds the text (data/formats/labelstudio.py parses it). A config nerctl cannot
serve is a 400 naming the mismatch; Label Studio shows only "400 Client Error
... /setup" and points to the backend's console, so the reason is logged on
stderr too. A malformed body is a 422 naming the field (400 if it is not JSON), never a 500;
the bodies are read strictly (`true` is no project id), as the OpenAPI document declares them.
Predictions go through the server's batcher (serving/batcher.py), so Label
Studio's requests and /v1/ner's share batches.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import InputError
from ..data.formats.labelstudio import LabelingConfig, parse_labeling_config
from ..data.tags import entity_type
from ..inference.output import prediction
from .common import BODY_ERRORS, INTERNAL_ERROR, error_response, error_responses, run_name

MODEL_CLASS = "nerctl"
SETUP_ERRORS = error_responses({**BODY_ERRORS, **INTERNAL_ERROR, 400: "The body cannot be parsed, or its labeling "
                                "config is one nerctl cannot serve (the message says why)."})
PREDICT_ERRORS = error_responses({**BODY_ERRORS, **INTERNAL_ERROR, 400: "The body cannot be parsed, or its labeling "
                                  "config is one nerctl cannot serve, or there is none (no label_config and no /setup "
                                  "for the project).", 422: "Valid JSON of the wrong shape, or a task without the "
                                  "labeling config's text field; the message names it."})
EVENT_ERRORS = error_responses({**BODY_ERRORS, **INTERNAL_ERROR, 400: "The body cannot be parsed, or the project's "
                                "label_config is not a labeling config nerctl can read."})


class SetupRequest(BaseModel):
    """POST /setup, as Label Studio sends it (other fields it may add are ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)
    project: str | int | None = Field(None, description='"<project id>.<timestamp>"')
    label_config: str = Field(alias="schema", description="The project's labeling config (XML).")
    hostname: str | None = None  # Label Studio's address: where annotations are pulled from, unless LABEL_STUDIO_URL
    access_token: str | None = None  # never used: the key to pull annotations comes from the environment or a file
    extra_params: Any = None


class Task(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    id: int | str | None = None
    data: dict[str, Any]


class PredictRequest(BaseModel):
    """POST /predict, as Label Studio sends it."""

    model_config = ConfigDict(extra="ignore", strict=True)
    tasks: list[Task]
    label_config: str | None = Field(None, description="The project's labeling config (XML).")
    project: str | int | None = None
    model_version: str | None = None
    params: dict[str, Any] | None = None


class WebhookRequest(BaseModel):
    """POST /webhook: Label Studio's project webhooks and its START_TRAINING."""

    model_config = ConfigDict(extra="ignore", strict=True)
    action: str
    project: dict[str, Any] | None = None  # id, label_config, ... (the project's serialisation)


class TrainRequest(BaseModel):
    """POST /train (Label Studio before its START_TRAINING webhook): the tasks come along, but are pulled again."""

    model_config = ConfigDict(extra="ignore", strict=True)
    project: str | int | None = None
    label_config: str | None = None


class SetupAnswer(BaseModel):
    model_version: str | None = Field(description="The served run (None before the first version).")


class Prediction(BaseModel):
    """One task's prediction, as Label Studio reads it."""

    result: list[dict[str, Any]] = Field(description="A `labels` result per entity, with its score.")
    score: float = Field(description="How sure the model is of the task (1 - uncertainty).")
    model_version: str


class PredictAnswer(BaseModel):
    results: list[Prediction] = Field(description="One per task, in order (none before the first version).")
    model_version: str | None


class VersionsAnswer(BaseModel):
    versions: list[str] = Field(description="The served version first, then the others trained.")
    served: str | None
    training: str | None = Field(description="The version being trained, if any.")
    details: list[dict[str, Any]] = Field(description="Each version trained, and how it fared against the served one.")


class EventAnswer(BaseModel):
    status: str = Field(description='What the learner did: "training started", ..., or "Unknown event".')
    action: str


def on_training_event(app, action: str, project: dict[str, Any] | None):
    """Hand an event to the learner; "Unknown event" for actions it does not train on."""
    from .schedule import UnknownEvent

    config = None
    if project and isinstance(project.get("label_config"), str):
        try:
            config = parse_labeling_config(project["label_config"])
        except InputError as err:
            return error_response(400, f"project.label_config: {err}")
    try:
        status = app.state.learner.on_event(action, project.get("id") if project else None, config)
    except UnknownEvent:
        return {"status": "Unknown event", "action": action}
    return {"status": status, "action": action}


def start_learner(app) -> None:
    """The learner for `serve --label-studio`, serving the last version it accepted (labelstudio.json)."""
    from ..artifacts.rundir import RunDir, default_runs_root
    from ..config import resolve_config
    from ..inference.tagger import Tagger
    from .labelstudio_api import URL_ENV, LabelStudioClient
    from .learner import Learner

    settings = app.state.settings

    def swap(new: RunDir) -> None:
        tagger = Tagger.from_run(new, batch_size=settings.max_batch, precision=settings.precision,
                                 backend=settings.backend)
        app.state.tagger, app.state.run_path = tagger, new.path
        app.state.batcher.retarget(tagger.tag_texts)

    client = LabelStudioClient(os.environ.get(URL_ENV), settings.label_studio_key)
    if settings.run:
        run = RunDir(Path(settings.run))
        root, recipe, served = run.path.parent, run.read_config().config, str(run.path)
    else:  # no run yet: versions go to the runs root, the first trained with --train-config's recipe
        root, recipe, served = default_runs_root().resolve(), resolve_config(settings.train_config), None
    learner = Learner(root, recipe, client, swap, served, settings.train_every, settings.min_annotations)
    if learner.state.served is not None and learner.state.served != served and Path(learner.state.served).is_dir():
        swap(RunDir(Path(learner.state.served)))
    app.state.learner = learner
    learner.resume_interrupted()


def model_types(tagger) -> list[str]:
    """The entity types the tagger's model predicts."""
    return sorted({entity_type(label) for label in tagger.label_map.labels} - {"O"})


def served_config(app, xml: str | None, project: str | int | None) -> LabelingConfig:
    """The labeling config of a request (else the one /setup last checked for its project), checked
    against the served model. InputError says what does not match."""
    projects = app.state.label_studio_configs
    key = str(project).split(".")[0] if project is not None else None
    if xml is None:
        if key not in projects:
            raise InputError("no label_config in the request and no /setup for its project yet")
        return projects[key]
    config = parse_labeling_config(xml)
    if app.state.tagger is not None:  # before the first version, the project's labels are the types to learn
        config.check_types(model_types(app.state.tagger))
    if key is not None:
        projects[key] = config
        learner = app.state.learner
        learner.state.project, learner.config = learner.state.project or key, config
    return config


def task_texts(tasks: list[Task], config: LabelingConfig) -> list[str]:
    """Each task's text, from the field the labeling config names."""
    texts = []
    for i, task in enumerate(tasks):
        text = task.data.get(config.text_key)
        if not isinstance(text, str):
            raise InputError(f"tasks.{i} (id {task.id}): data.{config.text_key} is not a text "
                             f'(the labeling config\'s <Text value="${config.text_key}">)')
        texts.append(text)
    return texts


def add_label_studio_routes(app) -> None:
    """The ML backend routes, on the app `serving/app.py` made."""
    app.state.label_studio_configs = {}  # project id -> its checked LabelingConfig

    @app.post("/setup", summary="Label Studio: check the project's labeling config",
              responses={200: {"model": SetupAnswer}, **SETUP_ERRORS})
    async def setup(body: SetupRequest, request: Request):
        if body.hostname and not request.app.state.learner.client.url:
            request.app.state.learner.client.url = body.hostname  # where to pull annotations from
        try:
            served_config(request.app, body.label_config, body.project)
        except InputError as err:
            # Label Studio shows only "400 Client Error ... check the ML backend server console logs": say it here.
            logging.getLogger("uvicorn.error").warning("Label Studio project %s: cannot serve its labeling config: %s",
                                                       body.project, err)
            return error_response(400, str(err))
        return {"model_version": run_name(request.app)}

    @app.post("/predict", summary="Label Studio: pre-annotate tasks",
              responses={200: {"model": PredictAnswer}, **PREDICT_ERRORS})
    async def predict(body: PredictRequest, request: Request):
        try:
            config = served_config(request.app, body.label_config, body.project)
        except InputError as err:
            return error_response(400, str(err))
        try:
            texts = task_texts(body.tasks, config)
        except InputError as err:
            return error_response(422, str(err))
        if request.app.state.tagger is None:  # before the first version: nothing to pre-annotate with
            return {"results": [], "model_version": None}
        docs = await tag_in_batches(request.app, texts)
        version = run_name(request.app)
        return {"results": [prediction(doc, version, config.from_name, config.to_name) for doc in docs],
                "model_version": version}

    @app.get("/versions", summary="Label Studio: the model versions trained, and how each fared",
             responses={200: {"model": VersionsAnswer}})
    async def versions(request: Request):
        learner = request.app.state.learner
        trained = [v.__dict__ for v in learner.state.versions]
        served = run_name(request.app)
        names = ([served] if served else []) + [v["name"] for v in trained if v["name"] != served]
        return {"versions": names, "served": served, "training": learner.state.training,
                "details": trained}

    @app.post("/webhook", summary="Label Studio: an event (annotations, START_TRAINING)",
              responses={200: {"model": EventAnswer}, **EVENT_ERRORS})
    async def webhook(body: WebhookRequest, request: Request):
        return on_training_event(request.app, body.action, body.project)

    @app.post("/train", summary="Label Studio (legacy): train", responses={200: {"model": EventAnswer}, **EVENT_ERRORS})
    async def train(body: TrainRequest, request: Request):
        project = {"id": str(body.project).split(".")[0], "label_config": body.label_config} if body.project else None
        return on_training_event(request.app, "START_TRAINING", project)


async def tag_in_batches(app, texts: list[str]) -> list:
    """The Docs of `texts`, a batch at a time: Label Studio may send a whole project's tasks at once,
    more than the queue holds."""
    step, docs = app.state.settings.max_batch, []
    for start in range(0, len(texts), step):
        docs += await app.state.batcher.tag(texts[start : start + step])
    return docs


def health_record(app) -> dict[str, Any]:
    """What GET /health answers in Label Studio mode (and GET /)."""
    return {"status": "UP", "model_class": MODEL_CLASS, "model_version": run_name(app)}
