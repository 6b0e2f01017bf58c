"""install.sh (Level 1, Option A): from the archive into a temporary prefix, the installed gateway
answering, the checks that refuse to install, --uninstall, and --system as root."""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest

from conftest import (ARCH, ENV_EXAMPLE, INSTALL_SH, NAME, VERSION, extract, install_sh, require_clean_host,
                      require_root, run, start_gateway, stop_gateway, tree_files)

INSTALLED = {"bin/isartor", "share/isartor/isartor.service", "share/isartor/env.example",
             "share/isartor/created-dirs", "share/doc/isartor/THIRD_PARTY_NOTICES"}


def test_install_start_uninstall(archive, tmp_path):
    """Install into a fresh prefix, run the installed binary, uninstall: nothing left behind."""
    prefix = tmp_path / "prefix"
    out = install_sh("--archive", archive, "--prefix", prefix).stdout
    assert "checksum verified" in out
    assert f"isartor {VERSION}" in out, "ends with the installed binary's --version"
    assert f"{prefix}/bin/isartor up" in out, "says what to do next"
    assert tree_files(prefix) == INSTALLED
    assert os.access(prefix / "bin/isartor", os.X_OK)
    unit = (prefix / "share/isartor/isartor.service").read_text().splitlines()
    assert f"ExecStart={prefix}/bin/isartor up" in unit

    gw = start_gateway(prefix / "bin/isartor", tmp_path)
    try:
        with urllib.request.urlopen(gw.url + "/health", timeout=5) as r:
            assert f'"version":"{VERSION}"' in r.read().decode().replace(" ", "")
    finally:
        assert stop_gateway(gw) == 0

    # Idempotent: a second run over the first changes nothing.
    install_sh("--archive", archive, "--prefix", prefix)
    assert tree_files(prefix) == INSTALLED
    assert (prefix / "share/isartor/created-dirs").read_text().split() == [".", "bin", "share", "share/doc"]

    out = install_sh("--uninstall", "--prefix", prefix).stdout
    assert "removed" in out
    assert not prefix.exists(), "the directories it created are gone too"
    assert "nothing installed" in install_sh("--uninstall", "--prefix", prefix).stdout


def test_uninstall_keeps_directories_it_did_not_create(archive, tmp_path):
    prefix = tmp_path / "usr"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "other-tool").write_text("")
    install_sh("--archive", archive, "--prefix", prefix)
    install_sh("--uninstall", "--prefix", prefix)
    assert tree_files(prefix) == {"bin/other-tool"}


def test_refuses_bad_checksum(archive, tmp_path):
    prefix = tmp_path / "prefix"
    r = install_sh("--archive", archive, "--prefix", prefix, "--sha256", "0" * 64, check=False)
    assert r.returncode == 1 and "checksum mismatch" in r.stderr
    # A .sha256 next to the archive is used when no --sha256 is given.
    copy = tmp_path / archive.name
    shutil.copy(archive, copy)
    (tmp_path / (archive.name + ".sha256")).write_text(f"{'f' * 64}  {archive.name}\n")
    r = install_sh("--archive", copy, "--prefix", prefix, check=False)
    assert r.returncode == 1 and "checksum mismatch" in r.stderr
    assert not prefix.exists(), "nothing installed"


def test_refuses_wrong_arch(archive, tmp_path):
    """An archive whose binary is for another CPU (ELF e_machine patched) is refused, --force or not."""
    other = "aarch64" if ARCH == "x86_64" else "x86_64"
    tree = extract(archive, tmp_path)
    binary = tree / "bin" / "isartor"
    with open(binary, "r+b") as f:
        f.seek(18)
        f.write((183 if other == "aarch64" else 62).to_bytes(2, "little"))
    renamed = tmp_path / NAME.replace(ARCH, other)
    tree.rename(renamed)
    bad = tmp_path / f"{renamed.name}.tar.gz"
    run(["tar", "-czf", bad, "-C", tmp_path, renamed.name])
    prefix = tmp_path / "prefix"
    r = install_sh("--archive", bad, "--prefix", prefix, "--force", check=False)
    assert r.returncode == 1
    assert f"this archive is for {other}, this machine is {ARCH}" in r.stderr
    assert "not verified" in r.stdout, "no checksum was available: it says so"
    assert not prefix.exists()


def test_refuses_missing_libraries(archive, tmp_path):
    """ldd's "not found" lines become one refusal naming the Debian packages; --force goes on."""
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    (fakebin / "ldd").write_text("#!/bin/sh\necho '\tlibcurl.so.4 => not found'\necho '\tlibgomp.so.1 => not found'\n"
                                 "echo '\tlibc.so.6 => /lib/libc.so.6 (0x1)'\n")
    (fakebin / "ldd").chmod(0o755)
    env = {"PATH": f"{fakebin}:{os.environ['PATH']}"}
    prefix = tmp_path / "prefix"
    r = install_sh("--archive", archive, "--prefix", prefix, env=env, check=False)
    assert r.returncode == 1
    assert "missing libraries: libcurl.so.4 libgomp.so.1 (Debian/Ubuntu: apt-get install libcurl4 libgomp1)" \
        in r.stderr
    assert not prefix.exists()
    r = install_sh("--archive", archive, "--prefix", prefix, "--force", env=env)
    assert "warning: missing libraries" in r.stdout and (prefix / "bin/isartor").exists()


@pytest.mark.skipif(ARCH != "x86_64", reason="the CPU baseline check is for x86_64 (x86-64-v3)")
def test_refuses_cpu_without_baseline(archive, tmp_path):
    """A CPU without AVX2 (a /proc/cpuinfo bind-mounted in a private mount namespace) is refused."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(re.sub(r" (avx2|bmi2)\b", "", Path("/proc/cpuinfo").read_text()))
    probe = run(["unshare", "-m", "true"], check=False) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("needs unshare -m (root with CAP_SYS_ADMIN) to show the installer another /proc/cpuinfo")
    prefix = tmp_path / "prefix"
    r = run(["unshare", "-m", "sh", "-c", f'mount --bind "$1" /proc/cpuinfo && exec sh "$2" --archive "$3" '
             f'--prefix "$4"', "sh", cpuinfo, INSTALL_SH, archive, prefix], check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == ("isartor: this CPU lacks avx2 bmi2: the x86-64-v3 build needs Intel Haswell / "
                                "AMD Zen or newer; --force installs anyway")
    assert not prefix.exists()


def test_piped_from_curl_with_url(archive, tmp_path):
    """curl -fsSL <host>/install.sh | sh -s -- ...: the archive and its .sha256 downloaded from a URL."""
    site = tmp_path / "site"
    site.mkdir()
    for f in (INSTALL_SH, archive, archive.with_name(archive.name + ".sha256")):
        shutil.copy(f, site)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    prefix = tmp_path / "prefix"
    try:
        out = run(["sh", "-c", f'curl -fsSL "$1/install.sh" | sh -s -- --archive "$1/{archive.name}" --prefix "$2"',
                   "sh", base, prefix]).stdout
        assert f"downloading {base}/{archive.name}" in out and "checksum verified" in out
        assert tree_files(prefix) == INSTALLED
        # ISARTOR_RELEASE_URL names the folder; the file name follows the version and the arch.
        out = run(["sh", "-c", 'curl -fsSL "$1/install.sh" | ISARTOR_RELEASE_URL="$1" sh -s -- --prefix "$2"',
                   "sh", base, prefix]).stdout
        assert f"downloading {base}/{NAME}.tar.gz" in out and "checksum verified" in out
        # A download with no checksum anywhere is refused unless --no-verify says so.
        (site / (archive.name + ".sha256")).unlink()
        other = tmp_path / "unverified"
        r = run(["sh", "-c", f'curl -fsSL "$1/install.sh" | sh -s -- --archive "$1/{archive.name}" --prefix "$2"',
                 "sh", base, other], check=False)
        assert r.returncode != 0 and "pass --sha256 HEX, or --no-verify" in r.stderr, r.stdout + r.stderr
        assert not other.exists()
        out = run(["sh", "-c", f'curl -fsSL "$1/install.sh" | sh -s -- --archive "$1/{archive.name}" --prefix "$2" --no-verify',
                   "sh", base, other]).stdout
        assert "not verified" in out and tree_files(other) == INSTALLED
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("keep", [200, 4000, 9000])
def test_truncated_script_runs_nothing(archive, tmp_path, keep):
    """`curl | sh` cut short: sh parses the one brace group whole, so a partial script does nothing."""
    prefix = tmp_path / "prefix"
    partial = tmp_path / "partial.sh"
    partial.write_bytes(INSTALL_SH.read_bytes()[:keep])
    r = run(["sh", "-c", f'sh -s -- --archive "$1" --prefix "$2" < "$3"', "sh", archive, prefix, partial], check=False)
    if keep > INSTALL_SH.read_bytes().index(b"\n{\n"):
        assert r.returncode != 0  # "expecting }": a syntax error before anything ran
    assert r.stdout == "" and not prefix.exists(), r.stdout


def test_from_unpacked_archive_and_from_dist(archive, tmp_path):
    """./install.sh inside the unpacked archive installs that tree; install.sh next to a dist/
    (a source checkout after make dist) installs the archive from there."""
    tree = extract(archive, tmp_path)
    prefix = tmp_path / "p1"
    out = install_sh("--prefix", prefix, script=tree / "install.sh").stdout
    assert "checksum" not in out and tree_files(prefix) == INSTALLED

    checkout = tmp_path / "checkout"
    (checkout / "dist").mkdir(parents=True)
    shutil.copy(INSTALL_SH, checkout)
    shutil.copy(archive, checkout / "dist")
    shutil.copy(archive.with_name(archive.name + ".sha256"), checkout / "dist")
    prefix = tmp_path / "p2"
    out = install_sh("--prefix", prefix, script=checkout / "install.sh").stdout
    assert "checksum verified" in out and tree_files(prefix) == INSTALLED


def test_script_version_is_the_project_version():
    """install.sh builds the default download name from its VERSION: it must follow CMakeLists.txt."""
    assert f'VERSION="${{ISARTOR_VERSION:-{VERSION}}}"' in INSTALL_SH.read_text()


def test_system_install(archive, tmp_path):
    """--system as root: user, /etc/isartor/env (0600, never overwritten), /var/cache/isartor owned
    by isartor, the unit with ExecStart at the prefix; not enabled; --uninstall --purge undoes it."""
    require_root("install.sh --system")
    require_clean_host()
    prefix = Path("/opt/isartor-test")
    try:
        out = install_sh("--archive", archive, "--prefix", prefix, "--system").stdout
        assert "systemctl enable --now isartor" in out
        env = Path("/etc/isartor/env")
        assert env.read_bytes() == ENV_EXAMPLE.read_bytes()
        assert env.stat().st_mode & 0o777 == 0o600 and env.stat().st_uid == 0
        cache = Path("/var/cache/isartor")
        assert run(["stat", "-c", "%U:%G %a", cache]).stdout.strip() == "isartor:isartor 750"
        assert run(["getent", "passwd", "isartor"]).stdout.strip().endswith(":/var/cache/isartor:/usr/sbin/nologin")
        unit = Path("/etc/systemd/system/isartor.service")
        assert f"ExecStart={prefix}/bin/isartor up" in unit.read_text().splitlines()
        assert not Path("/etc/systemd/system/multi-user.target.wants/isartor.service").exists()
        verify = run(["systemd-analyze", "verify", unit], check=False)
        assert verify.returncode == 0 and verify.stderr == "", verify.stderr

        env.write_text("ISARTOR__GATEWAY_API_KEY=kept\n")
        assert "kept the existing /etc/isartor/env" in install_sh("--archive", archive, "--prefix", prefix,
                                                                  "--system").stdout
        assert env.read_text() == "ISARTOR__GATEWAY_API_KEY=kept\n"

        out = install_sh("--uninstall", "--prefix", prefix).stdout
        assert not unit.exists() and not prefix.exists()
        assert env.exists() and cache.exists() and "--purge" in out, "keys and models stay without --purge"
        install_sh("--purge", "--prefix", prefix)
        assert not Path("/etc/isartor").exists() and not cache.exists()
        assert run(["getent", "passwd", "isartor"], check=False).returncode == 2
        assert run(["getent", "group", "isartor"], check=False).returncode == 2
    finally:
        install_sh("--uninstall", "--purge", "--prefix", prefix, check=False)
