"""`nerctl serve`'s settings: each field declares its option once (flag, default, limits, help).

Kept apart from the app so that the command line builds its options without
importing FastAPI.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import check_options, option
from ..core.choices import PRECISIONS
from ..core.errors import InputError
from ..inference.engines import BACKENDS, PRECISION_HELP, backend_help, min_score_option

API_KEY_ENV = "NERCTL_API_KEY"


@dataclass
class ServeSettings:
    """Where and how the service listens, its limits, and the engine it tags with."""

    run: str | None  # the run directory (resolved); None: --label-studio before its first version
    host: str = option("127.0.0.1", "Address to listen on; 0.0.0.0 to accept other machines.", env=False)
    port: int = option(8080, "Port to listen on.", ge=0, le=65535, env=False)
    workers: int = option(1, "Worker processes, each with its own copy of the model.", ge=1, env=False)
    max_batch: int = option(64, "Texts per model call: concurrent requests are tagged together.", ge=1, env=False)
    max_wait_ms: float = option(5.0, "How long a request waits for others to share its batch.", ge=0, env=False)
    max_queue: int = option(1024, "Texts waiting for a batch, per worker; beyond, 503 with Retry-After.", ge=1,
                            env=False)
    max_texts: int = option(256, "Texts per request; beyond, 413.", ge=1, env=False)
    max_body_bytes: int = option(1 << 20, "Request body size; beyond, 413.", ge=1, env=False)
    max_words: int = option(0, "Words per text; beyond, 413 (0: no limit; long texts are windowed as in predict, "
                            "memory stays bounded).", ge=0, env=False)
    cors_origins: list[str] = option([], "Allow browsers from this origin (repeatable); CORS is off without it.",
                                     flag="--cors-origin", env=False)
    backend: str = option("auto", backend_help(), choices=BACKENDS, env=False)
    precision: str = option("auto", PRECISION_HELP, choices=PRECISIONS, env=False)
    min_score: float = min_score_option()  # a request's "min_score" overrides it
    label_studio: bool = option(False, "Also answer as a Label Studio ML backend: /setup, /predict, /versions, "
                                "and /health in its shape (docs/labelstudio.md).", flag="--label-studio", env=False)
    train_every: int = option(1, "With --label-studio: train a new version every N annotation events (Label Studio's "
                              "START_TRAINING always trains).", ge=1, env=False)
    train_config: str | None = option(None, "With --label-studio and no run yet: the TOML config (as `nerctl "
                                      "train --config`) the first version trains with [default: train's defaults].",
                                      env=False)
    min_annotations: int = option(10, "With --label-studio: annotated tasks needed before a version is trained.",
                                  ge=2, env=False)
    api_key: str | None = field(default=None, repr=False)  # from --api-key-file or NERCTL_API_KEY; never logged
    # From --label-studio-key-file or LABEL_STUDIO_API_KEY: how the backend pulls annotations; never logged.
    label_studio_key: str | None = field(default=None, repr=False)

    def check(self) -> "ServeSettings":
        check_options(self, lambda f: (f.metadata["flag"] or "--" + f.name.replace("_", "-")))
        if self.api_key is not None and not self.api_key:
            raise InputError("the API key is empty")
        if self.run is None and not self.label_studio:
            raise InputError("no run to serve; train one, or give --label-studio to train the first from annotations")
        if self.label_studio and self.workers > 1:
            raise InputError("--label-studio trains new versions in one process: give --workers 1")
        return self


def read_api_key(path: str | Path | None) -> str | None:
    """The bearer token from --api-key-file (first line), else NERCTL_API_KEY, else None (no auth)."""
    if path is None:
        return os.environ.get(API_KEY_ENV) or None
    try:
        key = Path(path).read_text(encoding="utf-8").splitlines()[0].strip() if Path(path).stat().st_size else ""
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the API key ({err.__class__.__name__})") from None
    if not key:
        raise InputError(f"{path}: the API key file is empty")
    return key
