"""``finflow-panel watch URL``: the live portfolio in a terminal, through the JSON API."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone
from typing import TextIO

from .client import PortfolioClient

__all__ = ["render", "watch"]

_CLEAR = "\x1b[H\x1b[2J"


def render(data: dict) -> str:
    """One ``portfolio_data``/``price_update`` payload as a text table."""
    when = datetime.fromtimestamp(data["timestamp"] / 1000.0, timezone.utc)
    lines = [
        f"{data['portfolio_name']} ({data['portfolio_id']})   tick {data['seq']}   "
        f"{when:%Y-%m-%d %H:%M:%S} UTC",
        f"Total value  {data['total_value']:,.2f}   {data['total_change']:+,.2f} "
        f"({data['total_change_percent']:+.2f}%)",
        "",
    ]
    header = ("Symbol", "Name", "Price", "Change", "Change %", "Quantity", "Value")
    rows = [
        (
            item["symbol"],
            item["name"][:24],
            f"{item['current_price']:,.2f}",
            f"{item['change']:+,.2f}",
            f"{item['change_percent']:+.2f}%",
            f"{item['quantity']:,g}",
            f"{item['value']:,.2f}",
        )
        for item in data["investments"]
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


async def watch(
    url: str,
    interval: float = 1.0,
    portfolio_id: str | None = None,
    cookie: str | None = None,
    count: int | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Print the portfolio at ``url`` as it updates: in place on a terminal, one table
    after another otherwise. ``count``: stop after that many tables (0: one, at once)."""
    client = await PortfolioClient.connect(url, cookie=cookie)
    try:
        in_place = out.isatty()
        if count == 0:
            print(render(await client.get_portfolio_data(portfolio_id)), file=out, flush=True)
            return 0
        await client.start_updates(interval, portfolio_id)
        shown = 0
        async for data in client.updates(timeout=max(60.0, 3 * interval)):
            text = render(data)
            print(_CLEAR + text if in_place else text + "\n", file=out, flush=True)
            shown += 1
            if count is not None and shown >= count:
                return 0
    finally:
        await client.aclose()
    return 0


def run(url: str, **kwargs) -> int:
    try:
        return asyncio.run(watch(url, **kwargs))
    except KeyboardInterrupt:
        return 0
