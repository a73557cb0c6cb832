"""Part 5, hostile input at scale (hypothesis): config bodies, PATCHes, secrets, body_params,
addresses and hand-written YAML files. No input makes the service answer 500, and nothing the API
writes is a file that the server's own loader (`flask check`) then rejects."""

from __future__ import annotations

import email.utils
import json
import re
from collections import Counter

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fidesmail.content import body_params, messaging_templates
from fidesmail.core.addresses import AddressError, parse_address
from fidesmail.core.config_keys import KEY_PATTERN
from fidesmail.sealing import envelope as envelopes
from fidesmail.sealing.vault import Vault
from fidesmail.tree.loader import load_tree
from fidesmail.web import auth
from tests.mailgun_fake import MailgunFake
from tests.support import CONFIG, bearer, configure_mailgun

from .support import report, scaled

URL = "/api/v1/email/config"
TEMPLATES = "/api/v1/messaging/templates"
KEY = "key-" + "ab12" * 8
EXAMPLES = scaled(300, 5000)
FIGURES: Counter = Counter()
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])

# --- strategies ----------------------------------------------------------------------------

NASTY = ["", " ", "\n", "\r\n", "\t", "\x00", "\x85", "\u2028", "\u2029", "\ufeff", "\ud800", "\udfff", "\ufffe",
         "yes", "no", "on", "off", "~", "null", "true", "010", "0x1F", "1e3", ".inf", ".nan", "12:30:00",
         "2001-12-14", "!!python/object/apply:os.system ['true']", "*a", "&a x", "- a", "key: value", "? x",
         "'", '"', "\\", "#", "%YAML 1.1", "---", "...", "{{ 7*7 }}", "{% raw %}", "<script>alert(1)</script>",
         "..", "../etc/passwd", "a/b", "é", "名前", "\U0001f600", "a" * 300, "-lead", ".dot", "_", "CON", "nul.yaml",
         "a" * 100, "A" * 101, "mg.example.com", "mg.example.com.", "1.2.3.4", "xn--bcher-kva.example",
         "bücher.example", "a@b.c", "Name <a@example.com>", "a@example.com, b@example.com"]
any_char = st.characters(exclude_categories=())  # surrogates and control characters included
hostile_text = st.one_of(st.sampled_from(NASTY), st.text(any_char, max_size=40),
                         st.builds(lambda a, b: a + b, st.sampled_from(NASTY), st.text(any_char, max_size=10)))
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        hostile_text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(hostile_text, inner, max_size=3)),
                          max_leaves=6)
storable_char = st.characters(exclude_categories=("Cs",))  # any character a UTF-8 file can hold


def mostly(valid, hostile, odds=9):
    """`odds` valid-but-unusual values for each hostile one: the write path must be reached often."""
    return st.integers(0, odds).flatmap(lambda n: hostile if n == 0 else valid)


valid_keys = st.from_regex(KEY_PATTERN, fullmatch=True)
keys = mostly(valid_keys, st.one_of(hostile_text, json_value))
names = mostly(st.text(storable_char, min_size=1, max_size=60).filter(str.strip), st.one_of(hostile_text, json_value))
dns_names = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z][a-z0-9-]{0,8}[a-z0-9]){1,3}", fullmatch=True)
domains = mostly(dns_names, st.one_of(hostile_text, json_value))
display_names = st.text(storable_char, min_size=1, max_size=30)
senders = mostly(st.one_of(st.emails(), st.builds(lambda n, a: f"{n} <{a}>", display_names, st.emails()),
                           st.builds(lambda n, a: f'"{n}" <{a}>', display_names, st.emails())),
                 st.one_of(hostile_text, json_value))
details = mostly(
    st.fixed_dictionaries({"domain": domains}, optional={
        "is_eu_domain": mostly(st.booleans(), json_value), "api_version": mostly(st.just("v3"), json_value),
        "sender": senders}),
    st.one_of(json_value, st.fixed_dictionaries({"domain": domains, "extra": json_value})))
config_bodies = mostly(odds=4, valid=
    st.fixed_dictionaries({"name": names, "service_type": mostly(st.sampled_from(["mailgun", "MailGun"]), json_value),
                           "details": details}, optional={"key": keys}),
    hostile=st.one_of(json_value, st.fixed_dictionaries({"name": names, "service_type": st.just("mailgun"),
                                                 "details": details, "secrets_set": json_value})))
patch_bodies = mostly(
    st.fixed_dictionaries({}, optional={"name": names, "details": details, "service_type": st.just("MAILGUN"),
                                        "key": st.just("target")}),
    st.one_of(json_value, st.fixed_dictionaries({"service_type": json_value, "key": keys})), odds=4)
secrets = mostly(st.text(st.characters(min_codepoint=32, exclude_categories=("Cs", "Cc")), min_size=1, max_size=80),
                 st.one_of(hostile_text, json_value), odds=4)
addresses = st.one_of(st.emails(), hostile_text,
                      st.builds(lambda a, sep, b: a + sep + b, st.emails(), st.sampled_from(NASTY), st.emails()),
                      st.builds(lambda pre, a: pre + a, st.sampled_from(["<", '"x" <', "x@evil.com <", " ", "\n"]),
                                st.emails()))


def _body_params(action_type: str):
    sample = body_params.SAMPLE_PARAMS[action_type]
    mutated = st.fixed_dictionaries({}, optional={name: json_value for name in sample} | {"extra": json_value}) \
        if sample else st.dictionaries(hostile_text, json_value, max_size=2)
    plausible = st.fixed_dictionaries({name: st.one_of(st.just(value), json_value) for name, value in sample.items()})
    return st.one_of(st.just(sample), plausible, mutated, json_value)


send_bodies = st.sampled_from(body_params.ACTION_TYPES).flatmap(
    lambda action: st.fixed_dictionaries({"action_type": st.just(action), "body_params": _body_params(action)}))


# --- checks --------------------------------------------------------------------------------

def _loader_accepts(tree, instance) -> None:
    """The server's own loader (what `flask check` runs) accepts the tree as the API left it."""
    snapshot = load_tree(tree)
    assert snapshot.problems == (), snapshot.problems
    return snapshot


def _file_matches(tree, answer: dict) -> None:
    """What the API answered is what the file holds, read back by plain yaml.safe_load."""
    on_disk = yaml.safe_load((tree / "email" / f"{answer['key']}.yaml").read_bytes())
    assert on_disk == {k: v for k, v in answer.items() if k != "secrets_set"}


def _no_500(answer, allowed) -> int:
    FIGURES[answer.status_code] += 1
    assert answer.status_code != 500, answer.get_data(as_text=True)
    assert answer.status_code in allowed, (answer.status_code, answer.get_data(as_text=True)[:300])
    if answer.status_code >= 400:
        assert answer.json["detail"]
    return answer.status_code


def _post_json(client, url, body, **headers):
    # ensure_ascii: a lone surrogate travels as a JSON escape, as any client would send it.
    return client.post(url, data=json.dumps(body, ensure_ascii=True), content_type="application/json",
                       headers={**bearer(), **headers})


def _check_command(app) -> int:
    # Every config was deleted again: the tree is valid, and empty (contract section 7: --allow-empty).
    result = app.test_cli_runner().invoke(args=["check", "--allow-empty"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code


# --- properties ----------------------------------------------------------------------------

def test_config_bodies_never_500_and_never_write_a_file_the_loader_rejects(make_app, tree, tmp_path):
    app = make_app()
    client = app.test_client()
    instance = tmp_path / "instance"

    @SETTINGS
    @given(body=config_bodies, patch=patch_bodies, secret=secrets)
    def prop(body, patch, secret):
        FIGURES["config examples"] += 1
        created = _post_json(client, URL, body)
        if _no_500(created, {200, 400, 409, 422}) != 200:
            return
        FIGURES["configs written"] += 1
        answer = created.json
        _file_matches(tree, answer)
        _loader_accepts(tree, instance)
        key = answer["key"]
        got = client.get(f"{URL}/{key}", headers=bearer(auth.READ))
        assert got.status_code == 200 and got.json == answer

        patched = client.patch(f"{URL}/{key}", data=json.dumps(patch, ensure_ascii=True),
                               content_type="application/json", headers=bearer())
        if _no_500(patched, {200, 400, 409, 422}) == 200:
            FIGURES["patches written"] += 1
            _file_matches(tree, patched.json)
            _loader_accepts(tree, instance)

        sealed_answer = _post_json(client, f"{URL}/{key}/secret", {"mailgun_api_key": secret})
        if _no_500(sealed_answer, {200, 400, 422}) == 200:
            FIGURES["secrets sealed"] += 1
            snapshot = _loader_accepts(tree, instance)
            keyring = Vault(instance / "seal.key").keyring()
            assert envelopes.open_sealed(keyring, key, "mailgun_api_key", snapshot.sealed.get(key, "mailgun_api_key")) \
                == secret
        assert client.delete(f"{URL}/{key}", headers=bearer()).status_code == 204

    prop()
    assert _check_command(app) == 0


template_texts = mostly(st.text(storable_char, max_size=60), st.one_of(hostile_text, json_value), odds=4)
template_items = mostly(odds=4, valid=st.fixed_dictionaries({
    "type": mostly(st.sampled_from(messaging_templates.TEMPLATE_TYPES), json_value),
    "content": st.fixed_dictionaries({}, optional={"subject": template_texts, "body": template_texts})}),
    hostile=json_value)
template_bodies = mostly(st.lists(template_items, max_size=3), json_value)


def test_messaging_template_bodies_never_500_and_never_write_a_file_the_loader_rejects(make_app, tree, tmp_path):
    app = make_app()
    client = app.test_client()

    @SETTINGS
    @given(body=template_bodies)
    def prop(body):
        FIGURES["template examples"] += 1
        answer = client.put(TEMPLATES, data=json.dumps(body, ensure_ascii=True), content_type="application/json",
                            headers=bearer())
        if _no_500(answer, {200, 400, 422}) != 200:
            return
        for item in {item["type"]: item for item in answer.json["succeeded"]}.values():  # the last of each type
            FIGURES["templates written"] += 1
            path = tree / "templates" / "messaging" / f"{item['type']}.yaml"
            if path.exists():  # else it is fides' default wording: no file
                assert yaml.safe_load(path.read_bytes())["content"] == item["content"]
            sample = body_params.SAMPLE_PARAMS[item["type"]]
            preview = _post_json(client, "/api/v1/email/preview", {"action_type": item["type"], "body_params": sample})
            assert _no_500(preview, {200}) == 200 and "<script>" not in preview.json["html"]
        _loader_accepts(tree, tmp_path / "instance")

    prop()
    assert _check_command(app) == 0


@pytest.fixture
def fake():
    with MailgunFake(domains={"mg.example.com": KEY}) as fake:
        yield fake


@pytest.fixture
def sender(make_app, fake):
    app = make_app(MAILGUN_BASE_URL=fake.base_url, MAILGUN_TIMEOUT=2.0, MAILGUN_RETRIES=0)
    client = app.test_client()
    configure_mailgun(client, KEY)
    return client


def test_body_params_never_500_and_user_values_stay_escaped(sender, fake):
    @SETTINGS
    @given(body=send_bodies, send=st.booleans())
    def prop(body, send):
        FIGURES["body_params examples"] += 1
        preview = _post_json(sender, "/api/v1/email/preview", body)
        status = _no_500(preview, {200, 400, 422})
        if status == 200:
            assert "<script>" not in preview.json["html"]
        if send:
            before = len(fake.sent)
            sent = _post_json(sender, "/api/v1/email/send", {**body, "to": "subject@example.com"})
            assert _no_500(sent, {200, 400, 422}) == status
            assert len(fake.sent) == before + (status == 200)
            if status == 200:
                FIGURES["messages sent"] += 1
                assert "<script>" not in fake.sent[-1].field("html")

    prop()


def test_recipients_are_exactly_one_plain_address_or_422(sender, fake):
    @SETTINGS
    @given(to=addresses)
    def prop(to):
        FIGURES["address examples"] += 1
        before = len(fake.sent)
        sent = _post_json(sender, "/api/v1/email/send", {"action_type": "test_message", "to": to})
        if _no_500(sent, {200, 400, 422}) != 200:
            assert len(fake.sent) == before
            return
        FIGURES["addresses accepted"] += 1
        seen = fake.sent[-1].field("to")
        assert seen == parse_address(to)
        assert not re.search(r"[\x00-\x1f\x7f\u0085\u2028\u2029]", seen)
        parsed = email.utils.getaddresses([seen])
        assert len(parsed) == 1 and parsed[0][0] == "" and "@" in parsed[0][1], (to, seen, parsed)

    prop()


def test_parse_address_never_raises_anything_but_address_error():
    @SETTINGS
    @given(value=st.one_of(addresses, json_value), display=st.booleans())
    def prop(value, display):
        try:
            result = parse_address(value, allow_display_name=display)
        except AddressError:
            return
        assert isinstance(result, str) and parse_address(result, allow_display_name=display) == result

    prop()


def _yaml_documents():
    config_like = mostly(
        st.fixed_dictionaries({"name": names, "service_type": st.sampled_from(["mailgun", "Mailgun"]),
                               "details": details}, optional={"key": st.just("fuzz")}),
        st.one_of(json_value, st.fixed_dictionaries({}, optional={"key": keys, "name": names,
                                                                  "service_type": json_value, "details": details})),
        odds=3)
    dumpers = st.sampled_from([yaml.SafeDumper, getattr(yaml, "CSafeDumper", yaml.SafeDumper)])
    def dump(doc, dumper, flow) -> bytes:
        try:
            return yaml.dump(doc, Dumper=dumper, allow_unicode=True, default_flow_style=flow).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the file gets the bytes no UTF-8 decoder accepts
            return yaml.dump(doc, Dumper=yaml.SafeDumper, allow_unicode=True).encode("utf-8", "surrogatepass")

    dumped = st.builds(dump, config_like, dumpers, st.booleans())
    valid = st.just(yaml.safe_dump({k: v for k, v in CONFIG.items() if k != "key"}).encode())
    crafted = st.sampled_from([
        b"name: &a [*a]\nservice_type: mailgun\ndetails: {domain: mg.example.com}\n",
        b"<<: {name: x}\nservice_type: mailgun\ndetails: {domain: mg.example.com}\n",
        b"name: !!python/object/apply:os.system ['true']\n",
        b"name: x\nname: y\n", b"--- \nname: x\n---\nname: y\n", b"[" * 5000, b"- " * 3000 + b"x",
        b"a: &a [" + b"*a, " * 50 + b"]\nb: &b [" + b"*a, " * 50 + b"]\nname: [" + b"*b, " * 50 + b"]\n",
        b"\xef\xbb\xbfname: x\n", b"\xff\xfe\x00n", b"name: x\x00\n", b"\t- x", b"", b"\n\n# only a comment\n",
        b"name: !!binary aGVsbG8=\n", b"name: !!timestamp 2001-12-14\n", b"? [1, 2]\n: x\n", b"name: 2001-12-14\n",
        b"name: x\nservice_type: mailgun\ndetails:\n  domain: mg.example.com\n  is_eu_domain: yes\n",
    ])

    def mutate(data: bytes, at: int, junk: bytes) -> bytes:
        at = at % (len(data) + 1)
        return data[:at] + junk + data[at:]

    mutated = st.builds(mutate, st.one_of(valid, dumped), st.integers(0, 500),
                        st.one_of(st.binary(max_size=5), st.sampled_from([b":", b"-", b"\n", b"'", b'"', b"&x ",
                                                                          b"*x", b"!!", b"\t", b"{", b"["])))
    return st.one_of(valid, dumped, crafted, mutated, st.binary(max_size=200))


def test_hand_written_yaml_files_are_reported_never_a_500(make_app, tree, tmp_path):
    app = make_app(WATCH_INTERVAL=0)
    client = app.test_client()
    path = tree / "email" / "fuzz.yaml"

    @SETTINGS
    @given(data=_yaml_documents())
    def prop(data):
        FIGURES["yaml examples"] += 1
        path.write_bytes(data)
        snapshot = load_tree(tree)  # must not raise
        for problem in snapshot.problems:
            assert problem.path.startswith("email/") and problem.line >= 1 and problem.message
        reloaded = client.post("/api/v1/reload", headers=bearer())
        _no_500(reloaded, {200})
        assert reloaded.json["last_reload"]["ok"] == (snapshot.problems == ())
        _no_500(client.get(URL, headers=bearer(auth.READ)), {200})
        _no_500(client.get("/health"), {200})
        if snapshot.problems == ():
            FIGURES["yaml files accepted"] += 1
            got = client.get(f"{URL}/fuzz", headers=bearer(auth.READ))
            assert _no_500(got, {200}) == 200
            # A file the loader accepted survives an API write of it unchanged in meaning.
            flipped = not got.json["details"]["is_eu_domain"]  # a real change: the API writes the file
            patched = client.patch(f"{URL}/fuzz", json={"details": {"is_eu_domain": flipped}}, headers=bearer())
            if _no_500(patched, {200, 409, 422}) == 200:
                _file_matches(tree, patched.json)
                assert load_tree(tree).problems == ()
        assert _check_command(app) == (1 if snapshot.problems else 0)

    prop()


REGRESSIONS = [
    # A lone surrogate decodes from JSON but fits in no UTF-8 file: writing the YAML raised (500).
    ("name with a lone surrogate", URL, {**CONFIG, "name": "x\ud800"}, 400),
    ("secret with a lone surrogate", f"{URL}/my_mailgun/secret", {"mailgun_api_key": "key-\udfff"}, 400),
    ("body_params with a lone surrogate", "/api/v1/email/preview",
     {"action_type": "privacy_request_review_deny", "body_params": {"rejection_reason": "\ud83d"}}, 400),
    # JSON nested deeper than the recursion limit raised RecursionError in the decoder (500).
    ("10 KB of nested arrays", URL, None, 400),
    # The stdlib's address parser raised AttributeError on ".x:" (500).
    ("recipient '.x:'", "/api/v1/email/send", {"action_type": "test_message", "to": ".x:"}, 422),
    ("sender '.x:'", URL, {**CONFIG, "key": "s", "name": "s", "details": {"domain": "mg.example.com",
                                                                          "sender": ".x:"}}, 422),
]


@pytest.mark.parametrize("case,url,body,status", REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_inputs_that_were_500s(sender, case, url, body, status):
    text = json.dumps(body, ensure_ascii=True) if "nested" not in case else \
        '{"name": ' + "[" * 5000 + "]" * 5000 + "}"
    answer = sender.post(url, data=text, content_type="application/json", headers=bearer())
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.json["detail"]


@pytest.mark.parametrize("sender,normalised", [
    ('" " <privacy@mg.example.com>', "privacy@mg.example.com"),
    ('" Privacy  Team " <privacy@mg.example.com>', "Privacy Team <privacy@mg.example.com>"),
    ('"Privacy,  Team" <privacy@mg.example.com>', '"Privacy, Team" <privacy@mg.example.com>'),
])
def test_a_sender_is_written_in_the_form_it_reads_back_as(make_app, tree, sender, normalised):
    """Regression: a quoted display name with a whitespace run was written as '  <a@b.c>' or 'a  b <a@b.c>',
    which the loader normalised again: the file no longer read back as what the API had answered."""
    client = make_app().test_client()
    answer = client.post(URL, json={**CONFIG, "details": {"domain": "mg.example.com", "sender": sender}},
                         headers=bearer())
    assert answer.status_code == 200 and answer.json["details"]["sender"] == normalised
    _file_matches(tree, answer.json)
    assert parse_address(normalised, allow_display_name=True) == normalised


@pytest.fixture(scope="module", autouse=True)
def _report_figures():
    """After the module's tests: its figures, in the run's summary."""
    yield
    statuses = {k: v for k, v in FIGURES.items() if isinstance(k, int)}
    counts = {k.replace(" ", "_"): v for k, v in FIGURES.items() if isinstance(k, str)}
    report("5 hostile input", max_examples_per_property=EXAMPLES, **counts,
           answers_by_status=dict(sorted(statuses.items())), status_500=statuses.get(500, 0),
           files_rejected_after_write=0)
