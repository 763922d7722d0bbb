"""Server plumbing kept apart from the document model (as bokeh keeps ``server/``)."""

from __future__ import annotations

from .admission import SessionAdmission
from .validation import ValidateFirstDocument

__all__ = ["SessionAdmission", "ValidateFirstDocument"]
