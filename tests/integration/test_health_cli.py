"""Health endpoints, the command line, configuration errors and configuration sources."""
from __future__ import annotations

import re
import time

from conftest import PROVIDER_KEY, free_port, provider_env, run_isartor

VERSION = re.compile(r"\b(\d+\.\d+\.\d+)\b")


def test_healthz_needs_no_key(gw_openai):
    assert gw_openai.key  # the shared gateways require a key for everything else
    r = gw_openai.get("/healthz", key=None)
    assert r.status_code == 200, r.text


def test_health_reports_layers(any_gw):
    r = any_gw.get("/health", key=None)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "ok"
    assert VERSION.fullmatch(body["version"]), body
    assert isinstance(body["uptime_secs"], (int, float)) and body["uptime_secs"] >= 0
    layers = body["layers"]
    for name in ("l1a", "l1b", "l2", "l3"):
        assert isinstance(layers[name]["enabled"], bool), layers
        assert isinstance(layers[name]["ready"], bool), layers
    assert layers["l1a"]["enabled"] is True, layers  # ISARTOR__CACHE_MODE=exact
    assert layers["l2"]["enabled"] is False, layers  # ISARTOR__ENABLE_SLM_ROUTER=false
    assert layers["l3"]["enabled"] is True, layers
    assert layers["l3"]["provider"] == any_gw.provider, layers


def test_health_uptime_grows(gw_openai):
    first = gw_openai.get("/health", key=None).json()["uptime_secs"]
    time.sleep(0.2)
    second = gw_openai.get("/health", key=None).json()["uptime_secs"]
    assert second > first


def test_health_with_cache_off(gateway_factory):
    gw = gateway_factory("anthropic", ISARTOR__CACHE_MODE="none")
    layers = gw.get("/health").json()["layers"]
    assert layers["l1a"]["enabled"] is False, layers
    assert layers["l3"]["provider"] == "anthropic", layers


def test_version(tmp_path, gw_openai):
    out = run_isartor(["--version"], {}, tmp_path)
    assert out.returncode == 0, out.stderr
    match = VERSION.search(out.stdout)
    assert match, out.stdout
    assert gw_openai.get("/health", key=None).json()["version"] == match.group(1)


def test_help(tmp_path):
    out = run_isartor(["--help"], {}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "isartor" in out.stdout.lower() and "config" in out.stdout


def test_unknown_command_fails(tmp_path):
    out = run_isartor(["frobnicate"], {}, tmp_path)
    assert out.returncode != 0


def test_bad_cache_mode_fails_fast(tmp_path, fake):
    env = provider_env("openai", fake.url) | {"ISARTOR__CACHE_MODE": "foo", "ISARTOR__HOST_PORT": f"127.0.0.1:{free_port()}"}
    t0 = time.monotonic()
    out = run_isartor([], env, tmp_path, timeout=10)
    assert time.monotonic() - t0 < 5
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if "ISARTOR__CACHE_MODE" in line and "foo" in line]
    assert len(lines) == 1, out.stderr


def test_bad_provider_fails_fast(tmp_path, fake):
    env = provider_env("openai", fake.url) | {"ISARTOR__LLM_PROVIDER": "skynet", "ISARTOR__HOST_PORT": f"127.0.0.1:{free_port()}"}
    out = run_isartor([], env, tmp_path, timeout=10)
    assert out.returncode != 0
    assert any("ISARTOR__LLM_PROVIDER" in line and "skynet" in line for line in out.stderr.splitlines()), out.stderr


def test_config_masks_secrets(tmp_path, fake):
    provider_key = "sk-test-verysecret-0123456789abcdef"
    env = provider_env("openai", fake.url) | {"ISARTOR__EXTERNAL_LLM_API_KEY": provider_key,
                                              "ISARTOR__GATEWAY_API_KEY": "gw-secret-long-enough"}
    out = run_isartor(["config"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert provider_key not in text and "verysecret" not in text
    assert "gw-secret-long-enough" not in text
    key_lines = [line for line in out.stdout.splitlines() if line.startswith("ISARTOR__EXTERNAL_LLM_API_KEY=")]
    assert len(key_lines) == 1, out.stdout
    assert "ISARTOR__CACHE_MODE=exact" in out.stdout, out.stdout


def test_config_sources_precedence(tmp_path, fake):
    """Built-in defaults < isartor.toml < .env < environment, and `config` says where each came from."""
    (tmp_path / "isartor.toml").write_text(
        'external_llm_model = "model-from-toml"\ncache_ttl_secs = 77\nl3_timeout_secs = 5\n')
    (tmp_path / ".env").write_text("ISARTOR__CACHE_TTL_SECS=88\nISARTOR__L3_TIMEOUT_SECS=9\n")
    env = {"ISARTOR__L3_TIMEOUT_SECS": "7", "ISARTOR__EXTERNAL_LLM_API_KEY": PROVIDER_KEY}
    out = run_isartor(["config"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = {line.split("=", 1)[0]: line for line in out.stdout.splitlines() if "=" in line}
    assert re.match(r"ISARTOR__EXTERNAL_LLM_MODEL=model-from-toml\s+#\s*isartor\.toml", lines["ISARTOR__EXTERNAL_LLM_MODEL"])
    assert re.match(r"ISARTOR__CACHE_TTL_SECS=88\s+#\s*\.env", lines["ISARTOR__CACHE_TTL_SECS"])
    assert re.match(r"ISARTOR__L3_TIMEOUT_SECS=7\s+#\s*env", lines["ISARTOR__L3_TIMEOUT_SECS"])
    assert re.match(r"ISARTOR__MAX_BODY_BYTES=\d+\s+#\s*default", lines["ISARTOR__MAX_BODY_BYTES"])


def test_gateway_reads_workdir_files(gateway_factory, tmp_path):
    """A gateway started in a directory with isartor.toml and .env uses them (environment wins)."""
    (tmp_path / "isartor.toml").write_text('external_llm_model = "model-from-toml"\n')
    (tmp_path / ".env").write_text("ISARTOR__GATEWAY_API_KEY=key-from-dotenv\n")
    gw = gateway_factory("openai", workdir=tmp_path, start=False)
    del gw.env["ISARTOR__EXTERNAL_LLM_MODEL"]
    gw.start()
    assert gw.get("/v1/models").status_code == 401
    r = gw.get("/v1/models", key="key-from-dotenv")
    assert r.status_code == 200, r.text
    assert "model-from-toml" in [m["id"] for m in r.json()["data"]]
