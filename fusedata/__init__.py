"""fusedata: FuseChat-3.0 style preference data construction."""

__version__ = "0.1.0"
