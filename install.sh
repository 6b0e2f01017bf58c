#!/bin/sh
# Installs Isartor from a release archive (Level 1, Option A):
#   curl -fsSL https://raw.githubusercontent.com/isartor-ai/Isartor/main/install.sh | sh
#   curl -fsSL .../install.sh | sudo sh -s -- --system       # plus the systemd service
#   sh install.sh --archive dist/isartor-0.1.0-linux-x86_64.tar.gz --prefix /opt/isartor
# Checks the archive (checksum, architecture) and the host (CPU, libraries) before it copies
# anything. Idempotent; --uninstall removes what it installed. --help lists the options.
set -eu
# The whole script is one brace group: sh parses it completely before running any of it, so a
# download cut short by `curl | sh` runs nothing.
{

VERSION="${ISARTOR_VERSION:-0.1.0}"
# A placeholder: no release host publishes archives yet. Use --archive (or ISARTOR_ARCHIVE), or
# point ISARTOR_RELEASE_URL at a folder holding isartor-<version>-linux-<arch>.tar.gz[.sha256].
RELEASE_URL="${ISARTOR_RELEASE_URL:-https://github.com/isartor-ai/Isartor/releases/download/v$VERSION}"
UNIT=/etc/systemd/system/isartor.service
ETC=/etc/isartor
CACHE=/var/cache/isartor

usage() {
  cat <<'EOF'
Usage: install.sh [options]
  --archive FILE|URL  the release archive (or env ISARTOR_ARCHIVE). Default: the unpacked archive
                      this script is in, else the last dist/*.tar.gz (by name) next to it, else the
                      release URL (a placeholder: no releases are published yet)
  --sha256 HEX        its expected SHA-256 (default: from ARCHIVE.sha256 when there is one)
  --prefix DIR        install DIR/bin/isartor and DIR/share/isartor/ (default: /usr/local as
                      root, ~/.local otherwise); DESTDIR=DIR stages them under DIR
  --system            also create the isartor user, /etc/isartor/env, /var/cache/isartor and the
                      systemd unit (root; the service is not started)
  --force             install although the CPU or the system libraries fall short
  --no-verify         install a downloaded archive that has no checksum (--sha256 or a published
                      ARCHIVE.sha256); without it that is refused
  --uninstall         remove what was installed (keeps /etc/isartor and the model cache)
  --purge             --uninstall, and also /etc/isartor, /var/cache/isartor and the isartor user
EOF
}

say() { printf 'isartor: %s\n' "$*"; }
die() { printf 'isartor: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
systemd_running() { [ -d /run/systemd/system ]; }

archive="${ISARTOR_ARCHIVE:-}" sha256="" prefix="" system=0 force=0 uninstall=0 purge=0 no_verify=0
while [ $# -gt 0 ]; do
  case "$1" in
    --archive|--sha256|--prefix) [ $# -ge 2 ] || die "$1 needs a value" ;;
  esac
  case "$1" in
    --archive) archive="$2"; shift ;;
    --sha256) sha256="$2"; shift ;;
    --prefix) prefix="$2"; shift ;;
    --system) system=1 ;;
    --force) force=1 ;;
    --no-verify) no_verify=1 ;;
    --uninstall) uninstall=1 ;;
    --purge) uninstall=1; purge=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
  shift
done

[ "$(uname -s)" = Linux ] || die "Isartor's binaries are for Linux; this is $(uname -s)"
HOST_ARCH="$(uname -m)"
if [ -z "$prefix" ]; then
  if is_root; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi
# The unit's ExecStart needs an absolute path.
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
prefix="${prefix%/}"
DESTDIR="${DESTDIR:-}"
dest="$DESTDIR$prefix"
if [ "$system" = 1 ]; then
  is_root || die "--system needs root: sudo sh install.sh --system"
  [ -z "$DESTDIR" ] || die "--system cannot be staged under DESTDIR"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

uninstall() {
  if [ -f "$UNIT" ] && grep -Fqx "ExecStart=$prefix/bin/isartor up" "$UNIT"; then
    is_root || die "removing the service needs root: sudo sh install.sh --uninstall --prefix $prefix"
    if systemd_running; then systemctl disable --now isartor.service >/dev/null 2>&1 || true; fi
    rm -f "$UNIT" /etc/systemd/system/multi-user.target.wants/isartor.service
    if systemd_running; then systemctl daemon-reload; fi
    say "removed $UNIT"
  fi
  if [ -e "$dest/bin/isartor" ] || [ -d "$dest/share/isartor" ]; then
    created="$(sort -r "$dest/share/isartor/created-dirs" 2>/dev/null || true)"
    rm -f "$dest/bin/isartor" "$dest/share/isartor/isartor.service" "$dest/share/isartor/env.example" \
          "$dest/share/isartor/created-dirs" "$dest/share/doc/isartor/THIRD_PARTY_NOTICES"
    for d in share/isartor share/doc/isartor $created; do rmdir "$dest/${d#.}" 2>/dev/null || true; done
    say "removed $dest/bin/isartor and $dest/share/isartor"
  else
    say "nothing installed under $dest"
  fi
  if [ "$purge" = 0 ]; then
    if [ -e "$ETC/env" ] || [ -d "$CACHE" ]; then
      say "kept $ETC and $CACHE (keys, models); --purge removes them and the user"
    fi
  elif [ -e /lib/systemd/system/isartor.service ]; then
    say "the isartor package uses $ETC, $CACHE and the isartor user: left for dpkg --purge isartor"
  elif [ -e "$ETC" ] || [ -e "$CACHE" ] || getent passwd isartor >/dev/null; then
    is_root || die "--purge needs root"
    rm -rf "$ETC" "$CACHE"
    if getent passwd isartor >/dev/null; then userdel isartor; fi
    if getent group isartor >/dev/null; then groupdel isartor; fi
    say "removed $ETC, $CACHE and the isartor user"
  fi
}

if [ "$uninstall" = 1 ]; then
  uninstall
  exit 0
fi

# Where the files come from: the unpacked archive this script belongs to, or an archive.
script_dir=""
case "$0" in */install.sh|install.sh) script_dir="$(cd "$(dirname "$0")" && pwd)" ;; esac
tree=""
if [ -z "$archive" ] && [ -n "$script_dir" ] && [ -f "$script_dir/bin/isartor" ] &&
   [ -f "$script_dir/share/isartor/isartor.service" ]; then
  tree="$script_dir"
elif [ -z "$archive" ] && [ -n "$script_dir" ] && [ -d "$script_dir/dist" ]; then
  archive="$(for f in "$script_dir"/dist/isartor-*-linux-"$HOST_ARCH".tar.gz; do
    if [ -f "$f" ]; then printf '%s\n' "$f"; fi
  done | sort | tail -n 1)"
  [ -n "$archive" ] || die "no isartor-*-linux-$HOST_ARCH.tar.gz in $script_dir/dist: run make dist, or pass --archive"
elif [ -z "$archive" ]; then
  archive="$RELEASE_URL/isartor-$VERSION-linux-$HOST_ARCH.tar.gz"
fi

fetch() {
  command -v curl >/dev/null || die "curl is needed to download $1 (or pass --archive FILE)"
  curl -fsSL --retry 3 -o "$2" "$1"
}

if [ -z "$tree" ]; then
  case "$archive" in
    http://*|https://*)
      say "downloading $archive"
      fetch "$archive" "$tmp/archive.tar.gz" || die "download of $archive failed"
      if [ -z "$sha256" ] && fetch "$archive.sha256" "$tmp/archive.sha256" 2>/dev/null; then
        sha256="$(cut -d' ' -f1 <"$tmp/archive.sha256")"
      fi
      if [ -z "$sha256" ] && [ "$no_verify" = 0 ]; then
        die "no checksum for $archive (none published as $archive.sha256): pass --sha256 HEX, or --no-verify to install it unverified"
      fi
      file="$tmp/archive.tar.gz" ;;
    *)
      [ -f "$archive" ] || die "archive $archive not found"
      if [ -z "$sha256" ] && [ -f "$archive.sha256" ]; then
        sha256="$(cut -d' ' -f1 <"$archive.sha256")"
      fi
      file="$archive" ;;
  esac
  if [ -n "$sha256" ]; then
    command -v sha256sum >/dev/null || die "sha256sum is needed to verify the checksum"
    actual="$(sha256sum "$file" | cut -d' ' -f1)"
    expected="$(printf '%s' "$sha256" | tr 'A-F' 'a-f')"
    [ "$actual" = "$expected" ] || die "checksum mismatch for $archive: expected $expected, got $actual"
    say "checksum verified ($actual)"
  else
    say "no checksum given or published next to $archive: not verified"
  fi
  mkdir "$tmp/x"
  tar -xzf "$file" -C "$tmp/x" || die "$archive is not a readable .tar.gz"
  tree="$(find "$tmp/x" -mindepth 1 -maxdepth 1 -type d -name 'isartor-*')"
  if [ ! -f "$tree/bin/isartor" ] || [ ! -f "$tree/share/isartor/isartor.service" ]; then
    die "$archive is not an Isartor archive (no isartor-*/bin/isartor)"
  fi
fi

# The CPU the binary is for, from its ELF header (e_machine), spelled like uname -m.
case "$(od -An -tu2 -j18 -N2 "$tree/bin/isartor" | tr -d ' ')" in
  62) bin_arch=x86_64 ;;
  183) bin_arch=aarch64 ;;
  *) bin_arch=unknown ;;
esac
[ "$bin_arch" = "$HOST_ARCH" ] ||
  die "this archive is for $bin_arch, this machine is $HOST_ARCH: use isartor-$VERSION-linux-$HOST_ARCH.tar.gz"

# Host checks, which --force overrides: the x86-64-v3 baseline and the shared libraries.
shortfall() { if [ "$force" = 1 ]; then say "warning: $1"; else die "$1; --force installs anyway"; fi; }
if [ "$HOST_ARCH" = x86_64 ]; then
  flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
  lacking=""
  for f in avx2 fma f16c bmi2; do
    case " $flags " in *" $f "*) ;; *) lacking="$lacking $f" ;; esac
  done
  [ -z "$lacking" ] || shortfall "this CPU lacks$lacking: the x86-64-v3 build needs Intel Haswell / AMD Zen or newer"
fi
if command -v ldd >/dev/null; then
  libs="$(ldd "$tree/bin/isartor" 2>/dev/null | awk '/not found/ { print $1 }' | sort -u | tr '\n' ' ')"
  if [ -n "$libs" ]; then
    pkgs=""
    for l in $libs; do
      case "$l" in
        libcurl.so.4) p=libcurl4 ;;
        libgomp.so.1) p=libgomp1 ;;
        libssl.so.3|libcrypto.so.3) p=libssl3 ;;
        *) p="$l" ;;
      esac
      case " $pkgs " in *" $p "*) ;; *) pkgs="$pkgs $p" ;; esac
    done
    shortfall "missing libraries: ${libs% } (Debian/Ubuntu: apt-get install$pkgs)"
  fi
fi

# Prefix files. The directories this creates are noted, for --uninstall to remove them again.
created=""
for d in . bin share share/doc; do [ -d "$dest/$d" ] || created="$created$d
"; done
mkdir -p "$dest/bin" "$dest/share/isartor" "$dest/share/doc/isartor"
printf '%s' "$created" >>"$dest/share/isartor/created-dirs"
# Copy then rename: replaces a running binary without "Text file busy".
cp "$tree/bin/isartor" "$dest/bin/.isartor.new"
chmod 0755 "$dest/bin/.isartor.new"
mv -f "$dest/bin/.isartor.new" "$dest/bin/isartor"
esc="$(printf '%s' "$prefix" | sed 's/[\\&|]/\\&/g')"
sed "s|^ExecStart=.*/isartor |ExecStart=$esc/bin/isartor |" "$tree/share/isartor/isartor.service" \
  >"$dest/share/isartor/isartor.service"
cp "$tree/share/isartor/env.example" "$dest/share/isartor/"
cp "$tree/THIRD_PARTY_NOTICES" "$dest/share/doc/isartor/"
chmod 0644 "$dest/share/isartor/isartor.service" "$dest/share/isartor/env.example" \
  "$dest/share/doc/isartor/THIRD_PARTY_NOTICES"
say "installed $dest/bin/isartor"

if [ "$system" = 1 ]; then
  if ! getent passwd isartor >/dev/null; then
    nologin=/bin/false
    for n in /usr/sbin/nologin /sbin/nologin; do [ -x "$n" ] && nologin="$n" && break; done
    useradd --system --user-group --no-create-home --home-dir "$CACHE" --shell "$nologin" \
      --comment "Isartor gateway" isartor
    say "created the system user isartor"
  fi
  mkdir -p "$ETC"
  if [ -e "$ETC/env" ]; then
    say "kept the existing $ETC/env"
  else
    (umask 077 && cp "$tree/share/isartor/env.example" "$ETC/env")
    say "wrote $ETC/env (0600) from env.example"
  fi
  mkdir -p "$CACHE"
  chown isartor:isartor "$CACHE"
  chmod 0750 "$CACHE"
  cp "$dest/share/isartor/isartor.service" "$UNIT"
  chmod 0644 "$UNIT"
  if systemd_running; then systemctl daemon-reload; fi
  say "installed $UNIT (not enabled, not started)"
  case "$prefix/" in
    /home/*|/root/*|/run/user/*|/tmp/*|/var/tmp/*)
      say "warning: the service cannot see $prefix (ProtectHome=, PrivateTmp=): prefer /usr/local or /opt" ;;
  esac
fi

"$dest/bin/isartor" --version || {
  if [ "$force" = 1 ]; then say "warning: $dest/bin/isartor --version failed"; else die "$dest/bin/isartor --version failed"; fi
}

echo
if [ "$system" = 1 ]; then
  cat <<EOF
Next: put the provider key (ISARTOR__EXTERNAL_LLM_API_KEY) and a client key
(ISARTOR__GATEWAY_API_KEY) into $ETC/env, then
  sudo systemctl enable --now isartor
  systemctl status isartor
  journalctl -u isartor -f
  curl http://localhost:8080/health
EOF
else
  case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "Add $prefix/bin to PATH:  export PATH=\"$prefix/bin:\$PATH\"" ;; esac
  cat <<EOF
Next:
  export ISARTOR__EXTERNAL_LLM_API_KEY=sk-...     # the provider key, required for L3
  export ISARTOR__GATEWAY_API_KEY=my-secret-key   # optional: require a key from clients
  $prefix/bin/isartor up
  curl http://localhost:8080/health
As a service: sudo sh install.sh --system (creates the user, /etc/isartor/env and the unit).
EOF
fi

exit 0
}
