"""The sign-in credentials file: Panel's ``{"user": "secret"}`` JSON, with hashed secrets.

Panel's ``--basic-auth FILE`` compares plain-text passwords. Here each secret is a salted
``hashlib.scrypt`` hash in a self-describing string, ``scrypt$n$r$p$salt$hash`` (salt
and hash in URL-safe base64), checked in constant time. ``finflow-panel users add`` and
``users remove`` write the file (atomically, readable by its owner only); a file holding
anything that is not such a hash is refused whole, naming the user and the command that
hashes their password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from pathlib import Path

__all__ = [
    "CredentialsError",
    "add_user",
    "check_name",
    "check_password",
    "hash_password",
    "load_credentials",
    "remove_user",
]

#: scrypt cost: one of OWASP's recommended settings (N=2**15, r=8, p=3: 32 MiB and
#: ~0.2 s a check here). The server checks passwords off its loop, a few at a time.
_N, _R, _P = 2**15, 8, 3
_SALT_BYTES, _HASH_BYTES = 16, 32
_MAXMEM = 64 * 2**20
_PREFIX = "scrypt$"
#: User names: what fits in a cookie, a URL and a log line without escaping.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
#: A credentials file bigger than this is not one (refused before it is parsed).
_MAX_FILE_BYTES = 4 * 2**20
#: Longer passwords are refused: hashing is bounded per login attempt.
MAX_PASSWORD_CHARS = 1024


class CredentialsError(ValueError):
    """The credentials file or a user name or password is unusable; one line says why."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_name(name: str) -> str:
    """``name`` if it may be a user name, else CredentialsError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CredentialsError(
            f"user name {name!r} is not allowed: 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """A salted scrypt hash of ``password``, as stored in the credentials file."""
    if not isinstance(password, str) or not password:
        raise CredentialsError("the password is empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise CredentialsError(f"the password is longer than {MAX_PASSWORD_CHARS} characters")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=_HASH_BYTES
    )
    return f"{_PREFIX}{n}${r}${p}${_b64(salt)}${_b64(digest)}"


def _parse(secret: str) -> tuple[int, int, int, bytes, bytes] | None:
    if not isinstance(secret, str) or not secret.startswith(_PREFIX):
        return None
    parts = secret.split("$")
    if len(parts) != 6:
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None
    # Bounds keep a tampered file from making one login cost minutes or gigabytes.
    if not (2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        return None
    if 128 * n * r > _MAXMEM or n * r * p > 2**20 or len(salt) < 8 or len(digest) < 16:
        return None
    return n, r, p, salt, digest


def check_password(password: str, secret: str) -> bool:
    """Whether ``password`` matches the stored hash ``secret`` (constant-time compare)."""
    parsed = _parse(secret)
    if parsed is None or not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
        return False
    n, r, p, salt, digest = parsed
    candidate = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=len(digest)
    )
    return hmac.compare_digest(candidate, digest)


def load_credentials(
    path: str | os.PathLike, *, missing_ok: bool = False, hashed: bool = True
) -> dict[str, str]:
    """The users and password hashes in ``path``; CredentialsError (one line) if the file
    is unreadable, not Panel's JSON format, or (``hashed``) holds a password that is not
    hashed."""
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise CredentialsError(
                f"{path}: over {_MAX_FILE_BYTES >> 20} MiB, not a credentials file"
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise CredentialsError(
            f"{path}: no such credentials file (create it with: finflow-panel users add NAME "
            f"--basic-auth {path})"
        ) from None
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CredentialsError(f"{path}: not UTF-8 text") from None
    try:
        users = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise CredentialsError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(users, dict):
        raise CredentialsError(f'{path}: expected a JSON object {{"user": "hash", ...}}')
    for name, secret in users.items():
        try:
            check_name(name)
        except CredentialsError as exc:
            raise CredentialsError(f"{path}: {exc}") from None
        if not isinstance(secret, str):
            raise CredentialsError(f"{path}: the secret of user {name!r} is not text")
        if hashed and _parse(secret) is None:
            raise CredentialsError(
                f"{path}: the password of user {name!r} is not hashed; hash it with: "
                f"finflow-panel users add {name} --basic-auth {path}"
            )
    return users


def _write(path: Path, users: dict[str, str]) -> None:
    """Replace ``path`` atomically: a crash leaves the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(users, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_user(path: str | os.PathLike, name: str, password: str) -> bool:
    """Add ``name`` or change their password; True if the user is new."""
    path = Path(path)
    check_name(name)
    # A file with plain-text passwords is repaired user by user with this command.
    users = load_credentials(path, missing_ok=True, hashed=False)
    new = name not in users
    users[name] = hash_password(password)
    _write(path, users)
    return new


def remove_user(path: str | os.PathLike, name: str) -> None:
    path = Path(path)
    users = load_credentials(path, hashed=False)
    if name not in users:
        raise CredentialsError(f"{path}: no user {name!r}")
    del users[name]
    _write(path, users)
