"""How views and commands find the long-lived objects: the app's extension, put there by the composition root.

runtime/services.py builds them and attaches them to the app; everything above the domain reads them
through here, so nothing but the entry points imports the composition root.
"""

from __future__ import annotations

from flask import Flask, current_app

EXTENSION = "fidesmail"


def current():
    """The long-lived objects (runtime.services.Services) of the app serving this request or command."""
    return current_app.extensions[EXTENSION]


def of(app: Flask):
    """The long-lived objects of `app`."""
    return app.extensions[EXTENSION]
