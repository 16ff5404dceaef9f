"""User-facing errors: the CLI prints them as one line, the server turns them into 4xx JSON."""

from __future__ import annotations


class DeepcreamError(Exception):
    """An error caused by the user's input or environment, with a message fit to show as is."""


class InputError(DeepcreamError):
    """Bad input data: unreadable, not an image, wrong size, nothing to do."""


class ModelError(DeepcreamError):
    """A model or checkpoint is missing, corrupt or of the wrong network."""
