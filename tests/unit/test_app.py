"""The app's session memory policy, on a real dashboard document."""

from __future__ import annotations

from bokeh.document import Document

from finflow_panel.app import ServeConfig, build_dashboard, trim_document


def _empty(value) -> bool:
    return value in ([], {}) or value == {"type": "map"} or value == {"type": "map", "entries": []}


def _models_by_id(doc_json: dict) -> tuple[list, dict]:
    """The document's roots and every model's attributes, with models as references
    (the serializer defines a model where it first meets it, which may move), and
    without empty lists and dicts (a cached empty default is written out, an uncached
    one is not; BokehJS starts from the same empty value either way)."""
    models = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "id" in node:
                if "name" in node:
                    attributes = {
                        k: walk(v) for k, v in node.get("attributes", {}).items() if not _empty(v)
                    }
                    models[node["id"]] = (node["name"], attributes)
                return {"ref": node["id"]}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(doc_json["roots"]), models


def test_trimming_a_session_document_changes_nothing_it_holds():
    doc = Document()
    build_dashboard(ServeConfig(seed=1)).server_doc(doc)
    ids = {m.id for m in doc.models}
    empties = sum(
        isinstance(v, (list, dict)) and not v
        for m in doc.models
        for v in m._unstable_default_values.values()
    )
    assert empties > len(doc.models)  # Bokeh cached them while collecting models
    before = _models_by_id(doc.to_json(deferred=False))

    trim_document(doc)

    assert not any(
        isinstance(v, (list, dict)) and not v
        for m in doc.models
        for v in m._unstable_default_values.values()
    )
    after = _models_by_id(doc.to_json(deferred=False))
    assert after == before
    assert {m.id for m in doc.models} == ids
