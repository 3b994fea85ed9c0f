#!/usr/bin/env bash
# One entry point for a fresh Debian machine (root, or sudo for apt):
#   ./hotline.sh demo   set up everything, run the stack on the example config
#                       and place a demo call to a ward chairman
#   ./hotline.sh test   set up everything and run the whole test suite
#   ./hotline.sh check  quick: the linters and the unit tier (no Asterisk needed)
# Set-up is idempotent: Debian packages, Asterisk (system >= 20 or a cached
# build from Debian's source package), the Python venv, the voice prompts.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)

log() { printf '[hotline.sh] %s\n' "$*" >&2; }

apt_packages=(python3 python3-venv python3-dev sip-tester espeak-ng sox ffmpeg
              postgresql chromium build-essential pkg-config)

install_debian_packages() {
    local missing=() pkg
    for pkg in "${apt_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q \
        -o DPkg::Lock::Timeout=900 "${missing[@]}" >&2
}

setup_venv() {
    local stamp=.venv/.hotline-installed
    if [[ ! -x .venv/bin/python ]]; then
        log "creating the Python venv"
        python3 -m venv .venv
    fi
    if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
        log "installing the project and its test tools into .venv"
        .venv/bin/pip install -q -U pip >&2
        .venv/bin/pip install -q -e '.[test]' >&2
        touch "$stamp"
    fi
}

setup() {
    install_debian_packages
    log "provisioning Asterisk (first time: a ~5 minute build, then cached)"
    bash asterisk-docker/provision-asterisk.sh >/dev/null
    setup_venv
    .venv/bin/hotline prompts build >&2
}

# The linters CI runs before the tests: style, formatting, the layer
# contracts (.importlinter) and types where they are complete (pyproject).
lint() {
    local py=.venv/bin
    log "ruff check, ruff format --check, lint-imports, mypy"
    "$py/ruff" check . &&
        "$py/ruff" format --check . &&
        "$py/lint-imports" &&
        "$py/mypy" ivr/flow ivr/config ivr/contracts
}

case "${1:-}" in
    lint)
        setup_venv
        lint
        ;;
    check)
        # Quick: lint, then the unit tier (no external program, seconds).
        setup_venv
        lint
        exec .venv/bin/python -m pytest -q -m unit "${@:2}"
        ;;
    demo)
        setup
        exec .venv/bin/hotline demo "${@:2}"
        ;;
    test)
        setup
        set +e
        .venv/bin/python -m pytest "${@:2}"
        rc=$?
        if [[ $rc -eq 5 ]]; then
            log "pytest collected no tests: that is a failure"
            exit 1
        fi
        ((rc == 0)) || exit $rc
        # The same database tests again on a private PostgreSQL the rig starts.
        log "database tests on PostgreSQL (HOTLINE_TEST_DB=postgresql)"
        HOTLINE_TEST_DB=postgresql .venv/bin/python -m pytest -m db "${@:2}"
        exit $?
        ;;
    setup)
        setup
        ;;
    *)
        echo "usage: $0 demo|test|check|lint|setup [args]" >&2
        exit 2
        ;;
esac
