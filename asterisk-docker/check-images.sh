#!/usr/bin/env bash
# Build both images with podman and check what is in them, on a machine that
# reaches Debian's package mirror and (through the host's pip) a Python index,
# but no container registry, and cannot start containers (the development
# machine: crun may not set rlimits there). What it does, in order:
#   1. a Debian 12 base image from debootstrap (no registry needed);
#   2. the wheels, with the host's pip (deploy/wheels/README.md);
#   3. `podman build --isolation=chroot` of Dockerfile.hotline and Dockerfile.asterisk;
#   4. in a chroot of each image, as its hotline user (uid from the image):
#      `hotline check-config` on the combined example; Asterisk booted on a
#      config rendered from the Bắc Từ Liêm example (loopback, free ports),
#      its SIP transport listed, then `core stop now`.
# About 15 minutes on 2 cores (Asterisk's compile). Run from the repository root as root.
set -euo pipefail
base=localhost/hotline-base:bookworm
work=$(mktemp -d /tmp/hotline-images.XXXXXX)
log() { printf '[check-images] %s\n' "$*" >&2; }

if ! podman image exists "$base"; then
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >&2
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
             || true)
    log "base image from debootstrap (${mirror:-http://deb.debian.org/debian})"
    debootstrap --variant=minbase bookworm "$work/rootfs" "${mirror:-http://deb.debian.org/debian}" >&2
    tar -C "$work/rootfs" -c . | podman import - "$base" >&2
fi

log "wheels with the host's pip"
.venv/bin/pip download -q --dest deploy/wheels 'setuptools>=68' wheel
.venv/bin/pip wheel -q --wheel-dir deploy/wheels '.[postgres]'
.venv/bin/pip download -q --no-deps --ignore-requires-python --dest deploy/wheels \
    'vietnam-provinces==2026.9.0'
rm -f deploy/wheels/hotline-*.whl

build=(podman build --isolation=chroot --network=host --build-arg "BASE=$base")
log "building the hotline image"
"${build[@]}" --build-arg 'PIP_INSTALL_OPTIONS=--no-index --find-links /wheels' \
    -f asterisk-docker/Dockerfile.hotline -t localhost/hotline:check . >&2
log "building the asterisk image"
# The mirror may be a snapshot older than sid's one-week Release validity.
"${build[@]}" --build-arg HOTLINE_APT_CHECK_VALID_UNTIL=false \
    -f asterisk-docker/Dockerfile.asterisk -t localhost/hotline-asterisk:check . >&2

in_image() {  # IMAGE COMMAND...: run as the image's hotline user in a chroot of a container
    local image=$1; shift
    local ctr mnt uid
    ctr=$(podman create "$image")
    mnt=$(podman mount "$ctr")
    uid=$(chroot "$mnt" id -u hotline)
    mount --bind /dev "$mnt/dev"; mount -t proc proc "$mnt/proc"
    CHECK_ROOT=$mnt CHECK_UID=$uid "$@" || status=$?
    umount "$mnt/proc" "$mnt/dev"; podman umount "$ctr" >/dev/null; podman rm "$ctr" >/dev/null
    return "${status:-0}"
}

check_hotline() {
    chroot --userspec="$CHECK_UID:$CHECK_UID" "$CHECK_ROOT" /usr/bin/env -i \
        PATH=/opt/hotline/.venv/bin:/usr/bin:/bin HOME=/var/lib/hotline \
        /opt/hotline/.venv/bin/hotline check-config /opt/hotline/examples/combined.yaml
}
log "hotline image: check-config as the hotline user"
in_image localhost/hotline:check check_hotline

check_asterisk() {
    .venv/bin/python - "$work/hotline.yaml" <<'PY'
import socket, sys, yaml
from pathlib import Path
data = yaml.safe_load(Path("examples/bac-tu-liem.yaml").read_text(encoding="utf-8"))
def free(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]
data["asterisk"]["sip"]["port"] = free(socket.SOCK_DGRAM)
data["asterisk"]["ami"]["port"] = free(socket.SOCK_STREAM)
data["asterisk"]["rtp"] = {"start": 40000, "end": 40100}
folder = Path(sys.argv[1]).parent
data["paths"] = {"prompts": "/var/lib/hotline/prompts", "recordings": "/var/lib/hotline/recordings",
                 "routing_table": str(folder / "routing.json"),
                 "phone_secrets": str(folder / "phone-secrets.json")}
data["database"] = {"url": f"sqlite:///{folder / 'check.db'}"}
Path(sys.argv[1]).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
PY
    .venv/bin/hotline asterisk-config "$work/hotline.yaml" --out "$CHECK_ROOT/etc/hotline/asterisk" >/dev/null
    chown -R "$CHECK_UID:$CHECK_UID" "$CHECK_ROOT/etc/hotline/asterisk"
    local as=(chroot --userspec="$CHECK_UID:$CHECK_UID" "$CHECK_ROOT"
              /opt/asterisk/sbin/asterisk -C /etc/hotline/asterisk/asterisk.conf)
    "${as[@]}" -f -n >"$work/asterisk-console.log" 2>&1 &
    local pid=$! booted=no
    for _ in $(seq 1 120); do
        if "${as[@]}" -rx "core waitfullybooted" >/dev/null 2>&1; then booted=yes; break; fi
        sleep 0.5
    done
    [[ $booted == yes ]] || { cat "$work/asterisk-console.log" >&2; kill "$pid"; return 1; }
    "${as[@]}" -rx "core show version"
    "${as[@]}" -rx "pjsip show transports" | grep transport-udp
    ps -o user=,cmd= -p "$(pgrep -P "$pid" || echo "$pid")"
    "${as[@]}" -rx "core stop now" >/dev/null
    wait "$pid"
}
log "asterisk image: Asterisk booted as the hotline user on a rendered config"
in_image localhost/hotline-asterisk:check check_asterisk
log "both images built and checked; work folder $work"
