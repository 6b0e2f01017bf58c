#!/usr/bin/env bash
# Packages the built gateway for Level 1 deployment. One staged tree (stage below) feeds all three:
#   scripts/dist.sh tar             dist/isartor-<version>-linux-<arch>.tar.gz and its .sha256
#   scripts/dist.sh deb             dist/isartor_<version>_<debarch>.deb
#   scripts/dist.sh install PREFIX  PREFIX/bin/isartor, PREFIX/share/isartor/ (DESTDIR honoured)
# ISARTOR_BIN: the binary to package (default build/isartor); ISARTOR_DIST: output dir (dist/).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${ISARTOR_BIN:-$REPO/build/isartor}"
DIST="${ISARTOR_DIST:-$REPO/dist}"
VERSION="$(sed -n 's/^project(isartor VERSION \([0-9][0-9.]*\).*/\1/p' "$REPO/CMakeLists.txt")"
NAME="isartor-$VERSION-linux-$(uname -m)"

die() { printf 'dist: %s\n' "$*" >&2; exit 1; }

[ -n "$VERSION" ] || die "no project(isartor VERSION ...) in CMakeLists.txt"
[ -x "$BIN" ] || die "$BIN not found: make build (or set ISARTOR_BIN)"
# A NATIVE=1 build runs only on CPUs like the build machine's: never ship one as linux-<arch>.
case "$("$BIN" --version)" in
  *"built for native"*) die "$BIN is a NATIVE=1 build, not portable: package a default build" ;;
esac

# A titled notice from stdin; an empty one means a licence went missing.
section() {
  local text
  text="$(cat)"
  [ -n "$text" ] || die "no licence text for $1"
  printf '======== %s ========\n%s\n\n' "$1" "$text"
}

# Licences of what is in the binary: static or header-only code. The shared libraries it loads
# (glibc, libcurl, OpenSSL, libgomp) come with the system under their own licences.
notices() {
  # The llama.cpp sources bootstrap.sh built from: <cache>/src/llama_cpp_python-<v>/vendor/.
  local deps llama_version llama_src
  deps="$("$REPO/scripts/bootstrap.sh" prefix)"
  llama_version="$(cat "$deps/VERSION")"
  llama_src="$(dirname "$(dirname "$deps")")/src/llama_cpp_python-$llama_version/vendor/llama.cpp"
  printf '%s\n' "Isartor $VERSION: third-party notices" "" \
    "bin/isartor contains, linked statically or compiled in from headers:" \
    "  llama.cpp and ggml        MIT (from the llama-cpp-python $llama_version sdist)" \
    "  nlohmann/json             MIT (Expat)" \
    "  toml++                    MIT" \
    "  Boost (Asio, Beast)       BSL-1.0" \
    "  {fmt}                     MIT, with an exception for binaries" \
    "  libstdc++, libgcc         GPL-3.0 with the GCC Runtime Library Exception (no notice required)" \
    "At run time it loads the system's glibc, libcurl, OpenSSL and libgomp." ""
  section "llama.cpp / ggml" <"$llama_src/LICENSE"
  section "nlohmann/json (Debian's copyright file)" </usr/share/doc/nlohmann-json3-dev/copyright
  section "toml++ (Debian's copyright file)" </usr/share/doc/libtomlplusplus-dev/copyright
  # Debian's Boost copyright file is 2 MB of per-file entries: the licence text is the notice.
  awk '/^License: BSL-1.0$/ { getline; if ($0 ~ /Boost Software License/) p = 1 }
       p && /^$/ { exit }
       p { sub(/^ /, ""); if ($0 == ".") $0 = ""; print }' \
      /usr/share/doc/libboost1.81-dev/copyright | section "Boost"
  section "{fmt} (Debian's copyright file)" </usr/share/doc/libfmt-dev/copyright
}

# The archive's tree: bin/ and share/isartor/ laid out as in an install prefix, with install.sh,
# README.md and THIRD_PARTY_NOTICES at the top.
stage() {
  local root="$1"
  mkdir -p "$root/bin" "$root/share/isartor"
  strip -o "$root/bin/isartor" "$BIN"
  cp "$REPO/deploy/systemd/isartor.service" "$REPO/deploy/env.example" "$root/share/isartor/"
  cp "$REPO/install.sh" "$REPO/README.md" "$root/"
  notices >"$root/THIRD_PARTY_NOTICES"
  chmod 0755 "$root/bin/isartor" "$root/install.sh"
  chmod 0644 "$root/share/isartor/"* "$root/README.md" "$root/THIRD_PARTY_NOTICES"
}

make_tar() {
  stage "$tmp/$NAME"
  mkdir -p "$DIST"
  # Fixed owner, order and mtime (the last commit's): the checksum follows the content.
  local mtime
  mtime="$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || echo 0)"
  # Modes fixed too, whatever the umask: u+rw, go-w, executables and folders a+x.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mode=u+rw,go-w,a+rX --mtime="@$mtime" -C "$tmp" -cf - "$NAME" |
    gzip -9n >"$DIST/$NAME.tar.gz"
  (cd "$DIST" && sha256sum "$NAME.tar.gz" >"$NAME.tar.gz.sha256")
  echo "$DIST/$NAME.tar.gz"
}

make_deb() {
  local tree="$tmp/$NAME" debarch shlibs
  debarch="$(dpkg --print-architecture)"
  stage "$tree"
  # dpkg-shlibdeps wants the package's files under debian/<package>/ next to a debian/control.
  local pkg="$tmp/deb/debian/isartor"
  mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/isartor" \
           "$pkg/usr/share/doc/isartor"
  cp "$tree/bin/isartor" "$pkg/usr/bin/"
  cp "$tree/share/isartor/isartor.service" "$pkg/lib/systemd/system/"
  install -m 0600 "$tree/share/isartor/env.example" "$pkg/etc/isartor/env"
  cp "$tree/THIRD_PARTY_NOTICES" "$pkg/usr/share/doc/isartor/copyright"
  cp "$tree/README.md" "$pkg/usr/share/doc/isartor/"
  install -m 0755 "$REPO"/deploy/debian/{postinst,prerm,postrm} "$pkg/DEBIAN/"
  echo /etc/isartor/env >"$pkg/DEBIAN/conffiles"
  printf 'Source: isartor\n\nPackage: isartor\nArchitecture: any\n' >"$tmp/deb/debian/control"
  shlibs="$(cd "$tmp/deb" && dpkg-shlibdeps -O debian/isartor/usr/bin/isartor)"
  # The maintainer address is a placeholder: the project has no mailing address yet.
  cat >"$pkg/DEBIAN/control" <<EOF
Package: isartor
Version: $VERSION
Architecture: $debarch
Maintainer: Isartor developers <isartor@invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: ${shlibs#shlibs:Depends=}, adduser
Section: net
Priority: optional
Homepage: https://github.com/isartor-ai/Isartor
Description: prompt firewall: LLM gateway with local caches and a local model
 Isartor sits between applications and cloud LLM APIs (OpenAI, Azure OpenAI,
 Anthropic, xAI), answers repeated and paraphrased requests from its caches and
 simple ones with a small local model, and forwards the rest.
 .
 The isartor service is enabled but not started: set the keys in
 /etc/isartor/env, then run systemctl start isartor.
EOF
  (cd "$pkg" && find usr lib -type f -exec md5sum {} + | sort -k2) >"$pkg/DEBIAN/md5sums"
  mkdir -p "$DIST"
  local out="$DIST/isartor_${VERSION}_$debarch.deb"
  dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out" >/dev/null
  echo "$out"
}

# install.sh places the files, the same code path as an archive install, from the staged tree.
make_install() {
  stage "$tmp/$NAME"
  sh "$tmp/$NAME/install.sh" --prefix "$1"
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
case "${1:-}" in
  tar) make_tar ;;
  deb) make_deb ;;
  install) [ -n "${2:-}" ] || die "usage: $0 install PREFIX"; make_install "$2" ;;
  *) echo "usage: $0 tar|deb|install PREFIX" >&2; exit 2 ;;
esac
