"""The credentials file: salted scrypt hashes in Panel's JSON format."""

from __future__ import annotations

import json
import os
import stat

import pytest

from finflow_panel.store.credentials import (
    CredentialsError,
    add_user,
    check_password,
    hash_password,
    load_credentials,
    remove_user,
)

FAST = {"n": 2**10, "r": 8, "p": 1}  # a cheap hash for the tests that check formats


def test_a_hash_checks_its_password_only():
    secret = hash_password("correct horse")
    assert secret.startswith("scrypt$") and "correct horse" not in secret
    assert check_password("correct horse", secret)
    assert not check_password("correct horse ", secret)
    assert not check_password("", secret)
    # Salted: the same password never hashes the same way twice.
    assert hash_password("correct horse", **FAST) != hash_password("correct horse", **FAST)


@pytest.mark.parametrize(
    "secret",
    [
        "correct horse",  # plain text
        "scrypt$1024$8$1$c2FsdA",  # too few parts
        "scrypt$1000$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",  # n not a power of two
        "scrypt$1073741824$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",  # n far too costly
        "scrypt$1024$8$1$!!!$###",
    ],
)
def test_anything_but_a_sound_hash_never_matches(secret):
    assert not check_password("correct horse", secret)


def test_users_add_and_remove_write_the_file_atomically_for_its_owner(tmp_path):
    path = tmp_path / "users.json"
    assert add_user(path, "ann", "pw-ann") is True
    assert add_user(path, "bob", "pw-bob") is True
    assert add_user(path, "ann", "new-pw") is False  # a new password, same user
    users = load_credentials(path)
    assert set(users) == {"ann", "bob"}
    assert check_password("new-pw", users["ann"]) and not check_password("pw-ann", users["ann"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    remove_user(path, "bob")
    assert set(load_credentials(path)) == {"ann"}
    with pytest.raises(CredentialsError, match="no user 'bob'"):
        remove_user(path, "bob")
    assert [p.name for p in tmp_path.iterdir()] == ["users.json"]  # no temporary left


def test_a_plain_text_password_is_refused_naming_the_command(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"ann": hash_password("x", **FAST), "bob": "hunter2"}))
    with pytest.raises(CredentialsError) as error:
        load_credentials(path)
    message = str(error.value)
    assert f"finflow-panel users add bob --basic-auth {path}" in message
    assert "hunter2" not in message and "\n" not in message
    # The command it names repairs the file.
    add_user(path, "bob", "hunter3")
    assert set(load_credentials(path)) == {"ann", "bob"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"bad name!": "x"}', "user name 'bad name!' is not allowed"),
        ('{"ann": 5}', "secret of user 'ann' is not text"),
    ],
)
def test_a_malformed_file_is_one_clear_line(tmp_path, text, message):
    path = tmp_path / "users.json"
    path.write_text(text)
    with pytest.raises(CredentialsError, match=message):
        load_credentials(path)


def test_a_missing_file_names_the_command_that_creates_it(tmp_path):
    with pytest.raises(CredentialsError, match="finflow-panel users add NAME"):
        load_credentials(tmp_path / "none.json")


@pytest.mark.parametrize("name", ["", "a b", "../x", "x" * 65, "-x"])
def test_bad_user_names_are_refused(tmp_path, name):
    with pytest.raises(CredentialsError, match="is not allowed"):
        add_user(tmp_path / "users.json", name, "pw")
    assert not (tmp_path / "users.json").exists()


def test_empty_and_over_long_passwords_are_refused(tmp_path):
    for password, message in (("", "empty"), ("x" * 1025, "longer than 1024")):
        with pytest.raises(CredentialsError, match=message):
            add_user(tmp_path / "users.json", "ann", password)
