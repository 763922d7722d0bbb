"""The JSON WebSocket API's delivery, in process on a manual market: one valuation per
tick per portfolio, and a slow client gets the newest state, never a queue."""

from __future__ import annotations

import asyncio
import json
import re

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from finflow_panel.client import PortfolioClient
from finflow_panel.feed import SharedFeed
from finflow_panel.model import Portfolio, Universe
from finflow_panel.server.api import PortfolioService
from finflow_panel.server.ws_api import PortfolioSocket, _streams_for, ws_routes
from tests.util import run_async, until


class Site:
    """A Tornado server of the JSON API alone, over a manual market."""

    def __init__(self) -> None:
        universe = Universe.default()
        self.feed = SharedFeed(universe.random_walk(seed=3), manual=True, tick=0.05)
        self.feed.advance(5)
        self.service = PortfolioService(
            universe, feed=lambda: self.feed, server_portfolio=Portfolio.sample()
        )
        self.streams = _streams_for(self.service)
        from tornado.web import Application

        self.app = Application(ws_routes(self.service, lambda: set()))

    async def __aenter__(self) -> Site:
        (sock,) = bind_sockets(0, "127.0.0.1")
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = HTTPServer(self.app)
        self.server.add_sockets([sock])
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.stop()

    def sockets(self) -> list[PortfolioSocket]:
        return list(self.feed._subscribers)


def test_one_valuation_per_tick_per_portfolio_whatever_the_number_of_clients():
    async def main():
        async with Site() as site:
            clients = [await PortfolioClient.connect(site.url) for _ in range(20)]
            for client in clients:
                await client.start_updates(interval=0.1)
            await until(lambda: site.feed.subscriber_count == 20, what="20 subscribers")
            for client in clients:  # each gets the newest tick at once
                assert (await client._reply(("price_update",), 10))["data"]["seq"] == 4
            before = site.streams.valuations
            await asyncio.sleep(0.15)  # pacing: let the next update fall due
            site.feed.advance(1)
            datas = [(await client._reply(("price_update",), 10))["data"] for client in clients]
            assert {d["seq"] for d in datas} == {5}
            assert len({json.dumps(d) for d in datas}) == 1
            assert site.streams.valuations == before + 1
            for client in clients:
                await client.aclose()
            await until(lambda: site.feed.subscriber_count == 0, what="subscribers released")

    run_async(main())


def test_a_client_that_has_not_taken_its_update_is_skipped_then_sent_the_newest():
    async def main():
        async with Site() as site:
            client = await PortfolioClient.connect(site.url)
            await client.start_updates(interval=0.1)
            assert (await client._reply(("price_update",), 10))["data"]["seq"] == 4
            await until(lambda: site.sockets(), what="the socket subscribed")
            (socket,) = site.sockets()
            # The client stops taking data: its next write never completes.
            stuck = asyncio.get_running_loop().create_future()
            written = []
            real_write = socket._write_frame

            def write_frame(frame):
                written.append(int(re.search(rb'"seq":(\d+)', frame).group(1)))
                if len(written) == 1:
                    real_write(frame)
                    return stuck
                return real_write(frame)

            socket._write_frame = write_frame
            rounds = site.streams.rounds
            for _ in range(4):
                await asyncio.sleep(0.12)  # pacing: each tick finds an update due
                site.feed.advance(1)
            await until(lambda: site.streams.rounds >= rounds + 4, what="four rounds")
            assert written == [5]  # ticks 6, 7 and 8 did not queue behind it
            stuck.set_result(None)  # the client has caught up: the newest, once
            await until(lambda: len(written) == 2, what="the newest update")
            assert written == [5, 8]
            seqs = [(await client._reply(("price_update",), 10))["data"]["seq"] for _ in range(2)]
            assert seqs == [5, 8]
            await client.aclose()

    run_async(main())


def test_updates_keep_their_interval_without_drifting():
    async def main():
        async with Site() as site:
            client = await PortfolioClient.connect(site.url)
            await client.start_updates(interval=0.3)
            await client._reply(("price_update",), 10)
            await until(lambda: site.sockets(), what="the socket subscribed")
            received = []

            async def read():
                async for data in client.updates(timeout=10):
                    received.append(data["seq"])

            reader = asyncio.ensure_future(read())
            for _ in range(30):  # three seconds of 0.1 s ticks
                await asyncio.sleep(0.1)
                site.feed.advance(1)
            await until(lambda: len(received) >= 8, what="eight updates")
            reader.cancel()
            gaps = set(received[i + 1] - received[i] for i in range(len(received) - 1))
            assert gaps <= {2, 3, 4}, received  # every third tick or so, never every one
            await client.aclose()

    run_async(main())
