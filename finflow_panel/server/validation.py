"""Check an application's first document, not every session's copy of it."""

from __future__ import annotations

from bokeh.application.handlers.handler import Handler

__all__ = ["ValidateFirstDocument"]


class ValidateFirstDocument(Handler):
    """A Bokeh application handler that validates the first document the app builds.

    Bokeh runs its integrity checks (columns a glyph names exist in its source, ranges,
    layouts...) on every new session's document, some 7% of the server CPU to open a
    dashboard. Every document of an app here is built by the same code from the same
    process-wide portfolio, so the first one's check holds for all of them; the server
    turns Bokeh's per-session check off (``perform_document_validation``) and adds this
    handler last, after the documents are complete. Problems are logged as Bokeh logs them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.validated = False

    def modify_document(self, doc) -> None:
        if not self.validated:
            self.validated = True
            doc.validate()
