#!/usr/bin/env bash
# One entry point for a fresh Debian machine (root, or sudo for apt):
#   ./hotline.sh demo   set up everything, run the stack on the example config
#                       and place a demo call to a ward chairman
#   ./hotline.sh test   set up everything and run the whole test suite
#   ./hotline.sh check  quick: the linters and the unit tier (no Asterisk needed)
#   ./hotline.sh unit-py313  the unit tier on Python 3.13 in .venv313 (CI runs it)
# Supported: Debian 12 (Python 3.11) and Debian 13 (Python 3.13); the package
# names below are the same on both.
# Set-up is idempotent: Debian packages, Asterisk (system >= 20 or a cached
# build from Debian's source package), the Python venv, the voice prompts.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)

log() { printf '[hotline.sh] %s\n' "$*" >&2; }

# kamailio: the SIP proxy in front of several Asterisk nodes (docs/cluster.md).
apt_packages=(python3 python3-venv python3-dev sip-tester espeak-ng sox ffmpeg
              postgresql kamailio chromium build-essential pkg-config)

# Debian 12 ships Python 3.11, Debian 13 Python 3.13; the code needs 3.11
# (StrEnum, TaskGroup, tomllib). Anything else is tried, with a warning.
check_system() {
    local id="" version=""
    if [[ -r /etc/os-release ]]; then
        id=$(. /etc/os-release && echo "${ID:-}")
        version=$(. /etc/os-release && echo "${VERSION_ID:-}")
    fi
    if [[ $id != debian || ! $version =~ ^(12|13)$ ]]; then
        log "warning: tested on Debian 12 and 13 only; this is ${id:-unknown} ${version:-?}"
    fi
    if ! command -v python3 >/dev/null; then
        log "python3 not found"
        return 1
    fi
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        log "$(python3 -V 2>&1) is too old: Hotline needs Python 3.11 or newer (Debian 12 or 13)"
        return 1
    fi
}

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

# The administrative units' data release the examples were imported from.
OFFICIAL_UNITS_RELEASE=2026.9.0

# vietnam-provinces' 2026 releases declare Python >= 3.12 although their code
# runs on 3.11; Debian 12's Python would otherwise get 2025.10.1, whose codes
# for 27 Hà Nội units were since corrected. pyproject.toml says the same.
official_units_data() {
    local venv=$1
    if "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info >= (3, 12))'; then
        "$venv/bin/pip" install -q --ignore-requires-python \
            "vietnam-provinces==$OFFICIAL_UNITS_RELEASE" >&2
    fi
}

setup_venv() {
    local stamp=.venv/.hotline-installed
    if [[ ! -x .venv/bin/python ]]; then
        check_system
        log "creating the Python venv"
        python3 -m venv .venv
    fi
    if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
        log "installing the project and its test tools into .venv"
        .venv/bin/pip install -q -U pip >&2
        .venv/bin/pip install -q -e '.[test]' >&2
        official_units_data .venv
        touch "$stamp"
    fi
}

# The second Python CI tests: 3.13 (Debian 13's) next to the venv's 3.11
# (Debian 12's), or the other way round. HOTLINE_PY313 names the interpreter;
# else python3.13 on PATH, else pyenv's.
python313() {
    local candidate
    for candidate in "${HOTLINE_PY313:-}" "$(command -v python3.13 || true)" \
        "$HOME"/.pyenv/versions/3.13*/bin/python3.13; do
        # (a pyenv shim is on PATH yet may refuse to run: try each one)
        if [[ -n $candidate && -x $candidate ]] &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

setup_venv313() {
    local python stamp=.venv313/.hotline-installed
    if [[ ! -x .venv313/bin/python ]]; then
        python=$(python313) || {
            log "no Python 3.13 found (install python3.13 or set HOTLINE_PY313)"
            return 1
        }
        log "creating the Python 3.13 venv .venv313 with $python"
        "$python" -m venv .venv313
    fi
    if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
        log "installing the project and its test tools into .venv313"
        .venv313/bin/pip install -q -e '.[test]' >&2
        official_units_data .venv313
        touch "$stamp"
    fi
}

# The unit tier (no external program) on Python 3.13.
unit_tier_py313() {
    if .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
        log ".venv is Python 3.13 already (Debian 13): its test run covers 3.13"
        return 0
    fi
    setup_venv313
    log "the unit tier on $(.venv313/bin/python -V)"
    .venv313/bin/python -m pytest -q -m unit -p no:cacheprovider "$@"
}

setup() {
    check_system
    install_debian_packages
    log "provisioning Asterisk (first time: a ~5 minute build, then cached)"
    bash asterisk-docker/provision-asterisk.sh >/dev/null
    setup_venv
    .venv/bin/hotline prompts build >&2
}

# The linters CI runs before the tests: style, formatting, the layer
# contracts (.importlinter) and types over the whole product (pyproject).
lint() {
    local py=.venv/bin
    log "ruff check, ruff format --check, lint-imports, mypy"
    "$py/ruff" check . &&
        "$py/ruff" format --check . &&
        "$py/lint-imports" &&
        "$py/mypy" ivr queue_manager agi_scripts
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
    unit-py313)
        unit_tier_py313 "${@:2}"
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
        echo "usage: $0 demo|test|check|lint|unit-py313|setup [args]" >&2
        exit 2
        ;;
esac
