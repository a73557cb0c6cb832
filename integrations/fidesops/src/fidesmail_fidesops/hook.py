"""fidesops' import hook: fidesmail_sidecar.hook's finder (shared with the fides adapter), for fidesops' modules.

fidesops imports `dispatch_email` by name into several modules, so the function is replaced inside
email_dispatch_service right after that module has executed, before any other module copies it
(fidesmail_sidecar/hook.py says how). A patch that fails is logged, and fidesops sends email itself.
"""

from __future__ import annotations

from fidesmail_sidecar.hook import ImportHook

_hook = ImportHook("fidesmail_fidesops", "fidesops sends email itself")
install = _hook.install
uninstall = _hook.uninstall
