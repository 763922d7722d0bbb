"""The what-if explorer (``/explore``, or in a notebook): a portfolio's Monte Carlo future
under the assumptions a user dials in, recomputed as they change.

The simulation (`finflow_panel.model.whatif.what_if`) takes ~0.2 s for 10,000 paths of a
year. On a server it never runs on the event loop every session shares: it runs in one
process-wide worker thread (so explorers queue instead of piling onto the cores), at
most one run per page at a time, and a change made meanwhile is computed once, with the
newest settings, when the run ends.
"""

from __future__ import annotations

import html
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, NumeralTickFormatter, Span
from bokeh.plotting import figure

from ..model import Portfolio
from ..model.history import Calibration
from ..model.whatif import BAND_PERCENTILES, MAX_WORK, WhatIf, what_if

__all__ = ["WhatIfExplorer"]

log = logging.getLogger(__name__)

#: One what-if at a time per process: each already uses both cores (two threads).
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finflow-whatif")
_PATH_CHOICES = [1_000, 2_000, 5_000, 10_000, 20_000]
_BINS = 60

_STATS_CSS = """
.ff-stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr));
            gap: 10px; font-family: system-ui, sans-serif; }
.ff-stat { background: #fff; border-radius: 10px; padding: 10px 14px;
           box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.ff-stat b { display: block; font-size: 12px; text-transform: uppercase; color: #6b7280;
             letter-spacing: .04em; font-weight: 600; }
.ff-stat span { font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
.ff-stat small { font-size: 14px; color: #6b7280; font-weight: 600; }
.ff-note { color: #6b7280; font: 13px system-ui, sans-serif; }
.ff-error { color: #b91c1c; font: 600 14px system-ui, sans-serif; }
"""


@dataclass(frozen=True)
class _Settings:  # what_if's keyword arguments, as the controls set them
    horizon: int
    paths: int
    drift_scale: float
    volatility_scale: float
    correlation: float | None
    confidence: float
    seed: int


class WhatIfExplorer(pn.viewable.Viewer):
    """Monte Carlo what-ifs of a portfolio: a fan chart of percentile bands of its value,
    the distribution of final values, VaR and expected shortfall.

    Parameters
    ----------
    portfolio : Portfolio
        What is valued (default: the sample).
    calibration : Calibration, optional
        Drift, volatility and correlation estimated from a price history
        (`finflow_panel.calibrate`); the holdings' own parameters otherwise.
    start_prices : array-like, optional
        Where the paths start (e.g. the live market's prices); the holdings' reference
        prices otherwise.
    """

    horizon = param.Integer(default=252, bounds=(1, 1260), doc="Trading days simulated.")
    paths = param.Integer(default=10_000, bounds=(100, 20_000), doc="Simulated futures.")
    drift_scale = param.Number(default=1.0, bounds=(-3.0, 3.0), doc="Multiplies every drift.")
    volatility_scale = param.Number(
        default=1.0, bounds=(0.1, 3.0), doc="Multiplies every volatility."
    )
    correlation = param.Number(
        default=None,
        allow_None=True,
        bounds=(-1.0, 0.99),
        doc="Every pair's correlation, overriding the estimate (None: as estimated).",
    )
    confidence = param.Number(default=0.99, bounds=(0.8, 0.999), doc="VaR and ES confidence.")
    seed = param.Integer(default=1, bounds=(0, 2**32 - 1), doc="Same seed, same paths.")
    result = param.ClassSelector(class_=WhatIf, default=None, doc="The newest run's result.")
    error = param.String(default="", doc="Why the newest settings could not be run.")

    def __init__(
        self,
        portfolio: Portfolio | None = None,
        calibration: Calibration | None = None,
        start_prices=None,
        **params,
    ):
        super().__init__(**params)
        self.portfolio = portfolio or Portfolio.sample()
        self.calibration = calibration
        self.start_prices = (
            self.portfolio.reference_prices
            if start_prices is None
            else np.asarray(start_prices, dtype=float)
        )
        self._doc = pn.state.curdoc
        self._served = self._doc is not None and self._doc.session_context is not None
        self._running = False
        self._again = False
        self.compute_ms = float("nan")
        self._bands = ColumnDataSource({"step": [], **{f"p{p}": [] for p in BAND_PERCENTILES}})
        self._hist = ColumnDataSource({"left": [], "right": [], "count": [], "color": []})
        self._layout = self._build()
        self.param.watch(
            self._schedule,
            ["horizon", "paths", "drift_scale", "volatility_scale", "correlation",
             "confidence", "seed"],
        )  # fmt: skip
        if self._served:
            pn.state.onload(self._schedule)
        else:
            self._schedule()

    def __panel__(self):
        return self._layout

    # -- the page -------------------------------------------------------------------------

    def _widget(self, widget, name: str, to_param=lambda v: v, from_param=lambda v: v):
        """``widget`` drives parameter ``name``; a value the parameter refuses (a
        browser can send anything) is logged and set back."""
        widget.value = from_param(getattr(self, name))

        def changed(event):
            try:
                setattr(self, name, to_param(event.new))
            except (TypeError, ValueError) as error:
                log.warning("refused what-if %s=%r from a browser: %s", name, event.new, error)
                event.obj.value = from_param(getattr(self, name))

        widget.param.watch(changed, "value_throttled" if hasattr(widget, "value_throttled")
                           else "value")  # fmt: skip
        # And the other way: a notebook's ``explorer.paths = 5_000`` moves the widget.
        self.param.watch(lambda event: setattr(widget, "value", from_param(event.new)), name)
        return widget

    def _build(self):
        horizon = self._widget(pn.widgets.IntSlider(label="Horizon (trading days)", start=5,
                                                    end=1260, step=5), "horizon")  # fmt: skip
        paths = self._widget(
            pn.widgets.Select(label="Paths", options=_PATH_CHOICES), "paths", int, int
        )
        drift = self._widget(
            pn.widgets.FloatSlider(label="Drift x", start=-3.0, end=3.0, step=0.1), "drift_scale"
        )
        volatility = self._widget(
            pn.widgets.FloatSlider(label="Volatility x", start=0.1, end=3.0, step=0.1),
            "volatility_scale",
        )
        override = pn.widgets.Checkbox(label="Override correlation", value=False)
        rho = pn.widgets.FloatSlider(
            label="Correlation (every pair)", start=-0.2, end=0.95, step=0.05, value=0.3,
            disabled=True,
        )  # fmt: skip

        syncing = []  # non-empty while the widgets follow the parameter

        def correlation_changed(event):
            rho.disabled = not override.value
            if syncing:
                return
            value = event.new if event.obj is rho else rho.value
            try:
                self.correlation = float(value) if override.value else None
            except (TypeError, ValueError) as error:
                log.warning("refused what-if correlation %r: %s", value, error)
                rho.value = 0.3

        override.param.watch(correlation_changed, "value")
        rho.param.watch(correlation_changed, "value_throttled")

        def correlation_set(event):
            syncing.append(True)
            try:
                if event.new is not None:
                    rho.value = min(max(event.new, rho.start), rho.end)
                override.value = event.new is not None
            finally:
                syncing.clear()

        self.param.watch(correlation_set, "correlation")
        confidence = self._widget(
            pn.widgets.FloatSlider(label="Confidence", start=0.8, end=0.999, step=0.001),
            "confidence",
        )
        seed = self._widget(pn.widgets.IntInput(label="Seed", start=0, end=2**32 - 1), "seed")
        self._controls = pn.Column(
            horizon, paths, drift, volatility, override, rho, confidence, seed, width=280
        )
        self._stats = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[_STATS_CSS])
        fan = figure(
            title="Portfolio value: 5-95% and 25-75% of paths, and the median",
            height=340, sizing_mode="stretch_width", tools="pan,wheel_zoom,box_zoom,reset,save",
            x_axis_label="Trading days ahead", y_axis_label="Value ($)",
        )  # fmt: skip
        fan.varea("step", "p5", "p95", source=self._bands, color="#93c5fd", alpha=0.5,
                  legend_label="5-95%")  # fmt: skip
        fan.varea("step", "p25", "p75", source=self._bands, color="#3b82f6", alpha=0.5,
                  legend_label="25-75%")  # fmt: skip
        fan.line("step", "p50", source=self._bands, color="#1e3a8a", line_width=2,
                 legend_label="median", name="median")  # fmt: skip
        fan.yaxis.formatter = NumeralTickFormatter(format="$0,0")
        fan.legend.location = "top_left"
        self._start_line = Span(dimension="width", line_dash="dashed", line_color="#6b7280")
        fan.add_layout(self._start_line)
        hist = figure(
            title="Final value: paths per bin (red: losses beyond VaR)",
            height=340, sizing_mode="stretch_width", tools="pan,wheel_zoom,box_zoom,reset,save",
            x_axis_label="Value at the horizon ($)", y_axis_label="Paths",
        )  # fmt: skip
        hist.quad(left="left", right="right", bottom=0, top="count", color="color",
                  source=self._hist, line_color="white", name="final")  # fmt: skip
        hist.xaxis.formatter = NumeralTickFormatter(format="$0,0")
        self._var_line = Span(dimension="height", line_color="#b91c1c", line_width=2)
        hist.add_layout(self._var_line)
        self._figures = (fan, hist)
        heading = pn.pane.HTML(
            f"<h2 style='margin:0;font-family:system-ui'>What if? &middot; "
            f"{self.portfolio.name}</h2>",
            sizing_mode="stretch_width",
        )
        charts = pn.Row(
            pn.pane.Bokeh(fan, sizing_mode="stretch_width"),
            pn.pane.Bokeh(hist, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        return pn.Row(
            self._controls,
            pn.Column(heading, self._stats, charts, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    # -- computing ------------------------------------------------------------------------

    def _settings(self) -> _Settings:
        return _Settings(self.horizon, self.paths, self.drift_scale, self.volatility_scale,
                         self.correlation, self.confidence, self.seed)  # fmt: skip

    def _run(self, settings: _Settings) -> tuple[WhatIf | None, str, float]:
        started = time.perf_counter()
        try:
            result = what_if(
                self.portfolio,
                **asdict(settings),
                calibration=self.calibration,
                start_prices=self.start_prices,
            )
        except ValueError as error:
            return None, str(error), 0.0
        return result, "", (time.perf_counter() - started) * 1000.0

    def _schedule(self, *_events) -> None:
        """Recompute for the current settings: at once in a notebook; on a server in the
        worker thread, coalescing changes made while a run is going."""
        if not self._served:
            self._show(*self._run(self._settings()))
            return
        if self._running:
            self._again = True
            return
        self._running, self._again = True, False
        self._stats.object = self._stats_html(computing=True)
        future = _WORKER.submit(self._run, self._settings())
        future.add_done_callback(
            lambda done: self._doc.add_next_tick_callback(partial(self._finished, done))
        )

    def _finished(self, done) -> None:
        self._running = False
        if self._doc.session_context is None or self._doc.session_context.destroyed:
            return
        try:
            outcome = done.result()
        except Exception:  # a bug, not bad settings: say so on the page, keep serving
            log.exception("a what-if run failed")
            outcome = (None, "the simulation failed (see the server's log)", 0.0)
        if self._again:  # the settings changed meanwhile: their run replaces this one
            self._schedule()
            return
        with pn.io.hold(self._doc):
            self._show(*outcome)

    def _show(self, result: WhatIf | None, error: str, elapsed_ms: float) -> None:
        self.error = error
        if result is None:
            self._stats.object = self._stats_html()
            return
        self.compute_ms = elapsed_ms
        self.result = result
        bands = result.bands
        self._bands.data = {"step": bands.index.to_numpy(),
                            **{c: bands[c].to_numpy() for c in bands.columns}}  # fmt: skip
        counts, edges = np.histogram(result.final, bins=_BINS)
        threshold = result.start_value - result.var
        colors = np.where(edges[1:] <= threshold, "#ef4444", "#60a5fa")
        self._hist.data = {"left": edges[:-1], "right": edges[1:], "count": counts,
                           "color": colors}  # fmt: skip
        self._start_line.location = result.start_value
        self._var_line.location = threshold
        self._stats.object = self._stats_html()

    def _stats_html(self, computing: bool = False) -> str:
        result = self.result
        if self.error:
            return f'<div class="ff-error">{html.escape(self.error)}</div>'
        if result is None:
            return '<div class="ff-note">Computing&hellip;</div>'
        s = result.summary()
        level = f"{result.confidence * 100:g}%"
        cards = [
            ("Value today", f"${s['start_value']:,.0f}"),
            ("Median at horizon", f"${s['median_final']:,.0f}"),
            (f"VaR {level}", f"${s['var']:,.0f} <small>{s['var_percent']:.1f}%</small>"),
            (f"ES {level}", f"${s['expected_shortfall']:,.0f} "
                            f"<small>{s['expected_shortfall_percent']:.1f}%</small>"),
            ("Chance of a loss", f"{s['probability_of_loss'] * 100:.1f}%"),
        ]  # fmt: skip
        body = "".join(f'<div class="ff-stat"><b>{k}</b><span>{v}</span></div>' for k, v in cards)
        note = (
            f"{result.paths:,} paths &times; {result.horizon:,} days"
            + (f", computed in {self.compute_ms:.0f} ms" if np.isfinite(self.compute_ms) else "")
            + (" &middot; recomputing&hellip;" if computing else "")
            + f" &middot; at most {MAX_WORK / 1e6:.0f} million draws a run"
        )
        return f'<div class="ff-stats">{body}</div><div class="ff-note">{note}</div>'
