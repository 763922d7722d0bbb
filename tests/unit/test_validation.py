"""The server checks an app's first document, as Bokeh would have checked each one."""

from __future__ import annotations

import logging

from bokeh.document import Document
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from finflow_panel.server import ValidateFirstDocument


def _document_with_a_missing_column() -> Document:
    fig = figure()
    fig.line("x", "no_such_column", source=ColumnDataSource({"x": [1, 2]}))
    doc = Document()
    doc.add_root(fig)
    return doc


def test_the_first_document_is_validated_and_its_problems_logged(caplog):
    handler = ValidateFirstDocument()
    with caplog.at_level(logging.ERROR, logger="bokeh"):
        handler.modify_document(_document_with_a_missing_column())
    assert "no_such_column" in caplog.text and "BAD_COLUMN_NAME" in caplog.text
    assert handler.validated


def test_later_documents_of_the_app_are_not_checked_again(caplog):
    handler = ValidateFirstDocument()
    handler.modify_document(Document())
    with caplog.at_level(logging.ERROR, logger="bokeh"):
        handler.modify_document(_document_with_a_missing_column())
    assert caplog.text == ""
