"""Failover in the outbox (contract sections 11 and 14): `Prefer: respond-async`, against every provider's stand-in.

A queued message walks its config's chain as a synchronous send does (one record, one message_id, one
Idempotency-Key, the fallback's From); what the outbox adds is its gates: a primary whose gate is closed is passed
over at once (its messages do not wait for its probe), and it is still probed at its gate's time, so that once
it is back its own messages go to it again.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select, update

from fidesmail.outbox.gates import GATE_THRESHOLD
from fidesmail.records.database import engine_url
from fidesmail.records.messages import now_ms
from fidesmail.records.schema import messages, outbox_gates, rate_limits
from fidesmail.web import auth
from tests.failover_parts import PAIRS, SEND, VERIFY, configure, failovers, link, settings_for, standins
from tests.support import bearer, eventually, record, settled

ASYNC = {"Prefer": "respond-async"}


@pytest.fixture(scope="module")
def stands():
    with standins() as started:
        yield started


@pytest.fixture
def make_client(make_app, stands):
    def make(**more):
        for stand in stands.values():
            stand.reset()
        client = make_app(**settings_for(stands, **more)).test_client()
        configure(client, stands)
        return client
    return make


@pytest.fixture
def client(make_client):
    return make_client()


def queue(client, key: str, **headers):
    answer = client.post(SEND, json={**VERIFY, "config_key": key},
                         headers={**bearer(auth.SEND), **ASYNC, **headers})
    assert answer.status_code == 202, answer.json
    return answer


def way(got: dict) -> list[tuple[str, str]]:
    """The record's attempts as (config, outcome)."""
    return [(a["config_key"], a["outcome"]) for a in got["attempts"]]


@pytest.mark.parametrize("primary,fallback", PAIRS)
@pytest.mark.slow
def test_a_queued_message_fails_over_and_its_idempotency_key_replays_the_one_message(client, stands, primary,
                                                                                      fallback):
    first, second = stands[primary], stands[fallback]
    link(client, primary, fallback)
    first.standin.down()
    answer = queue(client, primary, **{"Idempotency-Key": f"later-{primary}"})
    message_id = answer.json["message_id"]
    got = settled(client, message_id)
    assert (got["status"], got["config_key"], got["sent_via"], got["provider"]) == \
        ("accepted", primary, fallback, second.service_type)
    assert way(got) == [(primary, "server_error"), (fallback, "accepted")]
    assert [a["provider"] for a in got["attempts"]] == [first.service_type, second.service_type]
    assert second.taken(message_id) == [second.sender] and first.reached == 1
    # The key replayed after the failover, queued or not: the same message, posted nowhere again.
    again = client.post(SEND, json={**VERIFY, "config_key": primary},
                        headers={**bearer(auth.SEND), **ASYNC, "Idempotency-Key": f"later-{primary}"})
    assert again.status_code == 202 and again.json["message_id"] == message_id
    assert again.headers["Location"] == answer.headers["Location"]
    sync = client.post(SEND, json={**VERIFY, "config_key": primary},
                       headers={**bearer(auth.SEND), "Idempotency-Key": f"later-{primary}"})
    assert sync.json["message_id"] == message_id
    listed = client.get(f"/api/v1/email/messages?config_key={primary}", headers=bearer(auth.READ)).json
    assert [item["message_id"] for item in listed["items"]] == [message_id]
    assert first.reached == 1 and second.taken(message_id) == [second.sender]
    assert failovers(client) == {(first.service_type, second.service_type): 1.0}


@pytest.mark.parametrize("primary,fallback,fault,first_outcome", [
    ("ses", "md", "key refused", "refused"),
    ("sg", "ses", "throttled", "rate_limited"),
    ("md", "sg", "unreachable", "connection_failed"),
    ("mg", "md", "key refused", "refused"),
])
def test_every_proof_that_nothing_was_sent_fails_over_in_the_outbox(client, stands, primary, fallback, fault,
                                                                    first_outcome):
    first, second = stands[primary], stands[fallback]
    link(client, primary, fallback)
    if fault == "key refused":
        wrong = {"mg": {"mailgun_api_key": "key-" + "0" * 32},
                 "ses": {**first.secrets, "aws_secret_access_key": "not-the-secret-" + "z" * 24}}[primary]
        assert client.put(f"/api/v1/email/config/{primary}/secret", json=wrong, headers=bearer()).status_code == 200
    elif fault == "throttled":
        first.standin.throttle_next(retry_after=600)  # a wait the fallback does not make the message wait
    else:
        first.standin.down(refuse=True)  # no connection at all
    got = settled(client, queue(client, primary).json["message_id"])
    assert (got["status"], got["sent_via"], got["provider"]) == ("accepted", fallback, second.service_type)
    assert way(got) == [(primary, first_outcome), (fallback, "accepted")]
    assert second.taken(got["message_id"]) == [second.sender]


def test_a_message_no_provider_of_its_chain_took_by_the_deadline_names_the_last(make_client, stands):
    client = make_client(DELIVERY_DEADLINE=1.0)
    link(client, "mg", "sg")
    stands["mg"].standin.down()
    stands["sg"].standin.down()
    got = settled(client, queue(client, "mg").json["message_id"], timeout=20)
    assert got["status"] == "failed" and got["failure_reason"].startswith("gave up after "), got
    posted = [a for a in got["attempts"] if a["outcome"] != "not_sent"]
    assert {a["config_key"] for a in posted} == {"mg", "sg"}  # both tried, neither took it
    # It names the provider whose answer came last (a config passed over behind its gate was not tried).
    assert (got["provider"], got["sent_via"]) == (posted[-1]["provider"], posted[-1]["config_key"])
    assert "503" in got["failure_reason"] and not stands["mg"].standin.sent and not stands["sg"].standin.accepted


def test_wait_answers_200_when_the_fallback_took_it_in_time(client, stands):
    link(client, "mg", "ses")
    stands["mg"].standin.down()
    answer = client.post(SEND, json={**VERIFY, "config_key": "mg"},
                         headers={**bearer(auth.SEND), "Prefer": "respond-async, wait=10"})
    assert answer.status_code == 200, answer.json
    assert (answer.json["config_key"], answer.json["provider"]) == ("mg", "aws_ses")
    assert stands["ses"].taken(answer.json["message_id"]) == [stands["ses"].sender]


def test_a_queued_message_whose_key_is_missing_goes_to_the_fallback(make_app, stands):
    for stand in stands.values():
        stand.reset()
    client = make_app(**settings_for(stands)).test_client()
    configure(client, stands, without_secrets=("sg",))
    link(client, "sg", "mg")
    got = settled(client, queue(client, "sg").json["message_id"])
    assert (got["status"], got["sent_via"], got["provider"]) == ("accepted", "mg", "mailgun")
    assert stands["sg"].reached == 0


def test_a_refusal_of_the_message_never_fails_over_in_the_outbox(client, stands):
    link(client, "sg", "md")
    stands["sg"].standin.fail_next(400, message="'to' parameter is not a valid address")
    got = settled(client, queue(client, "sg").json["message_id"])
    assert (got["status"], got["sent_via"], way(got)) == ("failed", "sg", [("sg", "refused")])
    assert stands["md"].reached == 0 and failovers(client) == {}


def test_what_may_have_sent_never_fails_over_in_the_outbox(client, stands):
    link(client, "md", "ses")
    stands["md"].standin.close_next()  # the request went out; no answer came
    got = settled(client, queue(client, "md").json["message_id"])
    assert (got["status"], got["sent_via"], got["provider"]) == ("unknown", "md", "mailchimp_transactional")
    assert stands["ses"].reached == 0 and stands["md"].reached == 1  # and never posted again


def test_when_the_whole_chain_is_down_the_last_keeps_its_retries_until_one_is_back(make_client, stands):
    client = make_client(OUTBOX_BACKOFF=0.05, OUTBOX_MAX_BACKOFF=0.1)
    link(client, "ses", "mg")
    stands["ses"].standin.down()
    stands["mg"].standin.down()
    message_id = queue(client, "ses").json["message_id"]
    assert _eventually_tried(client, message_id, lambda got: ("mg", "server_error") in way(got))
    stands["mg"].standin.up()
    got = settled(client, message_id)
    assert (got["status"], got["sent_via"], got["provider"]) == ("accepted", "mg", "mailgun")
    assert stands["mg"].taken(message_id) == [stands["mg"].sender]


def _eventually_tried(client, message_id, predicate, timeout: float = 15.0) -> bool:
    return eventually(lambda: predicate(record(client, message_id)), timeout)


# --- the primary's gate: passed over while closed, probed at its time -----------------------------------------


def _gate(database_url: str, key: str):
    with create_engine(engine_url(database_url)).connect() as connection:
        return connection.execute(select(outbox_gates).where(outbox_gates.c.config_key == key)).first()


def _closed(database_url: str, key: str) -> bool:
    gate = _gate(database_url, key)
    return gate is not None and gate.closed_until > 0


def _time_comes(database_url: str, key: str) -> None:
    """The primary's gate reaches its time (the test does not wait the backoff out)."""
    engine = create_engine(engine_url(database_url))
    with engine.begin() as connection:
        connection.execute(update(outbox_gates).where(outbox_gates.c.config_key == key)
                           .values(closed_until=now_ms() - 1))
    engine.dispose()


@pytest.mark.slow
def test_a_closed_gate_sends_new_messages_to_the_fallback_at_once_and_the_primary_gets_its_own_back(
        make_client, stands, database_url):
    # A gate's wait of 30 s or more: every message here settles long before the primary's probe would be due.
    client = make_client(DATABASE_URL=database_url, OUTBOX_BACKOFF=60, OUTBOX_MAX_BACKOFF=120)
    mg = stands["mg"]
    link(client, "mg", "ses")
    mg.standin.down()
    for _ in range(GATE_THRESHOLD):  # an outage, not a hiccup: each of these tries mg, then goes to SES
        got = settled(client, queue(client, "mg").json["message_id"])
        assert (got["status"], way(got)) == ("accepted", [("mg", "server_error"), ("ses", "accepted")])
    gate = _gate(database_url, "mg")
    assert gate.closed_until > now_ms() + 20_000  # closed: its probe is far away
    assert mg.reached == GATE_THRESHOLD
    mg.standin.up()  # back, but its gate's time has not come: new messages go on to SES, none waits for it
    passed_over = [queue(client, "mg").json["message_id"] for _ in range(4)]
    for message_id in passed_over:
        got = settled(client, message_id)
        assert (got["status"], got["sent_via"], got["provider"]) == ("accepted", "ses", "aws_ses")
        assert way(got) == [("mg", "not_sent"), ("ses", "accepted")]
        assert "waits behind its gate" in got["attempts"][0]["detail"]
    assert mg.reached == GATE_THRESHOLD  # passed over, not tried
    # Its time comes while it is down again: one message probes it, then goes on to SES at once.
    mg.standin.down()
    _time_comes(database_url, "mg")
    got = settled(client, queue(client, "mg").json["message_id"])
    assert way(got) == [("mg", "server_error"), ("ses", "accepted")]
    assert mg.reached == GATE_THRESHOLD + 1 and _gate(database_url, "mg").closed_until > now_ms() + 20_000
    # Its time comes again, and now it answers: the probe takes the message, and the gate opens.
    mg.standin.up()
    _time_comes(database_url, "mg")
    probe = settled(client, queue(client, "mg").json["message_id"])
    assert (probe["status"], probe["sent_via"], way(probe)) == ("accepted", "mg", [("mg", "accepted")])
    assert _gate(database_url, "mg") is None
    back = settled(client, queue(client, "mg").json["message_id"])
    assert (back["sent_via"], back["provider"]) == ("mg", "mailgun")
    assert mg.taken(back["message_id"]) == [mg.sender]
    assert failovers(client) == {("mailgun", "aws_ses"): float(GATE_THRESHOLD + 4 + 1)}


@pytest.mark.slow
def test_messages_parked_behind_a_gate_go_to_a_fallback_added_later(make_client, stands, tmp_path):
    database_url = f"sqlite:///{tmp_path / 'gated.db'}"
    client = make_client(DATABASE_URL=database_url, OUTBOX_BACKOFF=60, OUTBOX_MAX_BACKOFF=120)
    md, sg = stands["md"], stands["sg"]
    md.standin.down()
    ids = [queue(client, "md").json["message_id"] for _ in range(GATE_THRESHOLD + 3)]
    # Without a fallback, md's queue waits behind its gate (parked) once it closed. Wait for the gate itself:
    # until it closes, a message that failed waits out its own backoff (60 s), fallback or not.
    assert eventually(lambda: _closed(database_url, "md"), 15)
    link(client, "md", "sg")  # the fallback arrives: the parked messages are due, and go to SendGrid
    for message_id in ids:
        got = settled(client, message_id, timeout=30)
        assert (got["status"], got["sent_via"], got["provider"]) == ("accepted", "sg", "twilio_email")
        assert sg.taken(message_id) == [sg.sender]
    assert md.reached <= GATE_THRESHOLD + 3


# --- a fallback's own rate_limit --------------------------------------------------------------------------------


@pytest.mark.parametrize("queued", [False, True], ids=["sync", "respond-async"])
def test_a_message_that_fails_over_takes_a_slot_of_the_fallbacks_rate_limit(make_client, stands, tmp_path, queued):
    database_url = f"sqlite:///{tmp_path / 'paced.db'}"
    client = make_client(DATABASE_URL=database_url)
    link(client, "mg", "sg")
    assert client.patch("/api/v1/email/config/sg", json={"rate_limit": 50}, headers=bearer()).status_code == 200
    stands["mg"].standin.down()
    for _ in range(3):
        answer = client.post(SEND, json={**VERIFY, "config_key": "mg"},
                             headers={**bearer(auth.SEND), **(ASYNC if queued else {})})
        got = settled(client, answer.json["message_id"])
        assert (got["status"], got["sent_via"]) == ("accepted", "sg")
    engine = create_engine(engine_url(database_url))
    with engine.connect() as connection:
        paced = connection.execute(select(rate_limits.c.config_key)).scalars().all()
    engine.dispose()
    assert paced == ["sg"]  # SendGrid's limiter handed out the slots (mg has no rate_limit)


def test_a_failed_probe_closes_the_gate_for_its_backoff_not_for_the_probes_hold(make_client, stands, tmp_path):
    """The probe's taker holds the gate for as long as one post may take (3 s with a 1 s timeout) so no other
    message probes meanwhile; a 503 then closes it for the gate's own backoff (here under half a second)."""
    database_url = f"sqlite:///{tmp_path / 'probe.db'}"
    client = make_client(DATABASE_URL=database_url, OUTBOX_BACKOFF=0.2, OUTBOX_MAX_BACKOFF=0.4)
    link(client, "mg", "ses")
    stands["mg"].standin.down()
    for _ in range(GATE_THRESHOLD):
        settled(client, queue(client, "mg").json["message_id"])
    _time_comes(database_url, "mg")
    probe = settled(client, queue(client, "mg").json["message_id"])
    assert way(probe) == [("mg", "server_error"), ("ses", "accepted")]
    assert _gate(database_url, "mg").closed_until < now_ms() + 2000


@pytest.mark.slow
def test_a_workers_hold_on_a_message_covers_one_post_to_each_config_of_the_longest_chain(make_client, stands,
                                                                                         tmp_path):
    """So that a primary slow to refuse still leaves time to go on down the chain in the same claim (a 1 s
    provider timeout: one post may take 3 s, a hold without a chain is 5 s; a chain of three adds two posts)."""
    database_url = f"sqlite:///{tmp_path / 'hold.db'}"
    client = make_client(DATABASE_URL=database_url)
    link(client, "mg", "sg", "md")
    stands["mg"].standin.slow_next(1.5)  # answered late (then taken): the message is `sending` meanwhile
    message_id = queue(client, "mg").json["message_id"]
    engine = create_engine(engine_url(database_url))

    def held():
        with engine.connect() as connection:
            return connection.execute(select(messages.c.status, messages.c.lease_until, messages.c.updated_at)
                                      .where(messages.c.id == message_id)).first()
    try:
        assert eventually(lambda: held().status == "sending", timeout=10)
        row = held()
    finally:
        engine.dispose()
    assert row.lease_until - row.updated_at == 5000 + 2 * 3000
    assert settled(client, message_id)["sent_via"] == "mg"
