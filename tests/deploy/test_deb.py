"""make deb: the package's metadata, then dpkg -i on this machine (root), and dpkg --purge."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import ENV_EXAMPLE, UNIT, VERSION, require_clean_host, require_root, run

WANTS = Path("/etc/systemd/system/multi-user.target.wants/isartor.service")
PACKAGE_PATHS = ["/usr/bin/isartor", "/lib/systemd/system/isartor.service", "/etc/isartor/env",
                 "/usr/share/doc/isartor/copyright", "/usr/share/doc/isartor/README.md"]


def running(exe: str) -> bool:
    """Whether a process runs `exe` (other gateways, e.g. build/isartor of other tests, do not count)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(proc / "exe") == exe:
                return True
        except OSError:
            pass
    return False


def field(deb: Path, name: str) -> str:
    return run(["dpkg-deb", "-f", deb, name]).stdout.strip()


def test_deb_metadata(deb):
    assert deb.name == f"isartor_{VERSION}_{run(['dpkg', '--print-architecture']).stdout.strip()}.deb"
    depends = [d.split()[0] for d in field(deb, "Depends").split(", ")]
    assert depends == ["libc6", "libcurl4", "libgomp1", "libssl3", "adduser"]
    assert field(deb, "Version") == VERSION
    listing = run(["dpkg-deb", "-c", deb]).stdout
    assert "-rw------- root/root" in next(l for l in listing.splitlines() if l.endswith("./etc/isartor/env"))
    assert "./var/cache/isartor" not in listing, "made by postinst, owned by the isartor user"
    control = run(["dpkg-deb", "-I", deb, "conffiles"]).stdout
    assert control.split() == ["/etc/isartor/env"]


@pytest.mark.skipif(not shutil.which("lintian"), reason="lintian is not installed (optional)")
def test_lintian(deb):
    """No lintian error or warning but the deliberate ones: env is 0600 (keys), the maintainer
    address is a placeholder, and there is no changelog or manual page yet."""
    r = run(["lintian", "--fail-on", "error,warning", "--suppress-tags",
             "non-standard-file-perm,bogus-mail-host,no-changelog,no-manual-page", deb], check=False)
    assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr


def test_dpkg_install_and_purge(deb):
    """dpkg -i: files, owners, modes, the user, the unit enabled but not started, the binary runs;
    a reinstall keeps an edited env; dpkg --purge leaves nothing: no files, no user, no enablement."""
    if not shutil.which("dpkg"):
        pytest.skip("dpkg is not installed")
    require_root("dpkg -i")
    require_clean_host()
    try:
        run(["dpkg", "-i", deb])
        for path in PACKAGE_PATHS:
            assert os.path.exists(path), path
        env = Path("/etc/isartor/env")
        assert env.read_bytes() == ENV_EXAMPLE.read_bytes()
        assert run(["stat", "-c", "%U:%G %a", env]).stdout.strip() == "root:root 600"
        assert run(["stat", "-c", "%U:%G %a", "/var/cache/isartor"]).stdout.strip() == "isartor:isartor 750"
        assert run(["stat", "-c", "%a", "/usr/bin/isartor"]).stdout.strip() == "755"
        user = run(["getent", "passwd", "isartor"]).stdout.strip().split(":")
        assert user[5:] == ["/var/cache/isartor", "/usr/sbin/nologin"] and int(user[2]) < 1000, user
        assert run(["getent", "group", "isartor"]).stdout.startswith("isartor:")
        assert Path("/lib/systemd/system/isartor.service").read_bytes() == UNIT.read_bytes()
        assert WANTS.is_symlink() and os.readlink(WANTS) == "/lib/systemd/system/isartor.service"
        assert not running("/usr/bin/isartor"), "installed, not started"
        assert run(["/usr/bin/isartor", "--version"]).stdout.startswith(f"isartor {VERSION}\n")
        verify = run(["systemd-analyze", "verify", "/lib/systemd/system/isartor.service"], check=False)
        assert verify.returncode == 0 and verify.stderr == "", verify.stderr

        env.write_text("ISARTOR__GATEWAY_API_KEY=edited\n")
        run(["dpkg", "-i", deb])
        assert env.read_text() == "ISARTOR__GATEWAY_API_KEY=edited\n", "a changed conffile is kept"
        assert WANTS.is_symlink()

        run(["dpkg", "--purge", "isartor"])
        left = [p for p in [*PACKAGE_PATHS, "/etc/isartor", "/var/cache/isartor", str(WANTS),
                            "/etc/systemd/system/isartor.service", "/usr/share/doc/isartor"] if os.path.lexists(p)]
        assert left == []
        assert run(["getent", "passwd", "isartor"], check=False).returncode == 2
        assert run(["getent", "group", "isartor"], check=False).returncode == 2
        assert run(["dpkg-query", "-W", "isartor"], check=False).returncode == 1
        state = run(["find", "/var/lib/systemd", "-name", "*isartor*"], check=False).stdout
        assert state == "", f"deb-systemd-helper state left: {state}"
    finally:
        if run(["dpkg-query", "-W", "isartor"], check=False).returncode == 0:
            run(["dpkg", "--purge", "isartor"], check=False)
