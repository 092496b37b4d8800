"""What the service's routes share: the JSON error shape (and its OpenAPI declaration) and the served run's name."""
from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

NO_MODEL = "no model yet: the Label Studio backend trains its first once enough tasks are annotated"

# What every route with a JSON body can answer (the Guard caps the body; FastAPI parses and validates it).
BODY_ERRORS = {400: "The body cannot be parsed: invalid JSON, not UTF-8, or a lone surrogate escape (no Unicode).",
               413: "The body is over --max-body-bytes.",
               422: "Valid JSON of the wrong shape; the message names the field."}
INTERNAL_ERROR = {500: "Something unexpected; the message names the exception (never a traceback)."}


class ErrorDetail(BaseModel):
    status: int = Field(description="The HTTP status, again.")
    message: str = Field(description='What is wrong, naming the field when there is one ("texts.0: ...").')


class ErrorBody(BaseModel):
    """Every error the service answers."""

    error: ErrorDetail


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every error the service answers: {"error": {"status": N, "message": "..."}}."""
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


def error_responses(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses, each the JSON error body with its one-line description
    (a 422 among them replaces FastAPI's HTTPValidationError, a shape the service never answers)."""
    return {status: {"model": ErrorBody, "description": text} for status, text in described.items()}


def run_name(app) -> str | None:
    """The served run's name (Label Studio's model_version), None before the first."""
    return app.state.run_path.name if app.state.run_path is not None else None
