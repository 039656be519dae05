"""What serves is decided by the signed certificate: the registry's `certified` column is only a cache.

Before, ``UPDATE models SET certified=1`` made a model whose signed certificate says NOT CERTIFIED
promotable, and `serve` then answered ``"certified": true``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tiny_serve import TinyHome, ready_client, register, registry_of, serve_app, tiny_home
from valuemulch.errors import ConfigError


def _tamper(home: TinyHome) -> None:
    """What anyone who can write registry.sqlite (mode 644, no key needed) can do."""
    with sqlite3.connect(home.registry) as con:
        con.execute("UPDATE models SET certified = 1")


@pytest.fixture
def uncertified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TinyHome:
    """A model whose signed certificate says NOT CERTIFIED, registered (not promoted), registry flag forged."""
    home = tiny_home(tmp_path, certified=False)
    monkeypatch.setenv("VALUEMULCH_KEYS", str(home.root / "keys"))  # its signer is this machine's own key
    register(home, promote=False)
    _tamper(home)
    return home


def test_a_forged_registry_flag_does_not_make_a_model_serve(uncertified: TinyHome) -> None:
    with pytest.raises(ConfigError, match="not certified"):
        serve_app(uncertified, model=uncertified.model_id)


def test_a_forged_registry_flag_does_not_make_a_model_promotable(uncertified: TinyHome) -> None:
    with pytest.raises(ConfigError, match="not certified"):
        registry_of(uncertified).promote(uncertified.model_id)  # trusting this machine's own key
    assert registry_of(uncertified).promoted() is None


def test_admin_promote_refuses_a_forged_flag(uncertified: TinyHome, tmp_path_factory: pytest.TempPathFactory) -> None:
    # a certified model serves; the forged one must not replace it
    good = tiny_home(Path(tmp_path_factory.mktemp("good")), signer=uncertified)
    register(good)
    with ready_client(serve_app(good)) as client:
        auth = {"Authorization": f"Bearer {good.admin_key}"}
        r = client.post("/v1/admin/promote", json={"model_id": uncertified.model_id}, headers=auth)
        assert r.status_code == 409 and "not certified" in r.json()["error"]["message"], r.text
        assert client.get("/v1/health").json()["model_id"] == good.model_id


def test_allow_uncertified_serves_it_marked_uncertified(uncertified: TinyHome) -> None:
    with ready_client(serve_app(uncertified, model=uncertified.model_id, allow_uncertified=True)) as client:
        health = client.get("/v1/health").json()
        assert health["certified"] is False and health["certificate_id"] is None, health
        r = client.post("/v1/decide", json={"community": "Britain", "question": "Is it good?", "options": ["Yes", "No"]})
        assert r.json()["certified"] is False and r.json()["certificate_id"] is None


def test_a_certificate_edited_after_signing_is_refused(tmp_path: Path) -> None:
    home = tiny_home(tmp_path)
    register(home)
    document = json.loads(home.certificate.read_text(encoding="utf-8"))
    document["evaluation"]["seen"]["per_community"]["Britain"]["one_minus_jsd"] = 0.99
    home.certificate.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ConfigError, match="does not match id"):
        serve_app(home)


def test_model_files_that_differ_from_the_certificate_are_refused(tmp_path: Path) -> None:
    home = tiny_home(tmp_path)
    register(home)
    (home.model_dir / "extra.txt").write_text("not certified", encoding="utf-8")
    with pytest.raises(ConfigError, match="files differ"):
        serve_app(home)


def test_the_own_key_comes_from_the_settings_given_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Settings object built in code is obeyed whole: with no --key, the trusted key is the one in
    ``settings.keys``. Before, the signer was looked up in $VALUEMULCH_KEYS and the model refused."""
    from valuemulch.serve import load_deployment
    from valuemulch.settings import Settings

    home = tiny_home(tmp_path)
    register(home)
    monkeypatch.setenv("VALUEMULCH_KEYS", str(tmp_path / "some-other-keys"))
    deployment = load_deployment(Settings(registry=home.registry, audit=home.audit, keys=home.root / "keys"), None)
    assert deployment.certified and deployment.model_id == home.model_id
