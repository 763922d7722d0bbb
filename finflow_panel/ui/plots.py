"""Static Bokeh plots for analysts (notebooks, reports)."""

from __future__ import annotations

import pandas as pd
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from .charts import add_symbol_lines

__all__ = ["price_paths_figure"]


def price_paths_figure(prices: pd.DataFrame, title: str = "Prices", height: int = 350):
    """One line per column of a time-indexed price table; legend entries hide lines."""
    fig = figure(
        title=title,
        x_axis_type="datetime",
        height=height,
        sizing_mode="stretch_width",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    names = [str(column) for column in prices.columns]
    x = "__time__"  # not a name a price column can clash with in practice
    source = ColumnDataSource(
        {x: prices.index, **dict(zip(names, prices.to_numpy().T, strict=True))}
    )
    add_symbol_lines(fig, source, x, names, time_format="%F")
    fig.yaxis.axis_label = "Price"
    return fig
