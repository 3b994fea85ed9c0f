#!/usr/bin/env bash
# Provision an Asterisk (>= 20) for Hotline without Docker.
#
# 1. A system `asterisk` of major version >= 20 on PATH is used as it is.
# 2. Otherwise Asterisk is built from Debian's `asterisk` *source* package of the
#    unstable suite, fetched with apt through the mirror this machine already uses
#    (read from its apt sources; no host name is written here), with the bundled
#    pjproject the source package carries and a minimal module set, into a cache
#    prefix outside the repository that later runs reuse.
#
# Prints the path of the asterisk binary on its last line of stdout.
# Environment: HOTLINE_ASTERISK_PREFIX (default ~/.cache/hotline/asterisk-22),
#              HOTLINE_ASTERISK_JOBS (default: nproc + 1).
set -euo pipefail

prefix="${HOTLINE_ASTERISK_PREFIX:-$HOME/.cache/hotline/asterisk-22}"
jobs="${HOTLINE_ASTERISK_JOBS:-$(( $(nproc) + 1 ))}"
min_major=20
want_major=22

log() { printf '[asterisk-provision] %s\n' "$*" >&2; }

major_of() {  # prints the major version of an asterisk binary, or nothing
    "$1" -V 2>/dev/null | sed -n 's/^Asterisk \([0-9][0-9]*\)\..*/\1/p'
}

if sys_ast=$(command -v asterisk 2>/dev/null); then
    major=$(major_of "$sys_ast" || true)
    if [[ -n "$major" && "$major" -ge "$min_major" ]]; then
        log "using system asterisk $sys_ast (major $major)"
        echo "$sys_ast"
        exit 0
    fi
    log "system asterisk $sys_ast is too old (major '${major:-?}'), building our own"
fi

if [[ -x "$prefix/sbin/asterisk" && -f "$prefix/.hotline-complete" ]]; then
    log "reusing cached build in $prefix ($("$prefix/sbin/asterisk" -V))"
    echo "$prefix/sbin/asterisk"
    exit 0
fi

build_deps=(build-essential pkg-config libedit-dev libjansson-dev libxml2-dev uuid-dev
            libsqlite3-dev libssl-dev libncurses-dev libcurl4-openssl-dev bzip2
            libspeexdsp-dev libsrtp2-dev xz-utils dpkg-dev
            curl)  # configure wants a download tool even with pjproject cached (minimal systems)
missing=()
for pkg in "${build_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing build dependencies: ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        log "not root: install these packages first: ${missing[*]}"
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=900 "${missing[@]}" >&2 \
        || { apt-get update -q >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=900 "${missing[@]}" >&2; }
fi

# --- the machine's own Debian mirror -------------------------------------------
debian_mirror() {
    # deb822 sources first, then one-line sources; skip security and non-Debian repos.
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        uri=$(awk '
            /^[[:space:]]*$/ { if (u != "" && s ~ /(^| )(bookworm|trixie|sid|unstable|stable|testing|forky)( |$)/ && s !~ /security/) { print u; exit } u=""; s=""; next }
            /^URIs:/ { u=$2 }
            /^Suites:/ { $1=""; s=$0 }
            END { if (u != "" && s !~ /security/) print u }' "$f" | head -n1)
        if [[ -n "$uri" && "$uri" != *security* ]]; then echo "$uri"; return 0; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        uri=$(awk '$1 ~ /^deb(-src)?$/ && $0 !~ /security/ {
                   for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f" | head -n1)
        if [[ -n "$uri" && "$uri" == *debian* ]]; then echo "$uri"; return 0; fi
    done
    return 1
}

mirror=$(debian_mirror) || { log "could not find a Debian mirror in /etc/apt/sources*"; exit 1; }
log "Debian mirror taken from apt sources: $mirror"

work="${HOTLINE_ASTERISK_WORK:-$HOME/.cache/hotline/asterisk-src}"
mkdir -p "$work/apt/lists/partial" "$work/apt/archives/partial" "$work/download"
echo "deb-src $mirror sid main" > "$work/apt/sources.list"
apt_private=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
             -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache::Archives=$work/apt/archives"
             -o "APT::Sandbox::User=root"
             # sid's Release file is valid for a week; a mirror snapshot older than
             # that is refused unless HOTLINE_APT_CHECK_VALID_UNTIL=false (signatures
             # are still checked).
             -o "Acquire::Check-Valid-Until=${HOTLINE_APT_CHECK_VALID_UNTIL:-true}")

cd "$work/download"
if ! ls asterisk_*.dsc >/dev/null 2>&1; then
    log "fetching the asterisk source package list of suite sid"
    apt-get "${apt_private[@]}" update -q >&2
    log "downloading the asterisk source package"
    apt-get "${apt_private[@]}" source --download-only -q asterisk >&2
fi
dsc=$(ls asterisk_*.dsc | sort -V | tail -n1)
version=$(sed -n 's/^Version: //p' "$dsc" | head -n1)
upstream=${version#*:}; upstream=${upstream%-*}; upstream=${upstream%%~*}; upstream=${upstream%%+*}
src_major=${upstream%%.*}
log "source package version $version (upstream $upstream)"
if [[ "$src_major" -lt "$min_major" ]]; then
    log "suite sid carries Asterisk $upstream, older than $min_major"; exit 1
fi
[[ "$src_major" == "$want_major" ]] || log "note: expected Asterisk $want_major, got $src_major"

orig=$(ls asterisk_*.orig.tar.* | grep -v -- '-[A-Za-z]' | sort -V | tail -n1)
pj_orig=$(ls asterisk_*.orig-Xpjproject.tar.* | sort -V | tail -n1)
src="$work/asterisk-$upstream"
rm -rf "$src" "$work/pj"
mkdir -p "$src" "$work/pj"
log "unpacking $orig"
tar -xf "$orig" -C "$src" --strip-components=1
log "unpacking $pj_orig"
tar -xf "$pj_orig" -C "$work/pj"

# Bundled pjproject: configure wants pjproject-<ver>.tar.bz2 in the download cache
# with the md5 recorded in third-party/pjproject; build that tarball from the
# Xpjproject component so nothing is downloaded.
pj_ver=$(sed -n 's/^PJPROJECT_VERSION[[:space:]]*[:?]*=[[:space:]]*//p' "$src/third-party/versions.mak" | head -n1)
[[ -n "$pj_ver" ]] || { log "cannot read PJPROJECT_VERSION"; exit 1; }
pj_top=$(find "$work/pj" -mindepth 1 -maxdepth 1 -type d | head -n1)
if [[ -z "$pj_top" ]]; then pj_top="$work/pj"; fi
# The dfsg source drops the non-free bdimad audio driver; take it out of the
# build list as Debian's own patch 2014_pjproject_unbreak does.
sed -i 's/ bdimad_dev\.o//' "$pj_top/pjmedia/build/Makefile"
mkdir -p "$work/pjcache"
rm -rf "$work/pjcache/pjproject-$pj_ver"
cp -a "$pj_top" "$work/pjcache/pjproject-$pj_ver"
tar -C "$work/pjcache" -cjf "$work/pjcache/pjproject-$pj_ver.tar.bz2" "pjproject-$pj_ver"
rm -rf "$work/pjcache/pjproject-$pj_ver"
md5=$(md5sum "$work/pjcache/pjproject-$pj_ver.tar.bz2" | cut -d' ' -f1)
echo "$md5  pjproject-$pj_ver.tar.bz2" > "$src/third-party/pjproject/pjproject-$pj_ver.tar.bz2.md5"
log "bundled pjproject $pj_ver prepared (md5 $md5)"

cd "$src"
# codecs/ilbc is not in the dfsg source either (Debian patch 2008_disable_ilbc).
sed -i '/^\t\$(SUB_ILBC) \\$/d' codecs/Makefile

step() { log "[$1/5] $2"; }
step 1 "configure (log: $work/configure.log)"
./configure --prefix="$prefix" --with-pjproject-bundled --with-download-cache="$work/pjcache" \
    --without-sdl --disable-xmldoc >"$work/configure.log" 2>&1 \
    || { tail -n 40 "$work/configure.log" >&2; exit 1; }

step 2 "menuselect: minimal module set"
make menuselect.makeopts >"$work/menuselect.log" 2>&1
menuselect/menuselect --disable BUILD_NATIVE \
    --disable-category MENUSELECT_ADDONS --disable-category MENUSELECT_TESTS \
    --disable-category MENUSELECT_CORE_SOUNDS --disable-category MENUSELECT_MOH \
    --disable-category MENUSELECT_EXTRA_SOUNDS --disable codec_ilbc \
    menuselect.makeopts >>"$work/menuselect.log" 2>&1

step 3 "compile with $jobs jobs (log: $work/make.log); about 5 minutes on 2 cores"
(
    make -j"$jobs" >"$work/make.log" 2>&1
    echo $? >"$work/make.rc"
) &
make_pid=$!
start=$SECONDS
while kill -0 "$make_pid" 2>/dev/null; do
    sleep 30
    objs=$(find . -name '*.o' 2>/dev/null | wc -l)
    log "  ... compiling: $(( SECONDS - start ))s, $objs object files"
done
wait "$make_pid" || true
if [[ "$(cat "$work/make.rc")" != 0 ]]; then
    # With parallel jobs the first error is often far above the last lines.
    grep -n -E '(error|Error [0-9])' "$work/make.log" | head -n 20 >&2 || true
    tail -n 60 "$work/make.log" >&2
    for pjlog in third-party/pjproject/source/*.log; do
        [[ -f "$pjlog" ]] && { log "--- $pjlog"; tail -n 40 "$pjlog" >&2; }
    done
    exit 1
fi

step 4 "install into $prefix"
rm -rf "$prefix"
make install >"$work/install.log" 2>&1 || { tail -n 40 "$work/install.log" >&2; exit 1; }

step 5 "check"
"$prefix/sbin/asterisk" -V >&2
echo "$version" > "$prefix/.hotline-complete"
rm -rf "$src" "$work/pj"
log "done: $prefix/sbin/asterisk"
echo "$prefix/sbin/asterisk"
