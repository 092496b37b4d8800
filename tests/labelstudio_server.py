"""A real Label Studio server for the tests: the `label-studio` package in its own venv (`make label-studio`),
a fresh data folder, a known user and API token, bound to 127.0.0.1."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import REPO, free_ports

LABEL_STUDIO = Path(os.environ.get("NERCTL_LABEL_STUDIO", REPO / ".venv-label-studio" / "bin" / "label-studio"))
START_TIMEOUT_S = 240  # the first start of a data folder runs its migrations (about 35 s on 2 cores)


class LabelStudio:
    """`label-studio start` in a subprocess; `api(method, path, body)` calls its REST API with the token."""

    def __init__(self, data_dir: Path):
        if not LABEL_STUDIO.exists():
            raise RuntimeError(f"{LABEL_STUDIO} is missing: `make label-studio` installs Label Studio's venv")
        (self.port,) = free_ports()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(20)
        self.log = data_dir / "label-studio.log"
        env = {**os.environ,
               # An ML backend on 127.0.0.1 is refused by Label Studio's SSRF guards unless both are off.
               "SSRF_PROTECTION_ENABLED": "false", "ML_BLOCK_LOCAL_IP": "false",
               # Legacy tokens ("Token <hex>") are enabled when the data folder's organisation is created.
               "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true"}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(LABEL_STUDIO), "start", "--no-browser", "--port", str(self.port), "--host", self.url,
                 "--data-dir", str(data_dir / "data"), "--username", "tester@example.com",
                 # hex: a urlsafe token may start with "-", which argparse takes for an option
                 "--password", secrets.token_hex(12), "--user-token", self.token],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"label-studio exited: {self.log.read_text()[-3000:]}")
            try:
                if self.api("GET", "/api/projects")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"label-studio not ready in {START_TIMEOUT_S} s: {self.log.read_text()[-3000:]}")

    def api(self, method: str, path: str, body=None) -> tuple[int, object]:
        """(status, parsed JSON or text) of one REST call."""
        request = urllib.request.Request(self.url + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Token {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
