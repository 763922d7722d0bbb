"""Sign-in with hashed passwords, through Panel's login page convention.

Panel's ``BasicAuthProvider`` serves ``/login`` (form fields ``username`` and
``password``) and ``/logout``, and on success sets its signed ``user`` cookie. This
provider keeps all of that and changes three things: the credentials file holds salted
scrypt hashes (`finflow_panel.store.credentials`), checked off the event loop a few at a
time; the login and logout pages load nothing from outside (Panel's link its CDN); and
the home page stays open to everyone.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tornado.escape
from panel.auth import BasicAuthProvider, BasicLoginHandler, LogoutHandler, _validate_next_url
from panel.io.state import state

from ..store.credentials import (
    MAX_PASSWORD_CHARS,
    CredentialsError,
    check_password,
    hash_password,
    load_credentials,
)

__all__ = ["Credentials", "HashedBasicAuthProvider"]

log = logging.getLogger(__name__)

_TEMPLATES = Path(__file__).parent / "templates"
#: Sign-in attempts checked at once; more wait, and past the queue are refused (429):
#: each check is ~0.2 s of a core, and the loop's own work must not starve.
_CHECKERS = 2
_QUEUE = 16


class Credentials:
    """The credentials file, re-read when it changes (``users add`` takes effect without a
    restart). A change that makes it unreadable keeps the last good users, logged once."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._users = load_credentials(self.path)  # start-up: a bad file is an error
        self._stamp = self._file_stamp()
        # Unknown users cost a check too, so timing does not tell who has an account.
        self._decoy = hash_password("decoy password that matches nothing")

    def _file_stamp(self):
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def users(self) -> dict[str, str]:
        stamp = self._file_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._users = load_credentials(self.path)
            except CredentialsError as error:
                log.error("%s; keeping the users read before", error)
        return self._users

    def check(self, name: str, password: str) -> bool:
        secret = self.users().get(name)
        matched = check_password(password, secret or self._decoy)
        return matched and secret is not None


class _LoginHandler(BasicLoginHandler):
    _credentials: Credentials
    _executor = ThreadPoolExecutor(_CHECKERS, thread_name_prefix="finflow-login")
    _waiting = 0

    async def post(self) -> None:
        name = self.get_argument("username", "")
        password = self.get_argument("password", "")
        if len(name) > 64 or len(password) > MAX_PASSWORD_CHARS or not name or not password:
            self._refuse()
            return
        cls = type(self)
        if cls._waiting >= _QUEUE:
            self.set_status(429)
            self.finish("Too many sign-in attempts at once; try again in a few seconds.")
            return
        cls._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._executor, self._credentials.check, name, password)
        finally:
            cls._waiting -= 1
        if ok:
            self.set_current_user(name)
            self.redirect(_validate_next_url(self.get_cookie("next_url", state.base_url)))
        else:
            log.info("refused a sign-in for %r from %s", name[:64], self.request.remote_ip)
            self._refuse()

    def _refuse(self) -> None:
        message = tornado.escape.url_escape("Invalid username or password!")
        self.redirect(f"{self.request.path}?error={message}")  # as Panel's, minus any query


class HashedBasicAuthProvider(BasicAuthProvider):
    """Panel's basic auth with a hashed credentials file; ``/`` needs no sign-in."""

    def __init__(self, credentials: Credentials, guest_endpoints: list[str] | None = None):
        self.credentials = credentials  # Bokeh's validation below reads login_handler
        super().__init__(
            login_template=str(_TEMPLATES / "login.html"),
            logout_template=str(_TEMPLATES / "logout.html"),
            guest_endpoints=guest_endpoints if guest_endpoints is not None else ["/"],
        )

    @property
    def login_handler(self):
        return type(
            "FinFlowLoginHandler",
            (_LoginHandler,),
            {
                "_credentials": self.credentials,
                "_login_endpoint": self._login_endpoint,
                "_login_template": self._login_template,
            },
        )

    @property
    def logout_handler(self):
        return type(
            "FinFlowLogoutHandler",
            (LogoutHandler,),
            {"_logout_template": self._logout_template, "_login_endpoint": self._login_endpoint},
        )
