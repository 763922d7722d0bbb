"""The ``finflow-panel`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .feed.shared import MAX_HISTORY

__all__ = ["main"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (and exit code 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _whole(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high:,}, got {value:,}")
        return value

    return parse


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _symbols(text: str) -> list[str]:
    symbols = [s.strip() for s in text.split(",")]
    if not all(symbols):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty symbol; use e.g. AAPL,MSFT")
    return symbols


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="finflow-panel",
        description="A simulated market and a live portfolio dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    sim = commands.add_parser(
        "simulate",
        help="simulate prices and write them to CSV or Parquet",
        description=(
            "Simulate a correlated geometric random walk and write one column per symbol, "
            "indexed by time. The same --seed gives the same prices."
        ),
        epilog="example: finflow-panel simulate --symbols AAPL,MSFT --steps 1000 --seed 1 "
        "--out prices.csv",
    )
    source = sim.add_mutually_exclusive_group()
    source.add_argument(
        "--symbols", type=_symbols, help="comma-separated symbols (default: sample portfolio)"
    )
    source.add_argument(
        "--portfolio",
        type=Path,
        metavar="FILE",
        help="take symbols, start prices, drift and volatility from a portfolio CSV",
    )
    sim.add_argument("--steps", type=_positive_int, default=252, help="rows to generate (252)")
    sim.add_argument("--seed", type=_non_negative_int, help="random seed for reproducible output")
    sim.add_argument("--drift", type=_number, help="annual drift for every symbol (0.05)")
    sim.add_argument("--volatility", type=_number, help="annual volatility for every symbol (0.25)")
    sim.add_argument(
        "--dt", type=_number, default=1 / 252, help="time step in years (1/252, a trading day)"
    )
    sim.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="output file, .csv or .parquet (default: CSV on standard output)",
    )
    sim.set_defaults(handler=_simulate)

    serve = commands.add_parser(
        "serve",
        help="serve the live portfolio dashboard",
        description=(
            "Serve the live dashboard at /portfolio (home page at /) on Bokeh's Tornado "
            "server. One simulated market per process, shared by every browser session. "
            "Works offline: every resource comes from this server."
        ),
    )
    serve.add_argument("--port", type=_port, default=5006, help="port to listen on (5006)")
    serve.add_argument("--address", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument(
        "--portfolio", type=Path, metavar="FILE", help="portfolio CSV (default: the sample)"
    )
    serve.add_argument(
        "--tick", type=_seconds(0.01, 3600), default=1.0, help="seconds between market ticks (1)"
    )
    serve.add_argument(
        "--interval",
        type=_seconds(0.1, 60),
        default=5.0,
        help="default seconds between updates to a browser, 0.1-60 (5)",
    )
    serve.add_argument(
        "--history",
        type=_whole(1, MAX_HISTORY),
        default=2000,
        help=f"ticks kept and charted, at most {MAX_HISTORY:,} (2000)",
    )
    serve.add_argument("--seed", type=_non_negative_int, help="random seed of the market")
    serve.add_argument(
        "--always-on", action="store_true", help="tick even when no browser is connected"
    )
    serve.add_argument(
        "--redis",
        metavar="URL",
        help="one market for every process on this Redis, e.g. redis://127.0.0.1:6379/0 "
        "(needs finflow_panel[redis])",
    )
    serve.add_argument(
        "--num-procs",
        type=_whole(1, 64),
        default=1,
        help="server processes sharing the port (1); more than 1 needs --redis",
    )
    serve.add_argument(
        "--universe",
        type=Path,
        metavar="FILE",
        help="the symbols the market quotes, CSV: symbol,name,price[,drift,volatility] "
        "(default: 30 large US stocks)",
    )
    serve.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="play a price history (CSV or Parquet: wide, long or OHLC) one row per tick "
        "instead of simulating; the market quotes the file's symbols",
    )
    serve.add_argument(
        "--replay-loop",
        action="store_true",
        help="start the replay again after its last row (sequence numbers keep increasing)",
    )
    auth = serve.add_argument_group(
        "sign-in", "users sign in and keep portfolios of their own (default: all anonymous)"
    )
    auth.add_argument(
        "--basic-auth",
        type=Path,
        metavar="FILE",
        help="credentials file of password hashes (see: finflow-panel users add)",
    )
    auth.add_argument(
        "--cookie-secret",
        metavar="SECRET",
        default=os.environ.get("PANEL_COOKIE_SECRET"),
        help="secret signing the sign-in cookie, 32+ characters (or PANEL_COOKIE_SECRET)",
    )
    auth.add_argument(
        "--store",
        metavar="URL",
        help="where users' portfolios are kept: sqlite:///finflow.db (default), "
        "sqlite:////abs/path.db or redis://HOST:PORT/DB (default with --redis: that Redis)",
    )
    for name, text in (
        ("--oauth-provider", "Panel's OAuth provider (github, azure, generic, ...)"),
        ("--oauth-key", "the OAuth client id"),
        ("--oauth-secret", "the OAuth client secret"),
        ("--oauth-redirect-uri", "the OAuth redirect URI"),
        ("--oauth-extra-params", "extra OAuth parameters, a JSON object"),
    ):  # fmt: skip
        auth.add_argument(name, metavar="VALUE", help=text)
    serve.add_argument("--show", action="store_true", help="open the dashboard in a browser")
    serve.add_argument(
        "--allow-websocket-origin",
        action="append",
        metavar="HOST[:PORT]",
        help="accept websocket connections from this origin (repeatable)",
    )
    serve.add_argument(
        "--session-lifetime",
        type=_seconds(0.1, 3600),
        default=15.0,
        help="seconds before a closed session is cleaned up (15)",
    )
    serve.set_defaults(handler=_serve)

    users = commands.add_parser(
        "users",
        help="add or remove users of --basic-auth sign-in",
        description=(
            "Keep the sign-in credentials file of 'serve --basic-auth FILE': Panel's JSON "
            'format {"user": "secret"}, each secret a salted scrypt hash.'
        ),
    )
    actions = users.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    add = actions.add_parser(
        "add",
        help="add a user or change their password",
        description=(
            "Add NAME (or change their password). The password is read from the terminal, "
            "or from the first line of standard input when it is not a terminal."
        ),
        epilog="example: finflow-panel users add ann --basic-auth users.json",
    )
    remove = actions.add_parser("remove", help="remove a user")
    for action in (add, remove):
        action.add_argument("name", metavar="NAME", help="user name")
        action.add_argument(
            "--basic-auth", type=Path, metavar="FILE", required=True, help="credentials file"
        )
    add.set_defaults(handler=_users_add)
    remove.set_defaults(handler=_users_remove)

    watch = commands.add_parser(
        "watch",
        help="print a server's live portfolio in the terminal",
        description=(
            "Follow a server's portfolio through its JSON WebSocket API (/ws/portfolio/) "
            "and print it as a table that refreshes in place (one table after another "
            "when the output is not a terminal). Ctrl-C stops."
        ),
        epilog="example: finflow-panel watch http://127.0.0.1:5006 --interval 1",
    )
    watch.add_argument("url", metavar="URL", help="the server, e.g. http://HOST:PORT")
    watch.add_argument(
        "--interval",
        type=_seconds(0.1, 60),
        default=1.0,
        help="seconds between updates, 0.1-60 (1)",
    )
    watch.add_argument("--portfolio", metavar="ID", help="a portfolio of yours, by id")
    watch.add_argument(
        "--user",
        metavar="NAME",
        help="sign in as NAME (password from the terminal, or stdin's first line)",
    )
    watch.add_argument(
        "--count", type=_non_negative_int, help="stop after N tables (0: print one and exit)"
    )
    watch.add_argument("--once", action="store_const", const=0, dest="count",
                       help="print the portfolio once and exit (same as --count 0)")  # fmt: skip
    watch.set_defaults(handler=_watch)

    calibrate = commands.add_parser(
        "calibrate",
        help="estimate drift, volatility and correlation from a price history file",
        description=(
            "Read a price history (CSV or Parquet: wide, long, or one symbol's OHLC bars) "
            "and print each symbol's annual drift and volatility from log returns, and "
            "their correlation."
        ),
        epilog="example: finflow-panel calibrate prices.csv --json",
    )
    calibrate.add_argument("file", type=Path, metavar="FILE", help="the price history")
    calibrate.add_argument(
        "--periods-per-year",
        type=_number,
        help="periods a year (default: inferred from the dates: 252 daily, 52 weekly, ...)",
    )
    calibrate.add_argument("--json", action="store_true", help="print JSON instead of tables")
    calibrate.set_defaults(handler=_calibrate)
    return parser


def _calibrate(args: argparse.Namespace) -> int:
    import json
    import warnings

    from .model import PriceFileError, calibrate, load_prices

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            prices = load_prices(args.file)
        result = calibrate(prices, periods_per_year=args.periods_per_year)
    except (PriceFileError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    for warning in caught:
        print(f"finflow-panel calibrate: warning: {warning.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    first, last = prices.index[0], prices.index[-1]
    print(f"{args.file}: {len(prices)} dates from {first:%Y-%m-%d} to {last:%Y-%m-%d}, "
          f"{result.periods_per_year:g} periods a year, {result.observations} returns")  # fmt: skip
    print()
    print(result.table().to_string(float_format=lambda x: f"{x:,.4f}"))
    print()
    print("correlation")
    print(result.correlation.to_string(float_format=lambda x: f"{x:.3f}"))
    return 0


def _read_password(name: str, confirm: bool = True) -> str:
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {name}: ")
        if confirm and getpass.getpass("again: ") != password:
            raise _UsageError("the passwords differ; nothing changed")
        return password
    return sys.stdin.readline().rstrip("\r\n")


def _users_add(args: argparse.Namespace) -> int:
    from .store.credentials import CredentialsError, add_user, check_name

    try:
        check_name(args.name)  # before asking for a password
        new = add_user(args.basic_auth, args.name, _read_password(args.name))
    except CredentialsError as exc:
        raise _UsageError(str(exc)) from None
    print(f"{'added' if new else 'changed the password of'} {args.name} in {args.basic_auth}")
    return 0


def _users_remove(args: argparse.Namespace) -> int:
    from .store.credentials import CredentialsError, remove_user

    try:
        remove_user(args.basic_auth, args.name)
    except CredentialsError as exc:
        raise _UsageError(str(exc)) from None
    print(f"removed {args.name} from {args.basic_auth}")
    return 0


def _watch(args: argparse.Namespace) -> int:
    import asyncio

    from tornado.httpclient import HTTPClientError

    from .client import PortfolioClient, portfolio_ws_url
    from .watch import run

    try:
        url = portfolio_ws_url(args.url)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    cookie = None
    try:
        if args.user:
            password = _read_password(args.user, confirm=False)
            cookie = asyncio.run(PortfolioClient.sign_in(args.url, args.user, password))
        return run(url, interval=args.interval, portfolio_id=args.portfolio, cookie=cookie,
                   count=args.count)  # fmt: skip
    except PermissionError as exc:
        raise _UsageError(str(exc)) from None
    except HTTPClientError as exc:
        hint = " (sign in with --user NAME)" if exc.code == 401 else ""
        print(f"finflow-panel watch: {url} refused: HTTP {exc.code} {exc.message}{hint}",
              file=sys.stderr)  # fmt: skip
        return 1
    except ValueError as exc:  # the server's error message
        print(f"finflow-panel watch: {exc}", file=sys.stderr)
        return 1
    except (ConnectionError, OSError, asyncio.TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        print(f"finflow-panel watch: cannot follow {url}: {reason}", file=sys.stderr)
        return 1


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def _seconds(low: float, high: float):
    def parse(text: str) -> float:
        value = _number(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g} s, got {text}")
        return value

    return parse


def _serve(args: argparse.Namespace) -> int:
    from .app import ServeConfig, process_portfolio, process_universe, serve

    # Everything a session will need is checked here, before any server starts: a bad
    # value is one line and exit code 2, never a server that fails every request.
    try:
        config = ServeConfig(
            portfolio=str(args.portfolio) if args.portfolio else None,
            tick=args.tick,
            interval=args.interval,
            history=args.history,
            seed=args.seed,
            always_on=args.always_on,
            redis=args.redis,
            universe=str(args.universe) if args.universe else None,
            store=args.store,
            basic_auth=str(args.basic_auth) if args.basic_auth else None,
            oauth_provider=args.oauth_provider,
            replay=str(args.replay) if args.replay else None,
            replay_loop=args.replay_loop,
        )
        process_portfolio(config)
        universe = process_universe(config)
    except ValueError as exc:  # PortfolioError is a ValueError
        raise _UsageError(str(exc)) from None
    oauth = _check_sign_in(args, config)
    if args.num_procs > 1 and not config.redis:
        raise _UsageError(
            f"--num-procs {args.num_procs} needs --redis URL: without it each process "
            "would run a market of its own"
        )
    if config.redis:
        from .feed.redis_feed import RedisUnavailable, check_redis

        try:
            check_redis(config.redis)
        except RedisUnavailable as exc:
            raise _UsageError(str(exc)) from None
    # The ring buffer, and a session's chart, hold up to --history rows of every symbol.
    _check_fits("--history", args.history, len(universe) + 2)
    url = f"http://{args.address}:{args.port}/portfolio"
    print(f"finflow-panel: serving the live dashboard at {url}", flush=True)
    serve(
        config,
        port=args.port,
        address=args.address,
        show=args.show,
        allow_websocket_origin=args.allow_websocket_origin,
        session_lifetime=args.session_lifetime,
        num_procs=args.num_procs,
        cookie_secret=args.cookie_secret,
        oauth=oauth,
    )
    return 0


#: Shorter cookie secrets are refused: the cookie's signature is only as strong as it.
_MIN_SECRET = 32


def _check_sign_in(args: argparse.Namespace, config) -> dict:
    """Sign-in options checked before any server starts; Panel's OAuth options to pass."""
    from .store import StoreUnavailable, open_store
    from .store.credentials import CredentialsError, load_credentials

    oauth = {
        key: getattr(args, key)
        for key in ("oauth_key", "oauth_secret", "oauth_redirect_uri")
        if getattr(args, key)
    }
    if args.oauth_extra_params:
        try:
            oauth["oauth_extra_params"] = json.loads(args.oauth_extra_params)
        except ValueError:
            raise _UsageError("--oauth-extra-params must be a JSON object") from None
    if not config.sign_in:
        if args.store or oauth:
            raise _UsageError(
                "--store and --oauth-* options need sign-in: add --basic-auth FILE "
                "or --oauth-provider NAME"
            )
        return oauth
    if config.basic_auth and config.oauth_provider:
        raise _UsageError("use --basic-auth or --oauth-provider, not both")
    if not args.cookie_secret or len(args.cookie_secret) < _MIN_SECRET:
        raise _UsageError(
            f"sign-in needs --cookie-secret of at least {_MIN_SECRET} characters (or "
            "PANEL_COOKIE_SECRET), e.g. from: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'"
        )
    if config.basic_auth:
        try:
            load_credentials(config.basic_auth)
        except CredentialsError as exc:
            raise _UsageError(str(exc)) from None
    try:
        open_store(config.store_url).close()  # each process opens its own when it serves
    except (ValueError, StoreUnavailable) as exc:
        raise _UsageError(str(exc)) from None
    return oauth


def _simulate(args: argparse.Namespace) -> int:
    from .model import Portfolio, simulate
    from .model.market import walk_frame

    out = args.out
    if out is not None and out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise _UsageError(f"--out {out}: use a .csv or .parquet file name")
    symbols = len(args.symbols) if args.symbols else None
    overrides = {"drift": args.drift, "volatility": args.volatility}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        if symbols is None:
            portfolio = Portfolio.from_csv(args.portfolio) if args.portfolio else Portfolio.sample()
            symbols = len(portfolio)
        # The prices, the time index and pandas' copies of them: refused if they cannot
        # fit, rather than attempted until the machine runs out of memory.
        _check_fits("--steps", args.steps, symbols + 1, copies=3)
        if args.symbols:
            prices = simulate(args.symbols, args.steps, seed=args.seed, dt=args.dt, **overrides)
        else:
            walk = portfolio.random_walk(seed=args.seed, dt=args.dt, **overrides)
            prices = walk_frame(walk, args.steps)
    except (ValueError, OverflowError) as exc:  # PortfolioError is a ValueError
        raise _UsageError(str(exc)) from None
    except MemoryError:
        raise _UsageError(
            f"--steps {args.steps:,}: not enough memory for {args.steps:,} rows of "
            f"{symbols} symbols; simulate fewer steps"
        ) from None
    if out is None:
        prices.to_csv(sys.stdout)
        return 0
    if out.suffix.lower() == ".csv":
        prices.to_csv(out)
    else:
        try:
            prices.to_parquet(out)
        except ImportError:
            raise _UsageError(
                "writing Parquet needs pyarrow: pip install 'finflow_panel[parquet]'"
            ) from None
    print(f"wrote {len(prices)} rows x {prices.shape[1]} symbols to {out}", file=sys.stderr)
    return 0


def _available_memory() -> int:
    """Bytes of memory this process could still use (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _check_fits(option: str, rows: int, columns: int, copies: int = 1) -> None:
    """Refuse ``rows`` x ``columns`` float64 values (``copies`` times) that cannot fit."""
    needed = rows * columns * 8 * copies
    available = _available_memory()
    if needed > available:
        raise _UsageError(
            f"{option} {rows:,}: {rows:,} rows of {columns} columns need about "
            f"{needed / 2**30:,.1f} GiB of memory; {available / 2**30:,.1f} GiB is available"
        )


class _UsageError(Exception):
    """Bad input detected after parsing: reported as one line, exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except _UsageError as exc:
        print(f"finflow-panel {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"finflow-panel {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
