"""`fallback` on a config (contract section 14): set, answered, cleared; chains; cycles and unknown keys refused
by the API (422 naming the chain), reported by the loader and `flask check` (the config serves without it)."""

from __future__ import annotations

import yaml

from fidesmail.web import auth
from tests.support import CONFIG, bearer, eventually, write_config

URL = "/api/v1/email/config"


def _post(client, headers, key, **more):
    body = {**CONFIG, "key": key, "name": f"Config {key}", **more}
    return client.post(URL, json=body, headers=headers)


def test_a_fallback_is_answered_written_at_the_top_level_and_cleared(client, headers, tree):
    assert _post(client, headers, "second").status_code == 200
    created = _post(client, headers, "first", fallback="second")
    assert created.status_code == 200, created.json
    assert created.json["fallback"] == "second"
    assert client.get(f"{URL}/first", headers=headers).json["fallback"] == "second"
    on_disk = yaml.safe_load((tree / "email" / "first.yaml").read_text())
    assert on_disk["fallback"] == "second" and "fallback" not in on_disk["details"]
    assert "fallback" not in client.get(f"{URL}/second", headers=headers).json  # none: left out
    cleared = client.patch(f"{URL}/first", json={"fallback": None}, headers=headers)
    assert cleared.status_code == 200 and "fallback" not in cleared.json
    assert "fallback" not in yaml.safe_load((tree / "email" / "first.yaml").read_text())
    again = client.patch(f"{URL}/first", json={"fallback": "second"}, headers=headers)
    assert again.status_code == 200 and again.json["fallback"] == "second"
    renamed = client.patch(f"{URL}/first", json={"name": "Renamed"}, headers=headers)
    assert renamed.json["fallback"] == "second"  # a PATCH without it keeps it


def test_chains_of_any_length(client, headers):
    keys = [f"c{n}" for n in range(6)]
    assert _post(client, headers, keys[-1]).status_code == 200
    for key, fallback in zip(reversed(keys[:-1]), reversed(keys[1:]), strict=True):
        assert _post(client, headers, key, fallback=fallback).status_code == 200
    listed = client.get(URL, headers=headers).json["items"]
    assert [item.get("fallback") for item in listed] == [*keys[1:], None]


def test_an_unknown_key_is_422_naming_the_chain(client, headers):
    answer = _post(client, headers, "first", fallback="nowhere")
    assert answer.status_code == 422
    assert answer.json["detail"] == [{"loc": ["body", "fallback"], "type": "value_error",
                                      "msg": "first -> nowhere: no email config has the key nowhere."}]
    assert client.get(f"{URL}/first", headers=headers).status_code == 404  # nothing written
    assert _post(client, headers, "first").status_code == 200
    patched = client.patch(f"{URL}/first", json={"fallback": "nowhere"}, headers=headers)
    assert patched.status_code == 422 and patched.json["detail"][0]["loc"] == ["body", "fallback"]
    assert "fallback" not in client.get(f"{URL}/first", headers=headers).json


def test_a_cycle_is_422_naming_the_chain(client, headers):
    assert _post(client, headers, "c").status_code == 200
    assert _post(client, headers, "b", fallback="c").status_code == 200
    assert _post(client, headers, "a", fallback="b").status_code == 200
    answer = client.patch(f"{URL}/c", json={"fallback": "a"}, headers=headers)
    assert answer.status_code == 422
    assert answer.json["detail"][0]["loc"] == ["body", "fallback"]
    assert answer.json["detail"][0]["msg"].startswith("c -> a -> b -> c is a cycle")
    itself = client.patch(f"{URL}/a", json={"fallback": "a"}, headers=headers)
    assert itself.status_code == 422 and itself.json["detail"][0]["msg"].startswith("a -> a is a cycle")
    assert "fallback" not in client.get(f"{URL}/c", headers=headers).json
    assert client.get(f"{URL}/a", headers=headers).json["fallback"] == "b"


def test_a_fallback_that_is_not_a_key_is_422_in_fidesops_words(client, headers):
    answer = _post(client, headers, "first", fallback="no spaces")
    assert answer.status_code == 422
    assert answer.json["detail"][0]["loc"] == ["body", "fallback"]
    assert "FidesKey" in answer.json["detail"][0]["msg"]
    assert _post(client, headers, "other", fallback=7).status_code == 422


def test_deleting_a_config_another_falls_back_to_is_409_naming_it(client, headers, tree):
    assert _post(client, headers, "backup").status_code == 200
    assert _post(client, headers, "main", fallback="backup").status_code == 200
    assert _post(client, headers, "other", fallback="backup").status_code == 200
    refused = client.delete(f"{URL}/backup", headers=headers)
    assert refused.status_code == 409
    assert refused.json["detail"] == ("The email config backup is the fallback of main, other: change or remove "
                                      "their fallback first.")
    assert (tree / "email" / "backup.yaml").exists()
    for key in ("main", "other"):
        assert client.patch(f"{URL}/{key}", json={"fallback": None}, headers=headers).status_code == 200
    assert client.delete(f"{URL}/backup", headers=headers).status_code == 204
    assert client.delete(f"{URL}/main", headers=headers).status_code == 204  # nobody falls back to it


def test_the_loader_reports_a_cycle_and_serves_both_without_their_fallback(client, headers, tree, runner):
    write_config(tree, "alpha", fallback="beta")
    write_config(tree, "beta", fallback="alpha")
    write_config(tree, "gamma", fallback="alpha")  # into the cycle, not on it: kept
    assert eventually(lambda: client.get(f"{URL}/gamma", headers=headers).status_code == 200)
    assert "fallback" not in client.get(f"{URL}/alpha", headers=headers).json
    assert "fallback" not in client.get(f"{URL}/beta", headers=headers).json
    assert client.get(f"{URL}/gamma", headers=headers).json["fallback"] == "alpha"
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2, lines
    fallback_line = next(n for n, line in enumerate((tree / "email" / "alpha.yaml").read_text().splitlines(), 1)
                         if line.startswith("fallback:"))
    assert lines[0] == (f"{tree}/email/alpha.yaml:{fallback_line}: fallback: alpha -> beta -> alpha is a cycle: a "
                        "message would come back to a config whose provider did not take it. alpha serves without "
                        "a fallback until this is fixed")
    assert lines[1].startswith(f"{tree}/email/beta.yaml:") and "beta -> alpha -> beta is a cycle" in lines[1]
    health = client.get("/health", headers=headers).json["last_reload"]
    assert any("alpha -> beta -> alpha" in problem["message"] for problem in health["problems"]), health


def test_the_loader_reports_an_unknown_key_and_the_config_keeps_serving(client, headers, tree, runner):
    write_config(tree, "lonely", fallback="gone")
    assert eventually(lambda: client.get(f"{URL}/lonely", headers=headers).status_code == 200)
    assert "fallback" not in client.get(f"{URL}/lonely", headers=headers).json
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    assert "lonely.yaml" in result.stdout and "lonely -> gone: no email config has the key gone." in result.stdout
    write_config(tree, "gone")
    assert eventually(lambda: client.get(f"{URL}/lonely", headers=headers).json.get("fallback") == "gone")
    assert runner.invoke(args=["check"]).exit_code == 0


def test_fides_messaging_config_api_takes_a_fallback_and_refuses_one_that_cannot_be_followed(client, headers):
    """fides' /messaging/config passes fidesmail's own `fallback` through, checked as /email/config checks it."""
    fides = bearer(auth.MESSAGING_READ, auth.MESSAGING_CREATE_OR_UPDATE)
    assert _post(client, headers, "second").status_code == 200
    body = {"key": "first", "service_type": "mailgun", "details": {"domain": "mg.example.com"}, "fallback": "second"}
    made = client.post("/api/v1/messaging/config", json=body, headers=fides)
    assert made.status_code == 200 and made.json["fallback"] == "second", made.json
    assert client.get(f"{URL}/first", headers=headers).json["fallback"] == "second"
    wrong = client.patch("/api/v1/messaging/config/second", json={
        "key": "second", "service_type": "mailgun", "details": {"domain": "mg.example.com"}, "fallback": "first"},
        headers=fides)
    assert wrong.status_code == 422 and wrong.json["detail"][0]["loc"] == ["body", "fallback"], wrong.json
    assert "second -> first -> second is a cycle" in wrong.json["detail"][0]["msg"]
    assert "fallback" not in client.get(f"{URL}/second", headers=headers).json  # nothing written
