"""The dashboard's Alerts card: add price alerts, see them fire as toasts and in a log.

The alerts themselves live in the feed's `AlertBook`, checked for every session at once
on each tick; this card adds and removes its owner's alerts and shows what fired. An
anonymous session's alerts live with the session (`SessionAlerts`); a signed-in user's
are kept in the store and fire while their tab is closed (`SignedInAlerts`, over the
server's `UserAlerts`), into the log they see next time.

The card and its widgets are built the first time it is asked for (the chart toolbar's
Alerts button), so a session that never uses alerts costs nothing more to open.
"""

from __future__ import annotations

import html
import logging
import time
import weakref
from collections import deque
from functools import partial

import panel as pn

from ..feed import CONDITIONS, PORTFOLIO, Alert, AlertError, AlertEvent
from ..feed.alerts import SessionAlerts, SignedInAlerts
from ..store import StoreUnavailable

__all__ = ["AlertsCard"]

log = logging.getLogger(__name__)

#: Fired alerts the card's log shows (newest first).
LOG_SIZE = 50
_CSS = """
.ff-alert-message { font: 13px system-ui, sans-serif; min-height: 18px; }
.ff-alert-message.ff-error { color: #b91c1c; }
.ff-alert-log { font: 13px system-ui, sans-serif; margin: 0; padding-left: 18px; }
.ff-alert-log time { color: #6b7280; margin-right: 8px; font-variant-numeric: tabular-nums; }
.ff-alert-label { font: 14px system-ui, sans-serif; }
"""


def _fire(card_ref, event: AlertEvent) -> None:
    card = card_ref()
    if card is not None:
        card._on_fire(event)


class AlertsCard:
    """The Alerts card of one dashboard."""

    def __init__(self, dashboard) -> None:
        self.dashboard = dashboard
        on_fire = partial(_fire, weakref.ref(self))
        self.keeper = SessionAlerts(dashboard.feed.alerts, on_fire)
        self._on_fire_callback = on_fire
        #: Fired alerts shown in the log, newest first (``AlertEvent.to_json`` objects).
        self.log: deque[dict] = deque(maxlen=LOG_SIZE)
        self.panel = None
        self._notifications = None

    def sign_in(self, user_alerts, user: str) -> None:
        """Keep this card's alerts as ``user``'s (in the store) from now on."""
        self.keeper.close()
        self.keeper = SignedInAlerts(user_alerts, user, self._on_fire_callback)

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """The session has ended: a session's own alerts go, a user's stay."""
        self.keeper.close()

    def build(self) -> pn.Card:
        """The card (made on first use)."""
        if self.panel is None:
            self.panel = self._build()
            pn.state.execute(self._load_history)
        return self.panel

    def _build(self) -> pn.Card:
        symbols = list(self.dashboard.portfolio.symbols)
        market = [s for s in self.dashboard.feed.symbols if s not in symbols]
        self.target = pn.widgets.Select(
            label="Target", options=[*symbols, *market, PORTFOLIO], width=120
        )
        self.condition = pn.widgets.Select(label="Condition", options=list(CONDITIONS), width=120)
        self.value = pn.widgets.FloatInput(
            label="Value", value=None, placeholder="e.g. 190", width=120
        )
        self.add_button = pn.widgets.Button(label="Add alert", color="primary", align="end")
        self.add_button.on_click(self._on_add)
        self.message = pn.pane.HTML("", css_classes=["ff-alert-message"], stylesheets=[_CSS])
        self.list = pn.Column(sizing_mode="stretch_width")
        self.log_pane = pn.pane.HTML(
            self._log_html(), sizing_mode="stretch_width", stylesheets=[_CSS]
        )
        self._show_alerts()
        from panel.io.notifications import NotificationArea

        # On the page before any alert fires (a toast sent to an area still being
        # rendered is not shown), as a root of its own in a served page, as Panel places
        # it: inside the card its toasts would be placed by the card, not the window.
        self._notifications = area = NotificationArea()
        dashboard = self.dashboard
        if dashboard._server and dashboard._doc is not None:
            dashboard._doc.add_root(area.get_root(dashboard._doc))
            area = None
        return pn.Card(
            pn.Row(self.target, self.condition, self.value, self.add_button),
            self.message,
            pn.pane.HTML("<b>Active alerts</b>", margin=(0, 10)),
            self.list,
            pn.pane.HTML("<b>Alert log</b>", margin=(0, 10)),
            self.log_pane,
            *([area] if area is not None else []),
            title="Alerts",
            sizing_mode="stretch_width",
            margin=(5, 10),
        )

    async def _load_history(self) -> None:
        """What fired while this user was away (a signed-in user's log)."""
        try:
            entries = await self.keeper.history()
        except StoreUnavailable as error:
            self._say(f"The alert log is unavailable: {error}", error=True)
            return
        if entries:
            seen = {(e["alert_id"], e["seq"]) for e in self.log}
            merged = list(self.log) + [e for e in entries if (e["alert_id"], e["seq"]) not in seen]
            merged.sort(key=lambda e: e["timestamp"], reverse=True)
            self.log = deque(merged[:LOG_SIZE], maxlen=LOG_SIZE)
            self.log_pane.object = self._log_html()
        self._show_alerts()

    # -- adding and removing ----------------------------------------------------------

    async def add(self, target: str, condition: str, value) -> Alert:
        """Add an alert; AlertError (naming the field) if it is invalid."""
        return await self.keeper.add(target, condition, value, self.dashboard.portfolio)

    def portfolio_changed(self) -> None:
        """The dashboard shows other holdings: a session's Portfolio alerts value those."""
        self.keeper.portfolio_changed(self.dashboard.portfolio)

    async def _on_add(self, _event=None) -> None:
        try:
            alert = await self.add(self.target.value, self.condition.value, self.value.value)
        except AlertError as error:
            self._say(str(error), error=True)
            return
        except StoreUnavailable as error:
            self._say(f"Not saved: {error}", error=True)
            return
        self._say(f"Added: {alert.label}")
        self._show_alerts()

    async def _remove(self, alert_id: str, _event=None) -> None:
        try:
            await self.keeper.remove(alert_id)
        except StoreUnavailable as error:
            self._say(f"Not removed: {error}", error=True)
            return
        self._say("Removed")
        self._show_alerts()

    def _say(self, text: str, error: bool = False) -> None:
        self.message.css_classes = ["ff-alert-message", *(["ff-error"] if error else [])]
        self.message.object = html.escape(text)

    def _show_alerts(self) -> None:
        rows = []
        for alert in self.keeper.alerts():
            remove = pn.widgets.Button(label="Remove", color="light", width=90)
            remove.on_click(partial(self._remove, alert.alert_id))
            label = pn.pane.HTML(
                html.escape(alert.label),
                css_classes=["ff-alert-label"],
                stylesheets=[_CSS],
                align="center",
            )
            rows.append(pn.Row(label, remove, css_classes=["ff-alert-row"]))
        if not rows:
            rows = [pn.pane.HTML("<i>No alerts yet.</i>", margin=(0, 10))]
        self.list[:] = rows

    # -- firing -----------------------------------------------------------------------

    def _on_fire(self, event: AlertEvent) -> None:
        """Called by the feed on its loop, outside the session's document lock."""
        doc = self.dashboard._doc
        if self.dashboard._server and doc is not None:
            doc.add_next_tick_callback(partial(self._show_fired, event))
        else:
            self._show_fired(event)

    def _show_fired(self, event: AlertEvent) -> None:
        self.log.appendleft(event.to_json())
        if self.panel is None:
            return
        with pn.io.hold(self.dashboard._doc if self.dashboard._server else None):
            self.log_pane.object = self._log_html()
            self._notifications.warning(event.message, duration=8000)

    def _log_html(self) -> str:
        if not self.log:
            return "<i>Nothing has fired yet.</i>"
        items = "".join(
            f"<li><time>{time.strftime('%H:%M:%S', time.gmtime(e['timestamp'] / 1000))}</time>"
            f"{html.escape(e['message'])}</li>"
            for e in self.log
        )
        return f'<ol class="ff-alert-log" reversed title="UTC times">{items}</ol>'
