"""GET /metrics: after a known sequence of requests every counter is exactly what it must be, in
the Prometheus text format as the official client library parses it."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import GATEWAY_KEY, PROVIDER_KEY, oa_body, uniq

CHAT = "/v1/chat/completions"


def scrape(gw) -> tuple[str, dict]:
    r = gw.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return r.text, samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_a_known_sequence(gateway_factory):
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY)
    assert gw.get("/metrics", key=None).status_code == 401
    prompt = uniq("metered")
    first = gw.post(CHAT, oa_body(prompt))                                   # L1a miss, L3 answers
    assert first.status_code == 200 and first.headers["X-Isartor-Layer"] == "l3"
    usage = first.json()["usage"]
    assert gw.post(CHAT, oa_body(prompt)).headers["X-Isartor-Layer"] == "l1a"  # exact hit
    assert gw.post(CHAT, oa_body(prompt), headers={"x-isartor-cache": "off"}).headers["X-Isartor-Layer"] == "l3"
    assert gw.post(CHAT, oa_body(uniq("[[fail:429]]"))).status_code == 429
    assert gw.post("/v1/nothing", {}).status_code == 404

    text, s = scrape(gw)
    chat = {"route": CHAT}
    assert value(s, "isartor_requests_total", **chat, layer="l3", status="200") == 2
    assert value(s, "isartor_requests_total", **chat, layer="l1a", status="200") == 1
    assert value(s, "isartor_requests_total", **chat, layer="none", status="429") == 1
    assert value(s, "isartor_requests_total", route="other", layer="none", status="404") == 1
    assert value(s, "isartor_requests_total", route="/metrics", layer="none", status="401") == 1
    assert value(s, "isartor_errors_total") == 3
    assert value(s, "isartor_cache_events_total", cache="exact", event="hit") == 1
    assert value(s, "isartor_cache_events_total", cache="exact", event="miss") == 2
    assert value(s, "isartor_cache_events_total", cache="exact", event="bypass") == 1
    assert value(s, "isartor_layer_requests_total", layer="l3", outcome="answered") == 2
    assert value(s, "isartor_layer_requests_total", layer="l3", outcome="failed") == 1
    assert value(s, "isartor_upstream_responses_total", provider="openai", status="200") == 2
    assert value(s, "isartor_upstream_responses_total", provider="openai", status="429") == 1
    assert value(s, "isartor_deflected_requests_total") == 1
    assert value(s, "isartor_deflection_ratio") == pytest.approx(1 / 3)
    # Saved: the cached answer's own usage, not an estimate.
    assert value(s, "isartor_tokens_saved_total") == usage["prompt_tokens"] + usage["completion_tokens"]
    assert value(s, "isartor_tokens_total", layer="l3", type="prompt") == 2 * usage["prompt_tokens"]
    assert value(s, "isartor_request_duration_seconds_count", **chat, layer="l1a") == 1
    assert value(s, "isartor_layer_duration_seconds_count", layer="l3") == 3
    assert value(s, "isartor_cache_entries", cache="exact") == 1
    assert value(s, "isartor_cache_bytes", cache="exact") > 0
    assert value(s, "isartor_layer_ready", layer="l1a") == 1
    assert value(s, "isartor_requests_in_flight") == 1  # the scrape itself
    assert value(s, "isartor_build_info", version=gw.get("/health").json()["version"]) == 1
    for secret in (GATEWAY_KEY, PROVIDER_KEY):
        assert secret not in text


def test_streams_count_their_usage_once_they_end(gateway_factory):
    gw = gateway_factory("openai")
    prompt = uniq("metered stream")
    body = oa_body(prompt, stream=True, stream_options={"include_usage": True})
    assert gw.stream(CHAT, body).done()
    assert gw.stream(CHAT, body).done()  # replayed from the cache
    _, s = scrape(gw)
    chat = {"route": CHAT}
    assert value(s, "isartor_requests_total", **chat, layer="l3", status="200") == 1
    assert value(s, "isartor_requests_total", **chat, layer="l1a", status="200") == 1
    completion = value(s, "isartor_tokens_total", layer="l3", type="completion")
    assert completion > 0
    assert value(s, "isartor_tokens_total", layer="l1a", type="completion") == completion
    assert value(s, "isartor_response_bytes_total", **chat) > 0


def test_isartor_stats_prints_the_running_gateways_figures(gateway_factory):
    import json
    import subprocess

    from conftest import require_binary
    gw = gateway_factory("openai", ISARTOR__GATEWAY_API_KEY=GATEWAY_KEY)
    prompt = uniq("stats")
    for _ in range(3):
        assert gw.post(CHAT, oa_body(prompt)).status_code == 200
    run = lambda *args: subprocess.run([str(require_binary()), "stats", "--url", gw.url, *args],  # noqa: E731
                                       capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    out = run("--key", GATEWAY_KEY, "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["requests"] >= 3 and summary["deflected"] == 2  # and whatever the harness asked /health
    assert summary["layers"]["l1a"]["answered"] == 2 and summary["layers"]["l3"]["answered"] == 1
    assert summary["caches"]["exact"] == {"hits": 2, "misses": 1, "entries": 1, "bytes": summary["caches"]["exact"]["bytes"]}
    assert summary["upstream_responses"] == {"200": 1}
    table = run("--key", GATEWAY_KEY)
    assert table.returncode == 0 and "deflected 2 (66.7 %)" in table.stdout, table.stdout
    refused = run()
    assert refused.returncode == 1 and "--key" in refused.stderr
