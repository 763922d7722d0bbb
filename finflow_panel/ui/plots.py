"""Static Bokeh plots for analysts (notebooks, reports)."""

from __future__ import annotations

import pandas as pd
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from .charts import finish_symbol_lines

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
    lines = [
        fig.line(
            prices.index,
            prices[column].to_numpy(),
            color=Category10_10[i % 10],
            line_width=1.6,
            legend_label=str(column),
            name=str(column),
        )
        for i, column in enumerate(prices.columns)
    ]
    finish_symbol_lines(fig, lines, time_format="%F")
    fig.yaxis.axis_label = "Price"
    return fig
