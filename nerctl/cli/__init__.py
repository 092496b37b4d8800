"""The `nerctl` command line (app.py: the commands; render.py: errors and stdout)."""
from .app import app, main

__all__ = ["app", "main"]
