"""The import hook: patch a host's modules (fidesops', fides') the moment each has executed, before anyone imports
from it.

The hosts import their dispatch function by name into several modules (`from ...dispatch_service import
dispatch_...`). Each of those copies is taken when that module runs, so the function must be replaced inside
its own module before any other module gets to it: right after that module's code has executed, from inside
the import system. A finder on sys.meta_path wraps the loader of the few modules named; nothing else is
touched, and nothing is imported early.
"""

from __future__ import annotations

import importlib.machinery
import logging
import sys
import threading
from types import ModuleType
from typing import Callable, Dict

Patches = Dict[str, Callable[[ModuleType], None]]


class _PatchingLoader:
    """Delegates to the real loader; after the module executes, runs its patch."""

    def __init__(self, loader, patch: Callable[[ModuleType], None], hook: ImportHook):
        self._loader = loader
        self._patch = patch
        self._hook = hook

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._hook.apply(self._patch, module)

    def __getattr__(self, name):  # get_source, get_filename, get_resource_reader, ...
        return getattr(self._loader, name)


class _PatchingFinder:
    """A sys.meta_path finder that only answers for the modules it patches."""

    def __init__(self, patches: Patches, hook: ImportHook):
        self.patches = dict(patches)
        self._hook = hook

    def find_spec(self, fullname, path, target=None):
        patch = self.patches.get(fullname)
        if patch is None:
            return None
        spec = self._real_spec(fullname, path, target)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader, patch, self._hook)
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


class ImportHook:
    """One adapter's finder: `install(patches)` puts it first on sys.meta_path, `uninstall()` takes it off.

    `adapter` names the adapter in its log lines; `unpatched` says what the host does when a patch fails
    (e.g. "fides sends its messages itself")."""

    def __init__(self, adapter: str, unpatched: str):
        self.log = logging.getLogger(adapter)
        self._adapter = adapter
        self._unpatched = unpatched
        self._lock = threading.Lock()
        self._finder: _PatchingFinder | None = None

    def apply(self, patch: Callable[[ModuleType], None], module: ModuleType) -> None:
        # A patch that fails must not stop the host from starting; it says so and the host runs unpatched.
        try:
            patch(module)
        except Exception:
            self.log.exception("%s could not patch %s; %s", self._adapter, module.__name__, self._unpatched)

    def install(self, patches: Patches) -> None:
        """Put the finder first on sys.meta_path (once); modules already imported are patched now."""
        with self._lock:
            if self._finder is None:
                self._finder = _PatchingFinder(patches, self)
                sys.meta_path.insert(0, self._finder)
            else:
                self._finder.patches.update(patches)
        for name, patch in patches.items():
            module = sys.modules.get(name)
            if module is not None:
                self.apply(patch, module)

    def uninstall(self) -> None:
        """Take the finder off sys.meta_path (tests); patched modules stay patched."""
        with self._lock:
            if self._finder is not None and self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)
            self._finder = None
