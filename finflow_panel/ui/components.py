"""Browser-side views derived from the session's chart source.

The server streams one thing per update: new rows of the chart's ColumnDataSource. The
KPI cards, the holdings table and the diagnostics are computed in the browser from those
rows (ESM shipped with the page, no CDN), so an update costs the server one event in one
PATCH-DOC message however many views show it, and nothing travels back. These views find
the source by its id in their own Bokeh document and listen to its ``streaming`` signal.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import param
from panel.custom import JSComponent

__all__ = ["ConnectionStatus", "Diagnostics", "HoldingsTable", "KpiCards"]

# Shared by the views: find the source, format numbers, compute the newest valuation.
_PRELUDE = """
const fmt = (x, digits = 2) => Number(x).toLocaleString("en-US", {
  minimumFractionDigits: digits, maximumFractionDigits: digits})
const sign = (x) => x > 0 ? "+" : (x < 0 ? "\\u2212" : "")
const signed = (x, digits = 2) => sign(x) + fmt(Math.abs(x), digits)
const tone = (x) => x > 0 ? "ff-up" : (x < 0 ? "ff-down" : "")

// A view's style, in the module (cached with it) rather than in every session's
// document: one constructed stylesheet per view class, adopted by each view's shadow root.
const SHEETS = new Map()
function styled(css, render) {
  return (props) => {
    let sheet = SHEETS.get(css)
    if (sheet == null) {
      sheet = new CSSStyleSheet()
      sheet.replaceSync(css)
      SHEETS.set(css, sheet)
    }
    const root = props.view.shadow_el ?? props.el.getRootNode()
    if (root.adoptedStyleSheets != null && !root.adoptedStyleSheets.includes(sheet)) {
      root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet]
    }
    return render(props)
  }
}

function follow(model, view, draw) {
  const source = view.model.document.get_model_by_id(model.source_id)
  if (source == null) { return null }
  const redraw = () => draw(source)
  source.streaming.connect(redraw)
  source.change.connect(redraw)
  model.on(["reference", "quantities", "symbols"], redraw)
  redraw()
  return source
}

function valuation(model, source) {
  const data = source.data
  const n = data.time.length
  const quantities = model.quantities, reference = model.reference
  const prices = model.symbols.map((s, i) => n > 0 ? data[s][n - 1] : reference[i])
  const values = prices.map((p, i) => p * quantities[i])
  const total = values.reduce((a, b) => a + b, 0)
  const base = reference.reduce((a, p, i) => a + p * quantities[i], 0)
  return {n, prices, values, total, base, change: total - base,
          percent: (total - base) / base * 100, time: n > 0 ? data.time[n - 1] : null,
          seq: n > 0 ? data.seq[n - 1] : null}
}
"""

_CARD_CSS = """
:host { width: 100%; }
.ff-card { background: var(--panel-surface-color, #fff); border-radius: 10px;
           padding: 12px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.12);
           font-family: system-ui, sans-serif; }
.ff-label { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #6b7280; }
.ff-up { color: #15803d; }
.ff-down { color: #b91c1c; }
"""


def _standalone(render: str, css: str) -> str:
    """One view's own ES module (the prelude, its ``render`` and its style), used in
    Jupyter and ``--dev``."""
    return (
        _PRELUDE
        + textwrap.dedent(render)
        + f"\nconst styledRender = styled({json.dumps(textwrap.dedent(css))}, render)"
        + "\nexport { styledRender as render }\n"
    )


class _BundledView(JSComponent):
    """A view whose code the browser loads from one ES module shared by all the views.

    Inline, each view's source (some 5 kB) travels in every session's document and is
    compiled in every page; from the bundle (``components.bundle.js``, generated from
    this file by ``make bundle``) a served page fetches and
    compiles one cacheable module, and its document carries a URL. Elsewhere (Jupyter)
    Panel inlines the bundle.
    """

    _bundle = "components.bundle.js"
    #: The view's style sheet, shipped in its module (not in each session's document).
    _css = ""

    __abstract = True


class _SourceView(_BundledView):
    """A view of one ColumnDataSource (by id) holding ``time``, ``seq`` and price columns."""

    source_id = param.String(doc="Id of the chart's ColumnDataSource in this document.")
    symbols = param.List(item_type=str, doc="Price columns, in holding order.")
    quantities = param.List(doc="Quantity held of each symbol.")
    reference = param.List(doc="Start-of-day price of each symbol (baseline of change).")

    __abstract = True


#: The charts' toolbar, drawn by `KpiCards` below the cards (one view, not two: each
#: view is a model every session builds, some 6 ms of server CPU apiece). Plain HTML
#: controls: seven Panel widgets cost each session a quarter more to open. The browser
#: sets the options; the dashboard checks each and redraws the charts, or sets it back.
#: "Download CSV" is written in the browser from the chart source's rows.
_TOOLBAR_RENDER = """
    function renderToolbar({ model, el, view }) {
      const bar = document.createElement("div")
      bar.className = "ff-controls"
      bar.setAttribute("role", "toolbar")
      bar.setAttribute("aria-label", "Chart options")
      const field = (label, input) => {
        const wrap = document.createElement("label")
        wrap.className = "ff-field"
        wrap.append(label, input)
        return wrap
      }
      const group = (label, options, pressed, press) => {
        const box = document.createElement("div")
        box.className = "ff-group"
        box.setAttribute("role", "group")
        box.setAttribute("aria-label", label)
        const buttons = options.map((option) => {
          const b = document.createElement("button")
          b.type = "button"
          b.textContent = option
          b.addEventListener("click", () => press(option))
          box.append(b)
          return b
        })
        const sync = () => buttons.forEach((b, i) =>
          b.setAttribute("aria-pressed", String(pressed(options[i]))))
        return [box, sync]
      }
      const series = document.createElement("select")
      series.addEventListener("change", () => { model.series = series.value })
      const size = document.createElement("select")
      size.addEventListener("change", () => { model.bar_ticks = Number(size.value) })
      const win = document.createElement("input")
      win.type = "number"; win.min = "2"; win.max = "500"; win.step = "1"
      win.addEventListener("change", () => {
        const n = Number(win.value)
        if (Number.isInteger(n) && n >= 2 && n <= 500) { model.window = n }
        else { win.value = model.window }
      })
      const [style, syncStyle] = group("Chart", ["Line", "Candles"],
        (o) => model.chart === o, (o) => { model.chart = o })
      const [marks, syncMarks] = group("Indicators", model.indicator_choices,
        (o) => model.indicators.includes(o),
        (o) => { model.indicators = model.indicators.includes(o) ?
          model.indicators.filter((x) => x !== o) : [...model.indicators, o] })
      const [scale, syncScale] = group("Prices", ["% change", "Price"],
        (o) => model.price_view === o, (o) => { model.price_view = o })
      const download = document.createElement("button")
      download.type = "button"
      download.className = "ff-download"
      download.textContent = "Download CSV"
      download.addEventListener("click", () => {
        const source = view.model.document.get_model_by_id(model.source_id)
        if (source == null) { return }
        const d = source.data, n = d.time.length
        const head = ["time", "seq", ...model.symbols, "portfolio_value"]
        const lines = [head.join(",")]
        for (let i = 0; i < n; i++) {
          const prices = model.symbols.map((s) => d[s][i])
          const value = prices.reduce((a, p, j) => a + p * model.quantities[j], 0)
          lines.push([new Date(d.time[i]).toISOString(), d.seq[i], ...prices, value].join(","))
        }
        const blob = new Blob([lines.join("\\n") + "\\n"], {type: "text/csv"})
        const a = document.createElement("a")
        a.href = URL.createObjectURL(blob)
        a.download = "finflow-history.csv"
        document.body.append(a); a.click(); a.remove()
        setTimeout(() => URL.revokeObjectURL(a.href), 10000)
      })
      const alerts = document.createElement("button")
      alerts.type = "button"
      alerts.className = "ff-alerts-toggle"
      alerts.textContent = "Alerts"
      alerts.addEventListener("click", () => { model.alerts_open = !model.alerts_open })
      bar.append(field("Series", series), style, field("Bar", size), marks,
                 field("Window", win), scale, alerts, download)
      const draw = () => {
        series.innerHTML = ["Portfolio", ...model.symbols]
          .map((s) => `<option value="${s}">${s}</option>`).join("")
        series.value = model.series
        size.innerHTML = model.bar_choices
          .map((n) => `<option value="${n}">${n} ticks</option>`).join("")
        size.value = String(model.bar_ticks)
        size.disabled = model.chart !== "Candles"
        win.value = model.window
        alerts.setAttribute("aria-pressed", String(model.alerts_open))
        syncStyle(); syncMarks(); syncScale()
      }
      model.on(["series", "chart", "bar_ticks", "indicators", "window", "price_view",
                "symbols", "bar_choices", "alerts_open"], draw)
      draw()
      el.append(bar)
    }
"""
_TOOLBAR_CSS = """
        :host { width: 100%; }
        .ff-controls { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: end;
                       font: 13px system-ui, sans-serif; padding: 4px 0; }
        .ff-field { display: flex; flex-direction: column; gap: 2px; color: #374151; }
        .ff-controls select, .ff-controls input { font: inherit; padding: 4px 6px;
                       border: 1px solid #cbd5e1; border-radius: 6px; background: #fff; }
        .ff-controls input { width: 64px; }
        .ff-group { display: inline-flex; }
        .ff-controls button { font: inherit; padding: 5px 10px; border: 1px solid #1d4ed8;
                       background: #fff; color: #1d4ed8; cursor: pointer; }
        .ff-group button:first-child { border-radius: 6px 0 0 6px; }
        .ff-group button:last-child { border-radius: 0 6px 6px 0; }
        .ff-group button + button { border-left: none; }
        .ff-group button[aria-pressed="true"] { background: #1d4ed8; color: #fff; }
        .ff-alerts-toggle { border-radius: 6px; margin-left: auto; }
        .ff-alerts-toggle[aria-pressed="true"] { background: #1d4ed8; color: #fff; }
        .ff-download { border-radius: 6px; }
        @media (pointer: coarse) {
          .ff-controls button, .ff-controls select, .ff-controls input { min-height: 44px; }
        }
        """


class KpiCards(_SourceView):
    """Total value, change and change % (green up, red down), last update and its age;
    below them the charts' toolbar (options, the Alerts button and "Download CSV")."""

    currency = param.String(default="$", doc="Prefix of money values.")
    rendered = param.Boolean(
        default=False, doc="Set by the browser once the cards are on the page."
    )
    series = param.String(default="Portfolio", doc="Portfolio or a held symbol.")
    chart = param.String(default="Line", doc="Line or Candles.")
    bar_ticks = param.Integer(default=10, doc="Ticks per candle.")
    bar_choices = param.List(default=[10, 30, 60], doc="Offered candle lengths.")
    indicators = param.List(default=[], doc="Chosen indicators.")
    indicator_choices = param.List(default=[], doc="Offered indicators.")
    window = param.Integer(default=20, doc="Rows the indicators average over.")
    price_view = param.String(default="% change", doc="% change or Price.")
    alerts_open = param.Boolean(default=False, doc="Whether the Alerts card is shown.")
    market_dates = param.Dict(
        default={},
        doc="A replay's own dates of ticks ahead: {'seq': first tick, 'dates': [...]}.",
    )

    _render = (
        _TOOLBAR_RENDER
        + """
    function render({ model, el, view }) {
      el.innerHTML = `
        <div class="ff-kpis">
          <div class="ff-card"><div class="ff-label">Total value</div>
            <div class="ff-value" data-kpi="total_value"></div></div>
          <div class="ff-card"><div class="ff-label">Change today</div>
            <div class="ff-value" data-kpi="total_change"></div></div>
          <div class="ff-card"><div class="ff-label">Change %</div>
            <div class="ff-value" data-kpi="total_change_percent"></div></div>
          <div class="ff-card"><div class="ff-label">Last update</div>
            <div class="ff-value ff-small" data-kpi="updated"></div>
            <div class="ff-age" data-kpi="age"></div>
            <div class="ff-age" data-kpi="market_date"></div></div>
        </div>`
      const $ = (name) => el.querySelector(`[data-kpi="${name}"]`)
      let updated = null, seq = null
      // A replay's row date of the newest tick, from the table the server sends ahead.
      const drawDate = () => {
        const table = model.market_dates, dates = (table && table.dates) || []
        const i = seq == null ? -1 : seq - table.seq
        $("market_date").textContent = i >= 0 && i < dates.length ? `Replaying ${dates[i]}` : ""
      }
      model.on("market_dates", drawDate)
      const drawAge = () => {
        if (updated == null) { $("age").textContent = ""; return }
        const seconds = Math.max(0, (Date.now() - updated) / 1000)
        $("age").textContent = seconds < 1 ? "just now" : `${seconds.toFixed(0)} s ago`
      }
      follow(model, view, (source) => {
        const v = valuation(model, source)
        $("total_value").textContent = `${model.currency}${fmt(v.total)}`
        const money = fmt(Math.abs(v.change))
        $("total_change").textContent = `${sign(v.change)}${model.currency}${money}`
        $("total_change_percent").textContent = `${signed(v.percent)}%`
        for (const name of ["total_change", "total_change_percent"]) {
          $(name).className = `ff-value ${tone(v.change)}`
        }
        updated = v.time
        seq = v.seq
        drawDate()
        $("updated").textContent = updated == null ? "waiting\\u2026" :
          new Date(updated).toLocaleTimeString()
        drawAge()
      })
      const timer = setInterval(drawAge, 1000)
      model.on("remove", () => clearInterval(timer))
      renderToolbar({ model, el, view })
      model.rendered = true
    }
    """
    )
    _css = _TOOLBAR_CSS + (
        _CARD_CSS
        + """
        .ff-kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr));
                   gap: 12px; width: 100%; }
        .ff-value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
        .ff-small { font-size: 20px; }
        .ff-age { font-size: 12px; color: #6b7280; }
        @media (max-width: 520px) {
          .ff-kpis { grid-template-columns: 1fr; gap: 8px; }
          .ff-card { padding: 10px 14px; }
        }
        """
    )
    _esm = _standalone(_render, _css)


class HoldingsTable(_SourceView):
    """Symbol, name, price, change, change %, quantity, value, weight and, where the cost
    basis is known, unrealized P&L.

    Rows are built when the holdings change; each update rewrites only the cells whose
    numbers changed, in place, from the newest streamed row.
    """

    names = param.List(doc="Display name of each holding.")
    cost_basis = param.List(doc="What one unit of each holding cost (None: unknown).")

    _render = """
    const COLUMNS = [["symbol", "Symbol"], ["name", "Name"], ["price", "Price"],
      ["change", "Change"], ["change_percent", "Change %"], ["quantity", "Quantity"],
      ["value", "Value"], ["weight", "Weight %"], ["pnl", "Unrealized P&L"]]

    function render({ model, el, view }) {
      const table = document.createElement("table")
      table.className = "ff-holdings"
      table.innerHTML = "<caption>Holdings</caption><thead><tr>" +
        COLUMNS.map(([key, title]) => `<th data-col="${key}">${title}</th>`).join("") +
        "</tr></thead><tbody></tbody>"
      const body = table.querySelector("tbody")
      let cells = []
      const build = () => {
        body.replaceChildren()
        cells = model.symbols.map((symbol, i) => {
          const row = document.createElement("tr")
          row.dataset.symbol = symbol
          const byKey = {}
          for (const [key] of COLUMNS) {
            const cell = document.createElement("td")
            cell.dataset.col = key
            row.append(cell)
            byKey[key] = cell
          }
          byKey.symbol.textContent = symbol
          byKey.name.textContent = model.names[i] ?? symbol
          body.append(row)
          return byKey
        })
      }
      build()
      model.on(["symbols", "names"], build)
      const set = (cell, text, cls = "") => {
        if (cell.textContent !== text) { cell.textContent = text }
        if (cell.className !== cls) { cell.className = cls }
      }
      const draw = (source) => {
        if (cells.length !== model.symbols.length) { build() }
        const v = valuation(model, source)
        v.prices.forEach((price, i) => {
          const change = price - model.reference[i]
          const row = cells[i]
          const quantity = model.quantities[i]
          set(row.price, fmt(price))
          set(row.change, signed(change), tone(change))
          set(row.change_percent, signed(change / model.reference[i] * 100), tone(change))
          set(row.quantity, fmt(quantity, Number.isInteger(quantity) ? 0 : 2))
          set(row.value, fmt(v.values[i]))
          set(row.weight, fmt(v.values[i] / v.total * 100, 1))
          const cost = (model.cost_basis || [])[i]
          if (cost == null) { set(row.pnl, "\u2013") }
          else { const pnl = (price - cost) * quantity; set(row.pnl, signed(pnl), tone(pnl)) }
        })
      }
      const source = follow(model, view, draw)
      model.on("cost_basis", () => source && draw(source))
      el.append(table)
    }
    """
    _css = (
        _CARD_CSS
        + """
        .ff-holdings { width: 100%; border-collapse: collapse; font: 14px system-ui, sans-serif;
                       font-variant-numeric: tabular-nums; }
        .ff-holdings caption { text-align: left; font: 650 18px system-ui, sans-serif;
                               padding: 10px 0 6px; color: #111827; }
        .ff-holdings th { text-align: left; font-weight: 600; color: #374151;
                          border-bottom: 2px solid #e5e7eb; padding: 8px 10px; }
        .ff-holdings td { border-bottom: 1px solid #f3f4f6; padding: 7px 10px; }
        .ff-holdings td:nth-child(n+3), .ff-holdings th:nth-child(n+3) { text-align: right; }
        .ff-holdings tbody tr:hover { background: #f9fafb; }
        /* A phone shows symbol, price, change, change % and value; the rest folds away. */
        @media (max-width: 600px) {
          .ff-holdings { font-size: 13px; }
          .ff-holdings th, .ff-holdings td { padding: 7px 5px; }
          .ff-holdings :is(th, td):is(:nth-child(2), :nth-child(6), :nth-child(8),
                                      :nth-child(9)) { display: none; }
        }
        """
    )
    _esm = _standalone(_render, _css)


class Diagnostics(_SourceView):
    """A collapsed ``<details>`` panel of what this session received and sent.

    Counters of what arrived are kept in the browser; ``server`` carries the server's
    own figures (messages sent, send latency, subscribers), refreshed every few seconds
    while the panel is open (``open``, set by the browser), and not at all while it is
    closed, so a thousand idle panels cost the server nothing.
    """

    server = param.Dict(default={}, doc="Server-side figures of this session and its feed.")
    open = param.Boolean(default=False, doc="Whether the panel is expanded in the browser.")

    _render = """
    function render({ model, el, view }) {
      const details = document.createElement("details")
      details.className = "ff-card ff-diagnostics"
      details.innerHTML = "<summary>Diagnostics</summary><table></table>"
      const table = details.querySelector("table")
      details.open = model.open
      details.addEventListener("toggle", () => { model.open = details.open })
      let updates = 0, rows = 0, lastSeq = null, latency = null
      const draw = (source) => {
        const v = valuation(model, source)
        const server = model.server || {}
        const times = source.data.time
        const k = Math.min(20, times.length)
        const span = k > 1 ? times[times.length - 1] - times[times.length - k] : 0
        const rate = span > 0 ? (k - 1) * 1000 / span : 0
        const items = [
          ["Ticks received", rows],
          ["Updates received", updates],
          ["Messages sent to this session", server.messages_sent ?? "\\u2013"],
          ["Rows streamed", server.rows_streamed ?? "\\u2013"],
          ["Ticks missed (older than the buffer)", server.ticks_missed ?? "\\u2013"],
          ["Tick-to-send latency",
           server.latency_ms == null ? "\\u2013" : `${fmt(server.latency_ms, 1)} ms`],
          ["Tick-to-receive latency", latency == null ? "\\u2013" : `${fmt(latency, 1)} ms`],
          ["Feed tick rate", `${fmt(rate)} ticks/s`],
          ["Subscribers on this feed", server.subscribers ?? "\\u2013"],
          ["Last sequence number", v.seq ?? "\\u2013"],
        ]
        table.innerHTML = items
          .map(([k, x]) => `<tr><td>${k}</td><td data-diag="${k}">${x}</td></tr>`).join("")
      }
      const source = follow(model, view, (source) => {
        const seq = source.data.seq
        const n = seq.length
        if (n > 0 && seq[n - 1] !== lastSeq) {
          if (lastSeq != null) {
            updates += 1
            rows += seq[n - 1] - lastSeq
            latency = Date.now() - source.data.time[n - 1]
          }
          lastSeq = seq[n - 1]
        }
        draw(source)
      })
      model.on("server", () => source && draw(source))
      el.append(details)
    }
    """
    _css = (
        _CARD_CSS
        + """
        .ff-diagnostics summary { cursor: pointer; font-weight: 600; }
        .ff-diagnostics table { margin-top: 8px; font: 13px system-ui, sans-serif; }
        .ff-diagnostics td { padding: 2px 12px 2px 0; }
        .ff-diagnostics td:last-child { font-weight: 600; font-variant-numeric: tabular-nums; }
        """
    )
    _esm = _standalone(_render, _css)


class ConnectionStatus(_BundledView):
    """Connected / reconnecting / disconnected, and recovery without the user's help.

    When the websocket closes the page probes the server; once it answers, the page
    reloads itself into a fresh session that draws the recent history at once. Re-pulling
    the old document instead is unreliable on Bokeh 3.9 for documents holding binary
    buffers (bokeh/bokeh#15347), and after a server restart the old session is gone anyway.

    Probes back off (x1.5 up to ``max_poll_interval``) with random jitter, so the pages
    of a restarted server come back spread out instead of all at the same instant.
    """

    poll_interval = param.Number(
        default=1.0, bounds=(0.1, 60), doc="Seconds before the first probe (jittered)."
    )
    max_poll_interval = param.Number(
        default=5.0, bounds=(0.1, 60), doc="Longest wait between probes (seconds)."
    )
    give_up_after = param.Number(
        default=60.0, doc="Seconds of failed probes before showing 'disconnected'."
    )
    feed_stalled = param.Boolean(
        default=False, doc="Set by the server while its market is cut off (Redis down)."
    )
    feed_finished = param.Boolean(
        default=False, doc="Set by the server once its market has ended (a replay's last row)."
    )

    _render = """
    function render({ model, el, view }) {
      const pill = document.createElement("span")
      pill.className = "ff-status"
      el.append(pill)
      const show = (state, text) => {
        pill.dataset.state = state
        pill.textContent = text
      }
      let connected = true
      const showFeed = () => {
        if (!connected) { return }
        if (model.feed_finished) { show("finished", "\\u25cf Replay finished") }
        else if (model.feed_stalled) { show("stalled", "\\u25cf Feed stalled") }
        else { show("connected", "\\u25cf Connected") }
      }
      showFeed()
      model.on(["feed_stalled", "feed_finished"], showFeed)
      const doc = view.model.document
      // Probe a static file the server always has (cheap HEAD), not the app page, which
      // would open a server session on every probe.
      const bokehjs = [...document.querySelectorAll("script[src]")]
        .map((script) => script.src).find((src) => src.includes("/static/js/bokeh"))
      const target = bokehjs ?? window.location.href
      // Half to all of the current delay, at random: pages that lost the same server
      // probe (and come back) at different moments.
      const jittered = (seconds) => seconds * (0.5 + Math.random() / 2) * 1000
      let polling = false
      let delay = model.poll_interval
      const probe = async (started) => {
        try {
          const response = await fetch(target, {method: "HEAD", cache: "no-store"})
          if (response.ok) { window.location.reload(); return }
        } catch (error) { /* server still down */ }
        const elapsed = (Date.now() - started) / 1000
        if (elapsed > model.give_up_after) {
          show("disconnected", "\\u25cf Disconnected \\u2014 retrying")
        }
        delay = Math.min(delay * 1.5, model.max_poll_interval)
        setTimeout(() => probe(started), jittered(delay))
      }
      doc.on_event("connection_lost", () => {
        if (polling) { return }
        polling = true
        connected = false
        show("reconnecting", "\\u25cf Reconnecting\\u2026")
        setTimeout(() => probe(Date.now()), jittered(model.poll_interval))
      })
    }
    """
    _css = """
        .ff-status { font: 600 13px system-ui, sans-serif; padding: 4px 10px;
                     border-radius: 999px; white-space: nowrap; }
        .ff-status[data-state="connected"] { color: #15803d; background: #dcfce7; }
        .ff-status[data-state="reconnecting"] { color: #a16207; background: #fef9c3; }
        .ff-status[data-state="stalled"] { color: #a16207; background: #fef9c3; }
        .ff-status[data-state="finished"] { color: #1e40af; background: #dbeafe; }
        .ff-status[data-state="disconnected"] { color: #b91c1c; background: #fee2e2; }
        """
    _esm = _standalone(_render, _css)


BUNDLE = Path(__file__).with_name(_BundledView._bundle)
_VIEWS = (KpiCards, HoldingsTable, Diagnostics, ConnectionStatus)


def bundle_source() -> str:
    """The text of ``components.bundle.js``: the prelude once, then each view's module
    as ``default[ClassName]``, which is how Panel finds a class in a bundle."""
    modules = [
        f"const {view.__name__} = (() => {{\n{textwrap.dedent(view._render).strip()}\n"
        f"return {{ render: styled({json.dumps(textwrap.dedent(view._css))}, render) }}\n}})()\n"
        for view in _VIEWS
    ]
    names = ", ".join(view.__name__ for view in _VIEWS)
    return (
        "// Generated from components.py by `make bundle`; do not edit.\n"
        + textwrap.dedent(_PRELUDE).lstrip()
        + "\n"
        + "\n".join(modules)
        + f"\nexport default {{ {names} }}\n"
    )


def write_bundle() -> Path:
    """Regenerate ``components.bundle.js`` after changing a view's code (``make bundle``)."""
    BUNDLE.write_text(bundle_source(), encoding="utf-8")
    return BUNDLE
