"""What the fidesops and fides adapters of fidesmail share: the import hook, the client, the settings, the context.

Each adapter (fidesmail_fidesops, fidesmail_fides) keeps its host's patches and param mappings; see README.md.
"""

from __future__ import annotations

__version__ = "0.1.0"
