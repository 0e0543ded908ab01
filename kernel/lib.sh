# Shared by kernel/build and kernel/vm (sourced, not run). Bash.
#
# Everything is idempotent and quick when already done: packages are
# installed only when dpkg says they are missing, Debian unstable is read
# only through a private apt state under the cache directory (never the
# system's sources), and downloads are kept there.

KERNEL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$KERNEL_DIR")
CACHE=${RINGFUSE_KERNEL_CACHE:-/var/cache/ringfuse-kernel}
# The Debian mirror this machine kind's own apt sources use.
SID_URI=${RINGFUSE_SID_URI:-http://deb.debian.org/debian}

say() { printf '%s: %s\n' "${PROG:-kernel}" "$*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
	[ "$(id -u)" = 0 ] || die "run as root: it installs packages with apt-get and writes $CACHE"
}

# need_pkgs PKG...: apt-get install the packages dpkg does not list as
# installed (from the system's own sources).
need_pkgs() {
	local missing=() p st
	for p in "$@"; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[ "$st" = "install ok installed" ] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	as_root
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
}

# sid_apt ARGS...: apt-get (or apt-cache, with SID_TOOL=apt-cache) on a
# private state that knows only Debian unstable.
sid_apt() {
	local tool=${SID_TOOL:-apt-get}
	"$tool" -o Dir::Etc::sourcelist="$CACHE/sid.sources" -o Dir::Etc::sourceparts=- \
		-o Dir::State::Lists="$CACHE/lists" -o Dir::Cache="$CACHE/cache" \
		-o Dir::State::status=/var/lib/dpkg/status -o APT::Get::List-Cleanup=false "$@"
}

sid_state() {
	mkdir -p "$CACHE/lists/partial" "$CACHE/cache/archives/partial"
	local want
	want=$(printf 'Types: deb\nURIs: %s\nSuites: sid\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$SID_URI")
	if [ ! -f "$CACHE/sid.sources" ] || [ "$(cat "$CACHE/sid.sources")" != "$want" ]; then
		printf '%s\n' "$want" > "$CACHE/sid.sources"
	fi
}

SID_UPDATED=
sid_update() {
	[ -n "$SID_UPDATED" ] && return 0
	sid_state
	say "reading Debian unstable's package lists (private apt state in $CACHE)"
	sid_apt update -qq >&2 || die "apt-get update of Debian unstable failed (network? $SID_URI)"
	SID_UPDATED=1
}

# cached_deb PKG: the newest PKG_*.deb in the cache, or nothing.
cached_deb() {
	local f
	f=$(ls "$CACHE/$1"_*_all.deb 2>/dev/null | sort -V | tail -n1)
	[ -n "$f" ] && [ -s "$f" ] && echo "$f"
}

# sid_deb PKG: path of PKG's .deb from Debian unstable in the cache,
# downloading it when the cache has none (or RINGFUSE_KERNEL_REFRESH=1 and
# sid has a newer one).
sid_deb() {
	local pkg=$1 have ver
	have=$(cached_deb "$pkg" || true)
	if [ -n "$have" ] && [ "${RINGFUSE_KERNEL_REFRESH:-0}" != 1 ]; then
		echo "$have"
		return 0
	fi
	as_root
	sid_update
	ver=$(SID_TOOL=apt-cache sid_apt show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
	if [ -z "$ver" ]; then
		[ -n "$have" ] && { say "warning: $pkg is no longer in Debian unstable; keeping $(basename "$have")"; echo "$have"; return 0; }
		die "$pkg is not in Debian unstable any more (checked $SID_URI sid main): this project needs it; put a ${pkg}_*_all.deb into $CACHE by hand or move the project to the Linux version sid packages now"
	fi
	if [ ! -s "$CACHE/${pkg}_${ver//:/%3a}_all.deb" ]; then
		say "downloading $pkg $ver from Debian unstable"
		(cd "$CACHE" && sid_apt download "$pkg" >&2) || die "apt-get download $pkg failed"
	fi
	cached_deb "$pkg"
}

# deb_version FILE.deb
deb_version() { dpkg-deb -f "$1" Version; }
