"""Reference page for bench_sessions.py: a minimal Panel template page with one figure.

A BootstrapTemplate with a Markdown heading, Start/Stop buttons and one 3-line Bokeh
figure over 200 rows: what opening the dashboard is compared with.
Run: panel serve benchmarks/reference_page.py
"""

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

rng = np.random.default_rng(1)
rows = 200
source = ColumnDataSource(
    {
        "time": np.arange(rows) * 1000.0,
        "seq": np.arange(rows),
        **{name: 100 + rng.standard_normal(rows).cumsum() for name in ("a", "b", "c")},
    }
)
fig = figure(x_axis_type="datetime", height=300, sizing_mode="stretch_width")
for name, color in zip(("a", "b", "c"), ("#1f77b4", "#ff7f0e", "#2ca02c"), strict=True):
    fig.line("time", name, source=source, color=color)
pn.template.BootstrapTemplate(
    title="Reference",
    main=[
        pn.pane.Markdown("## Reference page"),
        pn.Row(pn.widgets.Button(label="Start"), pn.widgets.Button(label="Stop")),
        pn.pane.Bokeh(fig, sizing_mode="stretch_width"),
    ],
).servable()
