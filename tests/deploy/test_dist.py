"""make dist: the release archive, its checksum, and make install (scripts/dist.sh)."""
from __future__ import annotations

import os
import stat
import tarfile

from conftest import ENV_EXAMPLE, INSTALL_SH, NAME, REPO, UNIT, dist_script, isartor_bin, run, tree_files


def test_archive_layout(archive):
    assert archive.name == f"{NAME}.tar.gz"
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert {n.split("/")[0] for n in members} == {NAME}, "one top directory"
        files = {n.removeprefix(NAME + "/") for n, m in members.items() if m.isfile()}
        assert files == {"bin/isartor", "share/isartor/isartor.service", "share/isartor/env.example",
                         "install.sh", "README.md", "THIRD_PARTY_NOTICES"}
        assert all(m.uid == 0 and m.gid == 0 for m in members.values())
        assert stat.S_IMODE(members[f"{NAME}/bin/isartor"].mode) == 0o755
        assert stat.S_IMODE(members[f"{NAME}/install.sh"].mode) == 0o755
        assert tar.extractfile(f"{NAME}/install.sh").read() == INSTALL_SH.read_bytes()
        assert tar.extractfile(f"{NAME}/share/isartor/isartor.service").read() == UNIT.read_bytes()
        assert tar.extractfile(f"{NAME}/share/isartor/env.example").read() == ENV_EXAMPLE.read_bytes()
        notices = tar.extractfile(f"{NAME}/THIRD_PARTY_NOTICES").read().decode()
    for component in ("llama.cpp / ggml", "nlohmann/json", "Boost", "{fmt}"):
        assert f"======== {component}" in notices
    assert "The ggml authors" in notices
    assert "Boost Software License - Version 1.0" in notices


def test_binary_is_stripped_and_runs(archive, tmp_path):
    run(["tar", "-xzf", archive, "-C", tmp_path])
    binary = tmp_path / NAME / "bin" / "isartor"
    sections = run(["readelf", "-S", "-W", binary]).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections
    assert binary.stat().st_size < isartor_bin().stat().st_size
    assert run([binary, "--version"]).stdout.startswith(f"isartor {NAME.split('-')[1]}\n")


def test_checksum_verifies(archive):
    sums = archive.with_name(archive.name + ".sha256")
    assert sums.read_text().split()[1] == archive.name, "sha256sum format: HEX  NAME"
    assert run(["sha256sum", "-c", sums.name], cwd=archive.parent).stdout.strip() == f"{archive.name}: OK"


def test_archive_is_reproducible(archive, tmp_path):
    """Same inputs, same bytes: the .sha256 identifies the content, not the build time."""
    again = dist_script("tar", tmp_path / "again")
    assert again.read_bytes() == archive.read_bytes()
    # Whatever the umask of whoever builds it.
    old = os.umask(0o002)
    try:
        loose = dist_script("tar", tmp_path / "loose")
    finally:
        os.umask(old)
    assert loose.read_bytes() == archive.read_bytes()


def test_make_install_destdir(tmp_path):
    """make install PREFIX=/opt/isartor DESTDIR=...: files under DESTDIR, paths in them without it."""
    destdir = tmp_path / "stage"
    env = {**os.environ, "ISARTOR_BIN": str(isartor_bin()), "DESTDIR": str(destdir)}
    out = run([REPO / "scripts" / "dist.sh", "install", "/opt/isartor"], env=env).stdout
    root = destdir / "opt" / "isartor"
    assert tree_files(root) == {"bin/isartor", "share/isartor/isartor.service", "share/isartor/env.example",
                                "share/isartor/created-dirs", "share/doc/isartor/THIRD_PARTY_NOTICES"}
    assert "ExecStart=/opt/isartor/bin/isartor up" in (root / "share/isartor/isartor.service").read_text().splitlines()
    assert "isartor " in out and "cpu: built for" in out, "install.sh ran the installed binary"


def test_makefile_targets():
    """The Makefile wires dist, deb and install to scripts/dist.sh with the build's binary."""
    dry = run(["make", "-n", "dist", "deb", "install", "PREFIX=/p", "DESTDIR=/d"], cwd=REPO).stdout
    for line in ("scripts/dist.sh tar", "scripts/dist.sh deb", "scripts/dist.sh install /p"):
        assert line in dry, dry
    assert "DESTDIR=/d" in dry
