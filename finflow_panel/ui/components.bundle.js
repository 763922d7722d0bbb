// Generated from components.py by `make bundle`; do not edit.
const fmt = (x, digits = 2) => Number(x).toLocaleString("en-US", {
  minimumFractionDigits: digits, maximumFractionDigits: digits})
const sign = (x) => x > 0 ? "+" : (x < 0 ? "\u2212" : "")
const signed = (x, digits = 2) => sign(x) + fmt(Math.abs(x), digits)
const tone = (x) => x > 0 ? "ff-up" : (x < 0 ? "ff-down" : "")

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

const KpiCards = (() => {
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
        <div class="ff-age" data-kpi="age"></div></div>
    </div>`
  const $ = (name) => el.querySelector(`[data-kpi="${name}"]`)
  let updated = null
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
    $("updated").textContent = updated == null ? "waiting\u2026" :
      new Date(updated).toLocaleTimeString()
    drawAge()
  })
  const timer = setInterval(drawAge, 1000)
  model.on("remove", () => clearInterval(timer))
  model.rendered = true
}
return { render }
})()

const HoldingsTable = (() => {
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
      if (cost == null) { set(row.pnl, "–") }
      else { const pnl = (price - cost) * quantity; set(row.pnl, signed(pnl), tone(pnl)) }
    })
  }
  const source = follow(model, view, draw)
  model.on("cost_basis", () => source && draw(source))
  el.append(table)
}
return { render }
})()

const Diagnostics = (() => {
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
      ["Messages sent to this session", server.messages_sent ?? "\u2013"],
      ["Rows streamed", server.rows_streamed ?? "\u2013"],
      ["Ticks missed (older than the buffer)", server.ticks_missed ?? "\u2013"],
      ["Tick-to-send latency",
       server.latency_ms == null ? "\u2013" : `${fmt(server.latency_ms, 1)} ms`],
      ["Tick-to-receive latency", latency == null ? "\u2013" : `${fmt(latency, 1)} ms`],
      ["Feed tick rate", `${fmt(rate)} ticks/s`],
      ["Subscribers on this feed", server.subscribers ?? "\u2013"],
      ["Last sequence number", v.seq ?? "\u2013"],
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
return { render }
})()

const ChartControls = (() => {
function render({ model, el, view }) {
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
    const blob = new Blob([lines.join("\n") + "\n"], {type: "text/csv"})
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
return { render }
})()

const ConnectionStatus = (() => {
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
    if (model.feed_stalled) { show("stalled", "\u25cf Feed stalled") }
    else { show("connected", "\u25cf Connected") }
  }
  showFeed()
  model.on("feed_stalled", showFeed)
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
      show("disconnected", "\u25cf Disconnected \u2014 retrying")
    }
    delay = Math.min(delay * 1.5, model.max_poll_interval)
    setTimeout(() => probe(started), jittered(delay))
  }
  doc.on_event("connection_lost", () => {
    if (polling) { return }
    polling = true
    connected = false
    show("reconnecting", "\u25cf Reconnecting\u2026")
    setTimeout(() => probe(Date.now()), jittered(model.poll_interval))
  })
}
return { render }
})()

export default { KpiCards, HoldingsTable, Diagnostics, ChartControls, ConnectionStatus }
