"""A signed-in user's portfolios in the dashboard: a selector in the header and an editor.

Every change is saved at once through the `PortfolioService` (the store); the store tells
every open session of that user (in this process, and through Redis in others), and each
reloads the user's portfolios, so all their tabs show a change without a reload. Bad
values are refused before anything is saved, with a message that names the field.
"""

from __future__ import annotations

import logging
import math
from functools import partial

import panel as pn

from ..model import Portfolio
from ..store import MAX_POSITIONS, Position, StoreError, StoreUnavailable
from ..store.base import MAX_NAME_CHARS, MAX_PRICE, MAX_QUANTITY

__all__ = ["PortfolioEditor"]

log = logging.getLogger(__name__)

_LABEL_CSS = [".bk-input-group > label { color: #e0e7ff; }"]


def _name(text: str) -> str:
    name = " ".join((text or "").split())
    if not name:
        raise StoreError("Name: enter a name for the portfolio")
    if len(name) > MAX_NAME_CHARS:
        raise StoreError(f"Name: at most {MAX_NAME_CHARS} characters")
    return name


def _number(text: str, field: str, *, high: float, optional: bool = False) -> float | None:
    text = (text or "").strip().replace(",", "")
    if not text:
        if optional:
            return None
        raise StoreError(f"{field}: enter a number greater than 0")
    try:
        value = float(text)
    except ValueError:
        raise StoreError(f"{field}: {text[:20]!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise StoreError(f"{field}: must be greater than 0 (got {text[:20]})")
    if value > high:
        raise StoreError(f"{field}: must be at most {high:g}")
    return value


class PortfolioEditor:
    """The selector and editor of ``user``'s portfolios for one dashboard session."""

    def __init__(self, dashboard, service, user: str) -> None:
        self.dashboard = dashboard
        self.service = service
        self.user = user
        self._portfolios: dict[str, Portfolio] = {}
        universe = service.universe
        self.selector = pn.widgets.Select(
            name="Portfolio", options={}, width=200, stylesheets=_LABEL_CSS
        )
        self.selector.param.watch(self._on_select, "value")
        self.name = pn.widgets.TextInput(name="Name", max_length=80, width=200)
        self.symbol = pn.widgets.AutocompleteInput(
            name="Symbol",
            options=list(universe.symbols),
            case_sensitive=False,
            restrict=False,
            min_characters=1,
            placeholder="e.g. AAPL",
            width=120,
        )
        self.quantity = pn.widgets.TextInput(name="Quantity", placeholder="e.g. 10", width=110)
        self.cost = pn.widgets.TextInput(name="Cost per share", placeholder="optional", width=120)
        buttons = {
            "Add or update holding": self._add,
            "Remove holding": self._remove,
            "Rename": self._rename,
            "New portfolio": self._create,
            "Delete portfolio": self._delete,
        }
        self.buttons = {}
        for label, action in buttons.items():
            button = pn.widgets.Button(
                label=label, button_type="danger" if "Delete" in label else "primary"
            )
            button.on_click(partial(self._run, action))
            self.buttons[label] = button
        self.message = pn.pane.HTML("", css_classes=["ff-editor-message"], min_height=24)
        self.panel = pn.Card(
            pn.Row(
                self.symbol,
                self.quantity,
                self.cost,
                self.buttons["Add or update holding"],
                self.buttons["Remove holding"],
            ),  # fmt: skip
            pn.Row(
                self.name,
                self.buttons["Rename"],
                self.buttons["New portfolio"],
                self.buttons["Delete portfolio"],
            ),  # fmt: skip
            self.message,
            title="Edit portfolio",
            collapsed=True,
            sizing_mode="stretch_width",
            margin=(5, 10),
        )
        self._doc = None
        self._unsubscribe = None

    # -- lifecycle --------------------------------------------------------------------

    def attach(self, doc, requested: str | None) -> None:
        """Load the user's portfolios once the page is up, and follow their changes;
        ``requested``: the id the page's URL asks for (shown if it is the user's)."""
        self._doc = doc
        self.dashboard.personalize(header=[self.selector, self._account()], sections=[self.panel])
        self._unsubscribe = self.service.store.subscribe(self.user, self._on_store_change)
        doc.on_session_destroyed(lambda _context, stop=self._unsubscribe: stop())
        pn.state.onload(partial(self._load, requested))

    def _account(self):
        import html

        return pn.pane.HTML(
            f'<span class="ff-user">{html.escape(self.user)}</span> '
            '<a class="ff-logout" href="./logout">Sign out</a>',
            stylesheets=[
                ":host { align-self: center; } .ff-user { color: #e0e7ff; font: 600 13px "
                "system-ui; } .ff-logout { color: #fff; font: 600 13px system-ui; }"
            ],
            margin=(0, 10),
        )

    def _on_store_change(self, _owner: str) -> None:
        # From the store's thread: the reload runs in this session, under its lock.
        doc = self._doc
        if doc is not None and doc.session_context is not None:
            doc.add_next_tick_callback(self._load)

    async def _load(self, requested: str | None = None) -> None:
        try:
            portfolios = await self.service.portfolios(self.user)
        except StoreUnavailable as error:
            self._say(f"Your portfolios cannot be loaded now: {error}", error=True)
            return
        self._portfolios = {p.portfolio_id: p for p in portfolios}
        current = self.dashboard.portfolio.portfolio_id
        choice = requested if requested in self._portfolios else None
        if choice is None:
            choice = current if current in self._portfolios else next(iter(self._portfolios), None)
        options = {self._label(p): p.portfolio_id for p in portfolios}
        with pn.io.hold():
            self.selector.options = options
            if choice is not None:
                self.selector.value = choice
                self._show(self._portfolios[choice])

    def _label(self, portfolio: Portfolio) -> str:
        # Options are keyed by label: two portfolios of one name still get one each.
        return f"{portfolio.name} ({portfolio.portfolio_id[:6]})"

    def _show(self, portfolio: Portfolio) -> None:
        if self.dashboard.portfolio != portfolio:
            self.dashboard.portfolio = portfolio
        if self.name.value != portfolio.name:
            self.name.value = portfolio.name

    def _on_select(self, event) -> None:
        portfolio = self._portfolios.get(event.new)
        if portfolio is not None:
            self._show(portfolio)
            self._say("")

    # -- editing ----------------------------------------------------------------------

    def _say(self, text: str, error: bool = False) -> None:
        import html

        color = "#b91c1c" if error else "#15803d"
        self.message.object = (
            f'<span role="status" style="color:{color};font-weight:600">{html.escape(text)}</span>'
            if text
            else ""
        )

    async def _run(self, action, _event=None) -> None:
        try:
            done = await action()
        except StoreError as error:
            self._say(str(error), error=True)
        except StoreUnavailable as error:
            self._say(f"Not saved: {error}", error=True)
        else:
            if done:
                self._say(done)

    def _current(self) -> Portfolio:
        return self.dashboard.portfolio

    def _positions(self) -> list[Position]:
        return [Position(h.symbol, h.quantity, h.cost_basis) for h in self._current().holdings]

    def _symbol(self) -> str:
        symbol = (self.symbol.value_input or self.symbol.value or "").strip().upper()
        if not symbol:
            raise StoreError("Symbol: choose a symbol of the market, e.g. AAPL")
        if symbol not in self.service.universe:
            raise StoreError(f"Symbol: unknown symbol {symbol[:20]!r}: not in the market")
        return symbol

    def _holding(self) -> Position:
        symbol = self._symbol()
        quantity = _number(self.quantity.value_input or self.quantity.value, "Quantity",
                           high=MAX_QUANTITY)  # fmt: skip
        cost = _number(self.cost.value_input or self.cost.value, "Cost per share",
                       high=MAX_PRICE, optional=True)  # fmt: skip
        return Position(symbol, quantity, cost)

    async def _save(self, name: str, positions: list[Position]) -> Portfolio:
        current = self._current()
        saved = await self.service.replace(self.user, current.portfolio_id, name, positions)
        if saved is None:
            raise StoreError("this portfolio no longer exists (deleted in another tab?)")
        self._portfolios[saved.portfolio_id] = saved
        self._show(saved)
        return saved

    async def _add(self) -> str:
        holding = self._holding()
        positions = self._positions()
        symbols = [p.symbol for p in positions]
        if holding.symbol in symbols:
            positions[symbols.index(holding.symbol)] = holding
            verb = "Updated"
        else:
            if len(positions) >= MAX_POSITIONS:
                raise StoreError(f"a portfolio holds at most {MAX_POSITIONS} symbols")
            positions.append(holding)
            verb = "Added"
        await self._save(self._current().name, positions)
        return f"{verb} {holding.symbol}: {holding.quantity:g}"

    async def _remove(self) -> str:
        symbol = self._symbol()
        positions = [p for p in self._positions() if p.symbol != symbol]
        if len(positions) == len(self._current().holdings):
            raise StoreError(f"Symbol: {symbol} is not in this portfolio")
        if not positions:
            raise StoreError("a portfolio needs at least one holding: delete the portfolio instead")
        await self._save(self._current().name, positions)
        return f"Removed {symbol}"

    async def _rename(self) -> str:
        name = _name(self.name.value_input or self.name.value)
        await self._save(name, self._positions())
        return f"Renamed to {name}"

    async def _create(self) -> str:
        name = _name(self.name.value_input or self.name.value)
        try:
            holding = self._holding()
        except StoreError as error:
            raise StoreError(f"{error} (a new portfolio starts with this holding)") from None
        made = await self.service.create(self.user, name, [holding])
        self._portfolios[made.portfolio_id] = made
        await self._load(made.portfolio_id)
        return f"Created {name}"

    async def _delete(self) -> str:
        current = self._current()
        if len(self._portfolios) <= 1:
            raise StoreError("you need at least one portfolio: create another first")
        if not await self.service.delete(self.user, current.portfolio_id):
            raise StoreError("this portfolio no longer exists")
        self._portfolios.pop(current.portfolio_id, None)
        await self._load()
        return f"Deleted {current.name}"
