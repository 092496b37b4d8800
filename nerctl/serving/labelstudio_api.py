"""The few calls the backend makes to Label Studio's REST API: a project's annotated tasks.

The key comes from LABEL_STUDIO_API_KEY or a file, never from a request, and
is never logged. Label Studio has two kinds: a legacy token (40 hex digits,
sent as `Authorization: Token KEY`) and a personal access token (a JWT refresh
token, exchanged at /api/token/refresh/ for an access token that lives 5
minutes, sent as `Bearer`).
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import InputError, NerctlError

URL_ENV, KEY_ENV = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"
ACCESS_LIFETIME_S = 240  # refresh a personal access token's access token before its 5 minutes are up
TIMEOUT_S = 120


def read_key(path: str | Path | None) -> str | None:
    """The Label Studio API key: the file's first line, else LABEL_STUDIO_API_KEY, else None."""
    if path is None:
        return os.environ.get(KEY_ENV) or None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the Label Studio API key ({err.__class__.__name__})") from None
    if not lines or not lines[0].strip():
        raise InputError(f"{path}: the Label Studio API key file is empty")
    return lines[0].strip()


@dataclass
class LabelStudioClient:
    url: str | None  # Label Studio's base URL (LABEL_STUDIO_URL, else the hostname /setup sends)
    key: str | None = field(default=None, repr=False)
    _access: tuple[str, float] | None = field(default=None, repr=False)  # a PAT's access token and its birth

    def export(self, project: str) -> str:
        """The project's annotated tasks as Label Studio's JSON export (text)."""
        if not self.url or not self.key:
            raise InputError(f"training needs Label Studio's address and an API key: set {URL_ENV} and {KEY_ENV} "
                             "(or --label-studio-key-file)")
        return self._get(f"/api/projects/{int(project)}/export?exportType=JSON")

    def _get(self, path: str) -> str:
        request = urllib.request.Request(self.url.rstrip("/") + path, headers={"Authorization": self._authorization()})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return response.read().decode("utf-8")
        except urllib.error.HTTPError as err:
            raise NerctlError(f"Label Studio answered {err.code} to GET {path}"
                              + (" (is the API key right?)" if err.code in (401, 403) else "")) from None
        except OSError as err:
            raise NerctlError(f"cannot reach Label Studio at {self.url}: {err}") from None

    def _authorization(self) -> str:
        if self.key.count(".") != 2:  # not a JWT: a legacy token
            return f"Token {self.key}"
        if self._access is None or time.monotonic() - self._access[1] > ACCESS_LIFETIME_S:
            body = json.dumps({"refresh": self.key}).encode()
            request = urllib.request.Request(self.url.rstrip("/") + "/api/token/refresh/", data=body,
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                    self._access = (json.loads(response.read())["access"], time.monotonic())
            except (OSError, ValueError, KeyError) as err:
                raise NerctlError(f"Label Studio refused to refresh the personal access token ({err})") from None
        return f"Bearer {self._access[0]}"
