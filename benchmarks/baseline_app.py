"""Baseline for bench_fanout.py: the pattern the Panel docs show.

Every session has its own ``pn.state.add_periodic_callback`` that steps its own random
walk and streams one row into its own ColumnDataSource. Rows carry ``time`` and ``seq``
like the real dashboard, so the same protocol client measures both.
Run: panel serve benchmarks/baseline_app.py
"""

import time

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from finflow_panel import Portfolio

portfolio = Portfolio.sample()
walk = portfolio.random_walk(seed=1)
source = ColumnDataSource(
    {"time": np.zeros(0), "seq": np.zeros(0, np.int32), "total_value": np.zeros(0)}
)
fig = figure(x_axis_type="datetime", height=300, sizing_mode="stretch_width")
fig.line("time", "total_value", source=source)
value = pn.indicators.Number(name="Total value", value=0.0, format="${value:,.2f}")
state = {"seq": 0}


def update():
    prices = walk.step(1)
    total = prices @ portfolio.quantities
    source.stream(
        {
            "time": np.array([time.time() * 1000.0]),
            "seq": np.array([state["seq"]], np.int32),
            "total_value": total,
        },
        rollover=2000,
    )
    value.value = float(total[0])
    state["seq"] += 1


pn.state.add_periodic_callback(update, period=1000)
pn.Column(value, pn.pane.Bokeh(fig)).servable()
