"""mmsegmentation's necks (between backbone and decode head), by the names mmseg's configs give them."""

from .jpu import JPU

NECKS = {"JPU": JPU}

__all__ = ["JPU", "NECKS"]
