"""The browser views' code: the bundle a served page loads is the code in components.py."""

from __future__ import annotations

import json
import textwrap

from finflow_panel.ui import components


def test_the_bundle_is_generated_from_the_views_current_code():
    # components.bundle.js is what served pages run; each class's _render is what
    # Jupyter and --dev run. `make bundle` regenerates the file after an edit.
    assert components.BUNDLE.read_text(encoding="utf-8") == components.bundle_source(), (
        "components.bundle.js is stale: run `make bundle`"
    )


def test_every_view_is_in_the_bundle_under_its_class_name():
    source = components.bundle_source()
    exported = source.rsplit("export default", 1)[1]
    for view in (components.KpiCards, components.HoldingsTable, components.Diagnostics,
                 components.ConnectionStatus):  # fmt: skip
        assert view._bundle_path == components.BUNDLE
        assert f"const {view.__name__} = " in source and view.__name__ in exported
        assert view._esm.rstrip().endswith("export { styledRender as render }")
        # its style travels in the module, not in every session's document
        assert view._css.strip() and json.dumps(textwrap.dedent(view._css)) in source
        assert not view._stylesheets
