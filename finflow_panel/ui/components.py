"""Small browser-side components: KPI cards that age live, and the connection status.

Both render in plain JavaScript (ESM shipped with the page, no CDN). They update only
their own DOM, never a synced model property, so nothing travels back to the server.
"""

from __future__ import annotations

import param
from panel.custom import JSComponent

__all__ = ["ConnectionStatus", "KpiCards"]


class KpiCards(JSComponent):
    """Total value, change and change % (green up, red down), and the last update's age."""

    total_value = param.Number(default=0.0, doc="Portfolio value now.")
    total_change = param.Number(default=0.0, doc="Change since the session's start of day.")
    total_change_percent = param.Number(default=0.0, doc="Change in percent.")
    updated = param.Number(default=None, allow_None=True, doc="Last update, epoch ms.")
    currency = param.String(default="$", doc="Prefix of money values.")

    _esm = """
    const fmt = (x, digits = 2) => x.toLocaleString("en-US", {
      minimumFractionDigits: digits, maximumFractionDigits: digits})

    export function render({ model, el }) {
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
            <div class="ff-age" data-kpi="age"></div></div>
        </div>`
      const $ = (name) => el.querySelector(`[data-kpi="${name}"]`)
      const draw = () => {
        const sign = model.total_change > 0 ? "+" : (model.total_change < 0 ? "\u2212" : "")
        const tone = model.total_change > 0 ? "ff-up" : (model.total_change < 0 ? "ff-down" : "")
        $("total_value").textContent = `${model.currency}${fmt(model.total_value)}`
        const change = fmt(Math.abs(model.total_change))
        const percent = fmt(Math.abs(model.total_change_percent))
        $("total_change").textContent = `${sign}${model.currency}${change}`
        $("total_change_percent").textContent = `${sign}${percent}%`
        for (const name of ["total_change", "total_change_percent"]) {
          $(name).className = `ff-value ${tone}`
        }
        $("updated").textContent = model.updated == null ? "waiting\u2026" :
          new Date(model.updated).toLocaleTimeString()
        drawAge()
      }
      const drawAge = () => {
        if (model.updated == null) { $("age").textContent = ""; return }
        const seconds = Math.max(0, (Date.now() - model.updated) / 1000)
        $("age").textContent = seconds < 1 ? "just now" : `${seconds.toFixed(0)} s ago`
      }
      model.on(["total_value", "total_change", "total_change_percent", "updated"], draw)
      const timer = setInterval(drawAge, 1000)
      model.on("remove", () => clearInterval(timer))
      draw()
    }
    """

    _stylesheets = [
        """
        .ff-kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr));
                   gap: 12px; width: 100%; font-family: system-ui, sans-serif; }
        .ff-card { background: var(--panel-surface-color, #fff); border-radius: 10px;
                   padding: 12px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
        .ff-label { font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
                    color: #6b7280; }
        .ff-value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
        .ff-small { font-size: 20px; }
        .ff-age { font-size: 12px; color: #6b7280; }
        .ff-up { color: #15803d; }
        .ff-down { color: #b91c1c; }
        """
    ]


class ConnectionStatus(JSComponent):
    """Connected / reconnecting / disconnected, and recovery without the user's help.

    When the websocket closes the page polls the server; once it answers, the page
    reloads itself into a fresh session that draws the recent history at once. Re-pulling
    the old document instead is unreliable on Bokeh 3.9 for documents holding binary
    buffers (bokeh/bokeh#15347), and after a server restart the old session is gone anyway.
    """

    poll_interval = param.Number(default=1.0, bounds=(0.1, 60), doc="Seconds between probes.")
    give_up_after = param.Number(
        default=60.0, doc="Seconds of failed probes before showing 'disconnected'."
    )

    _esm = """
    export function render({ model, el, view }) {
      const pill = document.createElement("span")
      pill.className = "ff-status"
      el.append(pill)
      const show = (state, text) => {
        pill.dataset.state = state
        pill.textContent = text
      }
      show("connected", "\u25cf Connected")
      const doc = view.model.document
      // Probe a static file the server always has (cheap HEAD), not the app page, which
      // would open a server session on every probe.
      const bokehjs = [...document.querySelectorAll("script[src]")]
        .map((script) => script.src).find((src) => src.includes("/static/js/bokeh"))
      const target = bokehjs ?? window.location.href
      let polling = false
      const probe = async (started) => {
        try {
          const response = await fetch(target, {method: "HEAD", cache: "no-store"})
          if (response.ok) { window.location.reload(); return }
        } catch (error) { /* server still down */ }
        const elapsed = (Date.now() - started) / 1000
        if (elapsed > model.give_up_after) {
          show("disconnected", "\u25cf Disconnected \u2014 retrying")
        }
        setTimeout(() => probe(started), model.poll_interval * 1000)
      }
      doc.on_event("connection_lost", () => {
        if (polling) { return }
        polling = true
        show("reconnecting", "\u25cf Reconnecting\u2026")
        setTimeout(() => probe(Date.now()), model.poll_interval * 1000)
      })
    }
    """

    _stylesheets = [
        """
        .ff-status { font: 600 13px system-ui, sans-serif; padding: 4px 10px;
                     border-radius: 999px; white-space: nowrap; }
        .ff-status[data-state="connected"] { color: #15803d; background: #dcfce7; }
        .ff-status[data-state="reconnecting"] { color: #a16207; background: #fef9c3; }
        .ff-status[data-state="disconnected"] { color: #b91c1c; background: #fee2e2; }
        """
    ]
