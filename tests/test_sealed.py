"""Sealed secrets: sealing, opening, tampering, key files, the sealed file and rotation."""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import stat
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fidesmail.runtime import startup
from fidesmail.sealing import envelope as envelopes
from fidesmail.sealing import keys, rotation, sealed_file, vault
from fidesmail.sealing.envelope import SealError
from fidesmail.sealing.keys import KeyringError
from fidesmail.sealing.sealed_file import SealedFile
from tests.support import parse_sealed

CK, FIELD = "my_mailgun", "mailgun_api_key"
PLACE = f"{CK}/{FIELD}"


def envelope_for(pair, value="key-0123456789abcdef", config_key=CK):
    """A value sealed for `pair` at `config_key`/mailgun_api_key."""
    return envelopes.seal(pair.public_key, config_key, FIELD, value)


def open_error(keyring, envelope, config_key=CK, field=FIELD) -> str:
    """The message open_sealed fails with."""
    with pytest.raises(SealError) as info:
        envelopes.open_sealed(keyring, config_key, field, envelope)
    return str(info.value)


def write_keyring(path: Path, pairs, mode=0o600) -> Path:
    """A keyring file as the service would keep it."""
    path.write_bytes(keys.dump_keyring(pairs))
    path.chmod(mode)
    return path


# --- sealing and opening --------------------------------------------------------------------


def test_value_sealed_with_public_key_opens_with_private_key():
    pair = keys.generate_keypair()
    value = "key-ünïcode-✓ with spaces"
    envelope = envelopes.seal(pair.public_key, CK, FIELD, value)

    assert envelopes.open_sealed([pair], CK, FIELD, envelope) == value
    assert envelope.isascii() and value not in envelope
    prefix, kid, _, _ = envelope.split(":")
    assert (prefix, kid) == ("fm1", pair.key_id)
    assert envelopes.key_id(envelope) == pair.key_id


def test_value_sealed_by_an_earlier_release_still_opens():
    # A committed secrets.sealed.yaml must keep opening: this pins the fm1 format
    # (key id, HKDF info, associated data, layout) to a value sealed once and stored here.
    pair = keys.KeyPair.from_private_key(X25519PrivateKey.from_private_bytes(bytes(range(32))))
    envelope = (
        "fm1:eedd883da0a94515:VICEEDcnmrcz6iJ9c-VKOVHfarooufTY6nvSusVRDyI:"
        "kID54c0A_Lkr05beGW2xxb9Oh806wRb1NEv90j3Y0juD3s9bCjb1y7C7I3k"
    )

    assert pair.key_id == "eedd883da0a94515"
    assert envelopes.open_sealed([pair], CK, FIELD, envelope) == "key-known-answer"


def test_sealing_twice_gives_different_envelopes():
    pair = keys.generate_keypair()
    first, second = envelope_for(pair), envelope_for(pair)

    assert first != second  # fresh ephemeral key and nonce each time
    assert envelopes.open_sealed([pair], CK, FIELD, first) == envelopes.open_sealed([pair], CK, FIELD, second)


def test_seal_refuses_bad_places_and_non_text():
    pair = keys.generate_keypair()
    with pytest.raises(SealError, match="config key must match"):
        envelopes.seal(pair.public_key, "bad key/", FIELD, "v")
    with pytest.raises(SealError, match=r"my_mailgun/Pass word: not a secret field name"):
        envelopes.seal(pair.public_key, CK, "Pass word", "v")
    with pytest.raises(SealError, match=r"my_mailgun/mailgun_api_key: value to seal must be text"):
        envelopes.seal(pair.public_key, CK, FIELD, b"bytes")


def test_every_single_changed_character_is_refused():
    pair = keys.generate_keypair()
    envelope = envelope_for(pair)
    alphabet = "0123456789abcdefABCDEF_-:xZ"
    for position, char in enumerate(envelope):
        replacement = next(c for c in alphabet if c != char)
        altered = envelope[:position] + replacement + envelope[position + 1:]
        message = open_error([pair], altered)
        assert message.startswith(f"{PLACE}: "), (position, message)


def test_altered_ciphertext_is_reported_as_tampered():
    pair = keys.generate_keypair()
    envelope = envelope_for(pair)
    last = "A" if envelope[-2] != "A" else "B"
    altered = envelope[:-2] + last + envelope[-1]

    assert open_error([pair], altered) == f"{PLACE}: {envelopes.TAMPERED}"


def test_every_truncation_is_refused():
    pair = keys.generate_keypair()
    envelope = envelope_for(pair)
    for length in range(len(envelope)):
        assert open_error([pair], envelope[:length]).startswith(f"{PLACE}: ")


def test_value_pasted_into_another_config_or_field_is_refused():
    pair = keys.generate_keypair()
    envelope = envelope_for(pair, config_key="other_config")

    assert open_error([pair], envelope) == f"{PLACE}: {envelopes.TAMPERED}"
    assert open_error([pair], envelope, config_key="other_config", field="smtp_password") == (
        f"other_config/smtp_password: {envelopes.TAMPERED}"
    )
    assert envelopes.open_sealed([pair], "other_config", FIELD, envelope)  # where it belongs, it opens


def test_value_sealed_for_another_key_pair_says_so():
    ours, theirs = keys.generate_keypair(), keys.generate_keypair()
    message = open_error([ours], envelope_for(theirs))

    assert message.startswith(f"{PLACE}: sealed for another key pair")
    assert theirs.key_id in message


def test_key_id_swapped_to_a_key_we_hold_still_does_not_open():
    first, second = keys.generate_keypair(), keys.generate_keypair()
    envelope = envelope_for(first).replace(first.key_id, second.key_id)

    assert open_error([first, second], envelope) == f"{PLACE}: {envelopes.TAMPERED}"


@pytest.mark.parametrize("envelope", [None, 42, b"fm1:abc", ["fm1"], "", "plain-api-key", "fm2:a:b:c"])
def test_non_envelopes_are_refused(envelope):
    pair = keys.generate_keypair()
    assert open_error([pair], envelope).startswith(f"{PLACE}: ")


def test_empty_keyring_opens_nothing():
    pair = keys.generate_keypair()
    assert "another key pair" in open_error([], envelope_for(pair))


# --- key pairs and key files ----------------------------------------------------------------


def test_key_pair_repr_and_key_id_show_no_private_key():
    pair = keys.generate_keypair()
    private_pem = keys.dump_keyring([pair]).decode()
    body = "".join(line for line in private_pem.splitlines() if not line.startswith(("#", "-----")))

    assert repr(pair) == f"KeyPair(key_id='{pair.key_id}')"
    assert body not in repr(pair) and body not in str(pair)
    assert len(pair.key_id) == 16 and pair.key_id == keys.key_id_of(pair.public_key)


def test_key_pair_refuses_a_key_id_that_is_not_its_own():
    one, other = keys.generate_keypair(), keys.generate_keypair()
    with pytest.raises(ValueError, match="does not belong"):
        keys.KeyPair(other.key_id, one.private_key)


def test_public_key_file_round_trips_and_names_its_key_id(tmp_path):
    pair = keys.generate_keypair()
    path = tmp_path / "seal.pub"
    path.write_bytes(keys.dump_public_key(pair.public_key))
    text = path.read_text()

    assert text.startswith("# ") and pair.key_id in text and "-----BEGIN PUBLIC KEY-----" in text
    loaded = keys.load_public_key(path)
    assert keys.key_id_of(loaded) == pair.key_id
    # Anyone with seal.pub alone can seal; the keyring opens it.
    assert envelopes.open_sealed([pair], CK, FIELD, envelopes.seal(loaded, CK, FIELD, "v")) == "v"


def test_public_key_file_missing_or_garbage_names_the_path(tmp_path):
    path = tmp_path / "seal.pub"
    with pytest.raises(KeyringError, match=f"public sealing key file {path} is missing"):
        keys.load_public_key(path)

    for garbage in (b"not a key\n", b"\xff\xfe\x00", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"):
        path.write_bytes(garbage)
        with pytest.raises(KeyringError, match=str(path)):
            keys.load_public_key(path)

    path.write_bytes(keys.dump_keyring([keys.generate_keypair()]))  # the private file by mistake
    with pytest.raises(KeyringError, match="exactly one PEM PUBLIC KEY"):
        keys.load_public_key(path)


def test_keyring_keeps_order_newest_first(tmp_path):
    pairs = [keys.generate_keypair() for _ in range(3)]
    path = write_keyring(tmp_path / "seal.key", pairs + [pairs[0]])

    loaded = keys.load_keyring(path)
    assert [pair.key_id for pair in loaded] == [pair.key_id for pair in pairs]
    assert rotation.drop_unused(sealed_file.EMPTY, loaded) == (loaded[0],)


def test_an_opened_value_is_kept_briefly_but_a_new_value_or_keyring_is_opened_at_once(tmp_path):
    """Vault.open keeps a plaintext for a burst of sends; resealing or rotating is never answered from it."""
    first, second = keys.generate_keypair(), keys.generate_keypair()
    keyring_path = write_keyring(tmp_path / "seal.key", [first])
    opener = vault.Vault(keyring_path)
    sealed = SealedFile().with_value(CK, FIELD, envelope_for(first, "key-first-000000"))
    assert opener.open(sealed, CK, FIELD) == "key-first-000000"
    assert opener.open(sealed, CK, FIELD) == "key-first-000000"  # kept: no envelope opened

    resealed = sealed.with_value(CK, FIELD, envelope_for(first, "key-second-00000"))
    assert opener.open(resealed, CK, FIELD) == "key-second-00000"

    # The keyring file replaced by one without the first key: the kept plaintext is not used.
    write_keyring(keyring_path, [second])
    os.utime(keyring_path, ns=(1, 1))
    with pytest.raises(SealError):
        opener.open(resealed, CK, FIELD)


def test_an_opened_value_is_forgotten_after_two_seconds(tmp_path, monkeypatch):
    """The plaintext stays in memory for a burst of sends, no longer: then the envelope is opened again."""
    keyring_path = write_keyring(tmp_path / "seal.key", [keys.generate_keypair()])
    now = [1000.0]
    opener = vault.Vault(keyring_path, timer=lambda: now[0])
    pair = keys.load_keyring(keyring_path)[0]
    sealed = SealedFile().with_value(CK, FIELD, envelope_for(pair, "key-kept-briefly"))
    opened = []
    really_open = vault.open_usable
    monkeypatch.setattr(vault, "open_usable", lambda *args: opened.append(args[1]) or really_open(*args))
    assert opener.open(sealed, CK, FIELD) == opener.open(sealed, CK, FIELD) == "key-kept-briefly"
    assert len(opened) == 1
    now[0] += vault.OPENED_SECONDS + 0.01
    assert opener.open(sealed, CK, FIELD) == "key-kept-briefly"
    assert len(opened) == 2


def test_missing_keyring_names_the_path(tmp_path):
    path = tmp_path / "seal.key"
    with pytest.raises(KeyringError) as info:
        keys.load_keyring(path)
    assert str(info.value) == f"private sealing key file {path} is missing"
    assert info.value.path == str(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_unreadable_keyring_names_the_path(tmp_path):
    path = write_keyring(tmp_path / "seal.key", [keys.generate_keypair()], mode=0o000)
    with pytest.raises(KeyringError, match=f"private sealing key file {path} cannot be read: permission denied"):
        keys.load_keyring(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage\n",
        b"\x00\xff binary",
        b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIP\n-----END PRIVATE KEY-----\n",
    ],
    ids=["empty", "text", "binary", "bad-base64", "truncated-key"],
)
def test_garbage_keyring_names_the_path(tmp_path, content):
    path = tmp_path / "seal.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyringError, match=f"private sealing key file {path}"):
        keys.load_keyring(path)


def test_keyring_with_a_public_key_or_a_stray_line_is_refused(tmp_path):
    pair = keys.generate_keypair()
    path = tmp_path / "seal.key"
    path.write_bytes(keys.dump_public_key(pair.public_key))
    with pytest.raises(KeyringError, match="key 1 is not a PEM PRIVATE KEY block"):
        keys.load_keyring(path)

    path.write_bytes(keys.dump_keyring([pair]) + b"stray text\n")
    with pytest.raises(KeyringError, match=r"line \d+ is not part of a key"):
        keys.load_keyring(path)


def test_keyring_that_is_a_directory_is_refused(tmp_path):
    with pytest.raises(KeyringError, match=str(tmp_path)):
        keys.load_keyring(tmp_path)


def test_keyring_readable_by_others_warns_and_still_works(tmp_path, caplog):
    pair = keys.generate_keypair()
    path = write_keyring(tmp_path / "seal.key", [pair], mode=0o644)

    with caplog.at_level(logging.WARNING, logger="fidesmail.sealing"):
        keyring = keys.load_keyring(path)

    assert envelopes.open_sealed(keyring, CK, FIELD, envelope_for(pair, "v")) == "v"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "fidesmail.sealing"]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage() and "0644" in warnings[0].getMessage()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file of another owner needs root")
@pytest.mark.parametrize("mode, advice", [(0o440, None), (0o400, None), (0o444, "defaultMode: 0440"),
                                          (0o660, "defaultMode: 0440")])
def test_a_mounted_keyring_of_another_owner(tmp_path, caplog, mode, advice):
    """A Kubernetes Secret mounted 0440 with fsGroup (root-owned, group-readable) is accepted without a warning
    that cannot be acted on; one others can read says what to change in the mount, never 'chmod 600'."""
    pair = keys.generate_keypair()
    path = write_keyring(tmp_path / "seal.key", [pair], mode=mode)
    os.chown(path, 12345, 10001)
    with caplog.at_level(logging.WARNING, logger="fidesmail.sealing"):
        assert keys.load_keyring(path)[0].key_id == pair.key_id
    warnings = [r.getMessage() for r in caplog.records if r.name == "fidesmail.sealing"]
    if advice is None:
        assert warnings == []
    else:
        [warning] = warnings
        assert advice in warning and "chmod 600" not in warning and str(path) in warning


def test_keyring_with_mode_0600_does_not_warn(tmp_path, caplog):
    path = write_keyring(tmp_path / "seal.key", [keys.generate_keypair()])
    with caplog.at_level(logging.DEBUG, logger="fidesmail.sealing"):
        keys.load_keyring(path)
    assert not caplog.records


# --- ensure_keys ----------------------------------------------------------------------------


def test_first_start_generates_keyring_and_public_key(tmp_path, caplog):
    keyring_path = tmp_path / "instance" / "seal.key"
    public_path = tmp_path / "config" / "seal.pub"
    with caplog.at_level(logging.INFO):
        startup.ensure_sealing_keys(keyring_path, public_path, read_only=False)

    assert stat.S_IMODE(keyring_path.stat().st_mode) == 0o600
    keyring = keys.load_keyring(keyring_path)
    assert len(keyring) == 1
    assert keys.key_id_of(keys.load_public_key(public_path)) == keyring[0].key_id
    assert any(str(keyring_path) in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
    assert any(str(public_path) in r.getMessage() for r in caplog.records)


def test_second_start_changes_nothing(tmp_path, caplog):
    keyring_path, public_path = tmp_path / "seal.key", tmp_path / "seal.pub"
    startup.ensure_sealing_keys(keyring_path, public_path, read_only=False)
    before = keyring_path.read_bytes(), public_path.read_bytes()
    caplog.clear()

    with caplog.at_level(logging.DEBUG):
        startup.ensure_sealing_keys(keyring_path, public_path, read_only=False)

    assert (keyring_path.read_bytes(), public_path.read_bytes()) == before
    assert not caplog.records


def test_public_key_not_matching_the_newest_key_is_never_written_over(tmp_path):
    # Contract section 7 (changed from the earlier "rewritten"): seal.pub is committed by the team; a
    # service whose keyring does not match it reports the mismatch instead of replacing the team's key.
    old, new = keys.generate_keypair(), keys.generate_keypair()
    keyring_path = write_keyring(tmp_path / "seal.key", [new, old])
    public_path = tmp_path / "seal.pub"
    public_path.write_bytes(keys.dump_public_key(old.public_key))
    before = public_path.read_bytes()

    startup.ensure_sealing_keys(keyring_path, public_path, read_only=False)

    assert public_path.read_bytes() == before
    assert "seal.pub holds key " + old.key_id in keys.mismatch(old.key_id, keys.load_keyring(keyring_path))


def test_committed_public_key_without_its_private_key_generates_nothing(tmp_path, caplog):
    # A fresh key pair here would strand every value sealed for the committed seal.pub.
    foreign = keys.generate_keypair()
    public_path = tmp_path / "seal.pub"
    public_path.write_bytes(keys.dump_public_key(foreign.public_key))

    with caplog.at_level(logging.INFO):
        startup.ensure_sealing_keys(tmp_path / "seal.key", public_path, read_only=False)

    assert not (tmp_path / "seal.key").exists()
    assert keys.key_id_of(keys.load_public_key(public_path)) == foreign.key_id
    assert any(r.levelno == logging.ERROR and str(tmp_path / "seal.key") in r.getMessage() for r in caplog.records)


def test_unwritable_public_key_path_warns_and_does_not_raise(tmp_path, caplog):
    blocker = tmp_path / "config"
    blocker.write_text("a file where the config dir should be\n")  # blocks writes even for root
    public_path = blocker / "seal.pub"

    with caplog.at_level(logging.INFO):
        startup.ensure_sealing_keys(tmp_path / "seal.key", public_path, read_only=False)

    assert (tmp_path / "seal.key").exists()
    assert any(r.levelno == logging.WARNING and str(public_path) in r.getMessage() for r in caplog.records)


def test_garbage_keyring_is_left_alone_and_logged(tmp_path, caplog):
    keyring_path = tmp_path / "seal.key"
    keyring_path.write_bytes(b"not a key, maybe half a restore\n")
    keyring_path.chmod(0o600)
    public_path = tmp_path / "seal.pub"

    with caplog.at_level(logging.INFO):
        startup.ensure_sealing_keys(keyring_path, public_path, read_only=False)

    assert keyring_path.read_bytes() == b"not a key, maybe half a restore\n"
    assert not public_path.exists()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and str(keyring_path) in errors[0].getMessage()


def _start(paths: tuple[str, str]) -> str:
    """One worker starting: ensure the keys, answer the newest key id."""
    startup.ensure_sealing_keys(paths[0], paths[1], read_only=False)
    return keys.load_keyring(paths[0])[0].key_id


def test_workers_starting_at_once_agree_on_one_key(tmp_path):
    paths = (str(tmp_path / "instance" / "seal.key"), str(tmp_path / "seal.pub"))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=6, mp_context=context) as pool:
        key_ids = set(pool.map(_start, [paths] * 12))

    keyring = keys.load_keyring(paths[0])
    assert len(keyring) == 1 and key_ids == {keyring[0].key_id}
    assert keys.key_id_of(keys.load_public_key(paths[1])) == keyring[0].key_id


# --- the sealed file ------------------------------------------------------------------------


def sealed_file_text(**values) -> bytes:
    """A version 1 file holding `values` (config key -> envelope) under mailgun_api_key."""
    lines = ["version: 1", "secrets:"]
    for config_key, envelope in values.items():
        lines += [f"  {config_key}:", f"    {FIELD}: {envelope}"]
    return ("\n".join(lines) + "\n").encode()


def test_sealed_file_parses_and_shows_fields_in_the_clear():
    pair = keys.generate_keypair()
    envelope = envelope_for(pair)
    parsed, problems = parse_sealed(sealed_file_text(my_mailgun=envelope))

    assert problems == []
    assert parsed.version == 1
    assert parsed.fields_of(CK) == frozenset({FIELD})
    assert parsed.fields_of("absent") == frozenset()
    assert parsed.get(CK, FIELD) == envelope
    assert parsed.lines[(CK, FIELD)] == 4


@pytest.mark.parametrize("data", [b"", b"\n\n", b"# nothing sealed yet\n"])
def test_empty_file_means_no_secrets(data):
    assert parse_sealed(data) == (SealedFile(), [])


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"\x00\x01\x02garbage", 1, "not a text file"),
        (b"\xff\xfe bad", 1, "not UTF-8"),
        (b"version: 1\nsecrets: [\n", 3, "flow"),
        (b"- a list\n", 1, "must be a mapping"),
        (b"secrets: {}\n", 1, "`version` is missing"),
        (b"version: 2\nsecrets: {}\n", 1, "unsupported version 2"),
        (b"version: '1'\nsecrets: {}\n", 1, "unsupported version '1'"),
        (b"version: true\nsecrets: {}\n", 1, "unsupported version True"),
        (b"version: 1\nsecrets: a string\n", 2, "`secrets` must map config keys"),
        (b"version: 1\nversion: 1\n", 2, "duplicate key"),
        (b"version: 1\nsecret: {}\n", 2, "unknown key 'secret'"),
    ],
)
def test_broken_sealed_file_gives_one_clear_problem(data, line, words):
    parsed, problems = parse_sealed(data, "secrets.sealed.yaml")

    assert parsed.entries == {}
    assert len(problems) == 1
    assert problems[0].line == line and words in problems[0].message
    assert str(problems[0]).startswith(f"secrets.sealed.yaml:{line}: ")


def test_bad_entries_are_reported_and_good_ones_kept():
    pair = keys.generate_keypair()
    good = envelope_for(pair)
    data = (
        "version: 1\n"
        "secrets:\n"
        f"  good_one:\n    {FIELD}: {good}\n"          # 3-4
        "  bad key!:\n    mailgun_api_key: x\n"        # 5-6
        "  no_fields: a string\n"                       # 7
        f"  typo:\n    mailgun-api-key: {good}\n"      # 8-9
        "  number:\n    mailgun_api_key: 12345\n"      # 10-11
        "  pasted:\n    mailgun_api_key: key-plaintext-oops\n"  # 12-13
        f"  half_good:\n    {FIELD}: {good[:40]}\n"     # 14-15: cut inside the ephemeral key
    ).encode()
    parsed, problems = parse_sealed(data, "config/secrets.sealed.yaml")

    assert dict(parsed.entries) == {"good_one": {FIELD: good}}
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (5, "config key 'bad key!' must match ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"),
        (7, "no_fields"),
        (9, "typo/mailgun-api-key"),
        (11, "number/mailgun_api_key"),
        (13, "pasted/mailgun_api_key"),
        (15, "half_good/mailgun_api_key"),
    ]
    assert "not a secret field name" in problems[2].message
    assert "must be text, not int" in problems[3].message
    assert "key-plaintext-oops" not in " ".join(str(p) for p in problems)
    assert all(str(p).startswith("config/secrets.sealed.yaml:") for p in problems)


def test_dump_round_trips_through_parse_and_safe_load():
    pair = keys.generate_keypair()
    tricky = ["yes", "null", "1.0", "0x10", "_x", "a.b-c", "Z"]
    secrets_file = SealedFile({key: {FIELD: envelope_for(pair, config_key=key)} for key in tricky})
    data = sealed_file.dump(secrets_file)

    assert parse_sealed(data) == (secrets_file, [])
    loaded = yaml.safe_load(data)
    assert loaded == {"version": 1, "secrets": {key: dict(fields) for key, fields in secrets_file.entries.items()}}
    assert list(loaded["secrets"]) == sorted(tricky)
    for key in tricky:
        assert envelopes.open_sealed([pair], key, FIELD, loaded["secrets"][key][FIELD]) == "key-0123456789abcdef"


def test_empty_sealed_file_dumps_and_parses_back():
    data = sealed_file.dump(SealedFile())
    assert yaml.safe_load(data) == {"version": 1, "secrets": {}}
    assert parse_sealed(data) == (SealedFile(), [])


def test_sealed_file_is_immutable_and_edits_make_copies():
    pair = keys.generate_keypair()
    one = SealedFile({"a": {FIELD: envelope_for(pair, config_key="a")}})
    two = one.with_value("b", FIELD, envelope_for(pair, config_key="b"))

    with pytest.raises(TypeError):
        one.entries["c"] = {}
    with pytest.raises(TypeError):
        one.entries["a"][FIELD] = "x"
    assert one.fields_of("b") == frozenset() and two.fields_of("b") == {FIELD}
    assert two.without_config("a").fields_of("a") == frozenset()
    assert two.fields_of("a") == {FIELD}
    assert list(two.without_config("a").entries) == ["b"]


def test_check_opens_reports_each_value_that_does_not_open():
    ours, theirs = keys.generate_keypair(), keys.generate_keypair()
    data = sealed_file_text(
        good=envelope_for(ours, config_key="good"),
        moved=envelope_for(ours, config_key="good"),
        foreign=envelope_for(theirs, config_key="foreign"),
    )
    parsed, problems = parse_sealed(data)
    assert problems == []

    found = vault.check_opens(parsed, [ours], "config/secrets.sealed.yaml")

    assert [str(p) for p in found] == [
        (
            f"config/secrets.sealed.yaml:8: foreign/{FIELD}: sealed for another key pair "
            f"(key id {theirs.key_id}, not in the private keyring)"
        ),
        f"config/secrets.sealed.yaml:6: moved/{FIELD}: {envelopes.TAMPERED}",
    ]


def test_rotation_over_three_generations():
    gen1 = keys.generate_keypair()
    values = {"alpha": "key-alpha", "beta": "key-beta", "gamma": "key-gamma"}
    first = SealedFile({key: {FIELD: envelope_for(gen1, value, key)} for key, value in values.items()})

    second, keyring2 = rotation.rotate(first, [gen1])
    third, keyring3 = rotation.rotate(second, keyring2)

    assert len(keyring3) == 3 and keyring3[1:] == keyring2 and keyring2[1] == gen1
    gen3 = keyring3[0]
    for key, value in values.items():
        for generation in (first, second, third):
            assert envelopes.open_sealed(keyring3, key, FIELD, generation.get(key, FIELD)) == value
        assert envelopes.key_id(third.get(key, FIELD)) == gen3.key_id

    newest_only = rotation.drop_unused(third, keyring3)  # `third` uses only the newest key
    assert newest_only == (gen3,)
    for key, value in values.items():
        assert envelopes.open_sealed(newest_only, key, FIELD, third.get(key, FIELD)) == value
        message = open_error(newest_only, first.get(key, FIELD), config_key=key)
        assert message == (
            f"{key}/{FIELD}: sealed for another key pair (key id {gen1.key_id}, not in the private keyring)"
        )
    assert vault.check_opens(third, newest_only) == []
    assert len(vault.check_opens(first, newest_only)) == 3


def test_rotation_survives_the_keyring_file(tmp_path):
    gen1 = keys.generate_keypair()
    path = write_keyring(tmp_path / "seal.key", [gen1])
    rotated, keyring = rotation.rotate(SealedFile({CK: {FIELD: envelope_for(gen1, "v")}}), keys.load_keyring(path))
    write_keyring(path, keyring)
    data = sealed_file.dump(rotated)

    reloaded, problems = parse_sealed(data)
    assert problems == []
    assert envelopes.open_sealed(keys.load_keyring(path), CK, FIELD, reloaded.get(CK, FIELD)) == "v"


def test_rotation_stops_on_a_value_that_does_not_open():
    ours, theirs = keys.generate_keypair(), keys.generate_keypair()
    sealed_file = SealedFile({"a": {FIELD: envelope_for(ours, config_key="a")}, "b": {FIELD: envelope_for(theirs)}})

    with pytest.raises(SealError, match=f"^b/{FIELD}: "):
        rotation.rotate(sealed_file, [ours])


# --- no secret leaks ------------------------------------------------------------------------


def _error_text(call) -> str:
    """Everything an error would show: its message, repr and formatted traceback."""
    try:
        call()
    except (SealError, KeyringError, ValueError) as exc:
        return f"{exc}\n{exc!r}\n{''.join(traceback.format_exception(exc))}"
    return ""


def test_canary_secret_never_appears_in_errors_or_logs(tmp_path, caplog):
    canary = "key-" + secrets.token_hex(16)
    pair, other = keys.generate_keypair(), keys.generate_keypair()
    envelope = envelope_for(pair, canary)
    private_body = keys.dump_keyring([pair]).decode().splitlines()[3]  # a line of key material
    texts = []

    with caplog.at_level(logging.DEBUG):
        for position in range(len(envelope)):
            altered = envelope[:position] + ("A" if envelope[position] != "A" else "B") + envelope[position + 1:]
            texts.append(_error_text(lambda a=altered: envelopes.open_sealed([pair], CK, FIELD, a)))
            texts.append(_error_text(lambda p=position: envelopes.open_sealed([pair], CK, FIELD, envelope[:p])))
        texts.append(_error_text(lambda: envelopes.open_sealed([pair], "elsewhere", FIELD, envelope)))
        texts.append(_error_text(lambda: envelopes.open_sealed([other], CK, FIELD, envelope)))
        texts.append(_error_text(lambda: envelopes.open_sealed([], CK, FIELD, envelope)))
        texts.append(_error_text(lambda: envelopes.open_sealed([pair], CK, FIELD, canary)))
        texts.append(_error_text(lambda: envelopes.seal(pair.public_key, "bad key", FIELD, canary)))
        texts.append(_error_text(lambda: envelopes.seal(pair.public_key, CK, "nope", canary)))
        texts.append(_error_text(lambda: rotation.rotate(SealedFile({"x": {FIELD: envelope}}), [pair])))

        # The plaintext pasted into the sealed file by mistake, in every wrong spot.
        file_text = (
            f"version: 1\nsecrets:\n  a:\n    {FIELD}: {canary}\n  b:\n    other: {canary}\n"
            f"  c:\n    {FIELD}: {envelope}\n"
        ).encode()
        parsed, problems = parse_sealed(file_text)
        texts += [str(p) for p in problems]
        texts += [str(p) for p in vault.check_opens(parsed, [pair])]
        texts += [str(p) for p in vault.check_opens(parsed, [other])]
        texts.append(repr(parsed))

        # Key files holding the canary where a key should be.
        garbage = tmp_path / "seal.key"
        garbage.write_text(f"{canary}\n")
        garbage.chmod(0o644)
        texts.append(_error_text(lambda: keys.load_keyring(garbage)))
        texts.append(_error_text(lambda: keys.load_public_key(garbage)))
        startup.ensure_sealing_keys(garbage, tmp_path / "seal.pub", read_only=False)

        # A real keyring with loose permissions: the warning must not quote the key.
        loose = write_keyring(tmp_path / "loose.key", [pair], mode=0o644)
        keyring = keys.load_keyring(loose)
        texts += [repr(keyring), str(keyring)]

    assert len(problems) == 2 and len([t for t in texts if t]) > 2 * len(envelope)
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "WARNING" in caplog.text and "ERROR" in caplog.text
    for text in [*texts, logged]:
        assert canary not in text
        assert private_body not in text
