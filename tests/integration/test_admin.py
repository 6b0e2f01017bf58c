"""The operator's cache routes: stats, flush (all or one layer), deleting the entry of one request."""
from __future__ import annotations

import json

from conftest import GATEWAY_KEY, an_body, assert_openai_error, oa_body, uniq

CHAT = "/v1/chat/completions"


def layer_of(gw, path: str, body: dict) -> str:
    r = gw.post(path, body)
    assert r.status_code == 200, r.text
    return r.headers["X-Isartor-Layer"]


def test_admin_routes_need_a_gateway_key(gateway_factory):
    gw = gateway_factory("openai")
    for method, path in [("GET", "/admin/cache/stats"), ("POST", "/admin/cache/flush"), ("DELETE", "/admin/cache/entry")]:
        r = gw.request(method, path, json_body={})
        assert "ISARTOR__GATEWAY_API_KEY" in assert_openai_error(r, 403)["message"]


def test_admin_routes_need_an_admin_key(gateway_factory):
    """A team's key serves chat but not the operator's routes; a key marked admin and the single
    ISARTOR__GATEWAY_API_KEY do."""
    keys = [{"name": "team", "key": "team-key-0123456789"}, {"name": "ops", "key": "ops-key-0123456789", "admin": True}]
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY, ISARTOR__GATEWAY_API_KEYS=json.dumps(keys))
    assert gw.post(CHAT, oa_body(uniq("team chat")), key="team-key-0123456789").status_code == 200
    for method, path in [("GET", "/admin/cache/stats"), ("POST", "/admin/cache/flush"), ("DELETE", "/admin/cache/entry")]:
        r = gw.request(method, path, json_body={}, key="team-key-0123456789")
        err = assert_openai_error(r, 403)
        assert "'team' may not use the admin routes" in err["message"], err
    for key in ("ops-key-0123456789", GATEWAY_KEY):
        assert gw.request("GET", "/admin/cache/stats", key=key).status_code == 200
    assert gw.request("POST", "/admin/cache/flush", json_body={}, key="ops-key-0123456789").status_code == 200


def test_stats_flush_and_delete_one_entry(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY)
    assert gw.get("/admin/cache/stats", key="wrong").status_code == 401
    kept, dropped = oa_body(uniq("kept")), oa_body(uniq("dropped"))
    anthropic_body = an_body(uniq("anthropic entry"))
    for path, body in [(CHAT, kept), (CHAT, dropped), ("/v1/messages", anthropic_body)]:
        assert layer_of(gw, path, body) == "l3"
        assert layer_of(gw, path, body) == "l1a"
    stats = gw.get("/admin/cache/stats").json()
    assert stats["l1a"]["entries"] == 3 and stats["l1a"]["bytes"] > 0
    assert stats["l1a"]["hits"] == 3 and stats["l1a"]["misses"] == 3 and "l1b" not in stats

    # One request's entry goes; the others stay.
    r = gw.request("DELETE", "/admin/cache/entry", json_body={"request": dropped})
    assert r.status_code == 200 and r.json() == {"deleted": {"l1a": True}}, r.text
    r = gw.request("DELETE", "/admin/cache/entry", json_body={"request": dropped})
    assert r.json() == {"deleted": {"l1a": False}}
    r = gw.request("DELETE", "/admin/cache/entry", json_body={"route": "/v1/messages", "request": anthropic_body})
    assert r.json() == {"deleted": {"l1a": True}}
    assert layer_of(gw, CHAT, dropped) == "l3"
    assert layer_of(gw, "/v1/messages", anthropic_body) == "l3"
    assert layer_of(gw, CHAT, kept) == "l1a"
    bad = gw.request("DELETE", "/admin/cache/entry", json_body={"request": {"messages": "nope"}})
    assert assert_openai_error(bad, 400)["param"] == "messages"

    assert assert_openai_error(gw.post("/admin/cache/flush", {"layer": "l1b"}), 404)["param"] == "layer"
    assert assert_openai_error(gw.post("/admin/cache/flush", {"layer": ""}), 400)["param"] == "layer"
    r = gw.post("/admin/cache/flush", {"layer": "l1a"})
    assert r.status_code == 200 and r.json() == {"flushed": ["l1a"]}
    assert gw.get("/admin/cache/stats").json()["l1a"]["entries"] == 0
    assert layer_of(gw, CHAT, kept) == "l3"
    assert gw.post("/admin/cache/flush").json() == {"flushed": ["l1a"]}
    assert gw.get("/admin/cache/stats").json()["l1a"]["entries"] == 0
