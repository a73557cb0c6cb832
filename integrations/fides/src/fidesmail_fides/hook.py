"""fides' import hook: fidesmail_sidecar.hook's finder (shared with the fidesops adapter), for fides' modules.

fides imports `dispatch_message` (and its task) by name into several modules, so the function is replaced
inside message_dispatch_service right after that module has executed, before any other module copies it
(fidesmail_sidecar/hook.py says how). A patch that fails is logged, and fides sends its messages itself.
"""

from __future__ import annotations

from fidesmail_sidecar.hook import ImportHook

_hook = ImportHook("fidesmail_fides", "fides sends its messages itself")
install = _hook.install
uninstall = _hook.uninstall
