"""The import hook: patch fides' modules the moment each one has executed, before anyone imports from it.

fides imports `dispatch_message` (and its task) by name into several modules (`from
...message_dispatch_service import dispatch_message`). Each of those copies is taken when that
module runs, so the function must be replaced inside message_dispatch_service before any other
module gets to it: right after
that module's own code has executed, from inside the import system. A finder on sys.meta_path
wraps the loader of the few modules below; nothing else is touched, and nothing is imported early.
"""

from __future__ import annotations

import importlib.machinery
import logging
import sys
import threading
from types import ModuleType
from typing import Callable

log = logging.getLogger("fidesmail_fides")

_lock = threading.Lock()
_finder: _PatchingFinder | None = None


class _PatchingLoader:
    """Delegates to the real loader; after the module executes, runs its patch."""

    def __init__(self, loader, patch: Callable[[ModuleType], None]):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _apply(self._patch, module)

    def __getattr__(self, name):  # get_source, get_filename, get_resource_reader, ...
        return getattr(self._loader, name)


class _PatchingFinder:
    """A sys.meta_path finder that only answers for the modules it patches."""

    def __init__(self, patches: dict[str, Callable[[ModuleType], None]]):
        self.patches = dict(patches)

    def find_spec(self, fullname, path, target=None):
        patch = self.patches.get(fullname)
        if patch is None:
            return None
        spec = self._real_spec(fullname, path, target)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader, patch)
        return spec

    def _real_spec(self, fullname, path, target):
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, _PatchingFinder):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return importlib.machinery.PathFinder.find_spec(fullname, path, target)

    def invalidate_caches(self) -> None:
        pass


def _apply(patch: Callable[[ModuleType], None], module: ModuleType) -> None:
    # A patch that fails must not stop fides from starting; it says so and fides runs unpatched.
    try:
        patch(module)
    except Exception:
        log.exception("fidesmail_fides could not patch %s; fides sends its messages itself", module.__name__)


def install(patches: dict[str, Callable[[ModuleType], None]]) -> None:
    """Put the finder first on sys.meta_path (once); modules already imported are patched now."""
    global _finder
    with _lock:
        if _finder is None:
            _finder = _PatchingFinder(patches)
            sys.meta_path.insert(0, _finder)
        else:
            _finder.patches.update(patches)
    for name, patch in patches.items():
        module = sys.modules.get(name)
        if module is not None:
            _apply(patch, module)


def uninstall() -> None:
    """Take the finder off sys.meta_path (tests); patched modules stay patched."""
    global _finder
    with _lock:
        if _finder is not None and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        _finder = None
