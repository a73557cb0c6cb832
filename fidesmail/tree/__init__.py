"""The config tree: files in, an immutable Snapshot out, kept current across every worker."""
