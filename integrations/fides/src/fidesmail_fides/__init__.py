"""Send every fides email through the fidesmail sidecar, with no change to fides' code.

Installed with pip, `fidesmail_fides.pth` calls `install()` at interpreter start when
FIDESMAIL_URL or FIDESMAIL_TOKEN is set; with neither, nothing of this package is even imported.
"""

from __future__ import annotations

__version__ = "0.1.0"


def install(environ=None) -> None:
    """Read the settings and hook fides' messaging modules (those already imported are patched now)."""
    from . import dispatch, hook, patches

    dispatch.configure(environ)
    hook.install(patches.PATCHES)
