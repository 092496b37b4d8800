"""What the service's routes share: the JSON error shape and the served run's name."""
from __future__ import annotations

from fastapi.responses import JSONResponse

NO_MODEL = "no model yet: the Label Studio backend trains its first once enough tasks are annotated"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every error the service answers: {"error": {"status": N, "message": "..."}}."""
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


def run_name(app) -> str | None:
    """The served run's name (Label Studio's model_version), None before the first."""
    return app.state.run_path.name if app.state.run_path is not None else None
