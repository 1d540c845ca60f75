# Sourced by the fetch scripts: download one Debian arm64 package into the
# cache, verified against the package index's SHA256.
#
#   deb_fetch PKG    -> prints the cached .deb's path
#   deb_resolve_kernel -> prints linux-image-arm64:arm64's current
#                         dependency (linux-image-X.Y.Z-N-arm64:arm64)
#
# A cached file whose checksum does not match is deleted and fetched again;
# a download is checked before it is moved into the cache, so a partial or
# failed one is never used.
cache=${PIVISOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pivisor}/debian
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
_say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

deb_arch() {
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        _say "adding dpkg architecture arm64 (for Debian's arm64 packages)"
        $SUDO dpkg --add-architecture arm64
        $SUDO apt-get update -qq
    fi
}

deb_resolve_kernel() {
    deb_arch
    local pkg
    pkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
    if [ -z "$pkg" ]; then
        $SUDO apt-get update -qq
        pkg=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-/ { print $2; exit }')
    fi
    [ -n "$pkg" ] || { _say "cannot resolve linux-image-arm64:arm64"; return 1; }
    echo "${pkg%:arm64}:arm64"
}

deb_fetch() {
    local pkg=$1 file sum want deb tmp got
    deb_arch
    # 'URI' file size SHA256:hash, for the candidate version.
    read -r _ file _ sum < <(apt-get download --print-uris "$pkg" | head -n1)
    [ -n "${file:-}" ] || { $SUDO apt-get update -qq; read -r _ file _ sum < <(apt-get download --print-uris "$pkg" | head -n1); }
    [ -n "${file:-}" ] || { _say "apt cannot download $pkg"; return 1; }
    want=${sum#SHA256:}
    mkdir -p "$cache"
    deb="$cache/$file"
    if [ -f "$deb" ] && [ "$(sha256sum "$deb" | cut -d' ' -f1)" != "$want" ]; then
        _say "cached $file fails its checksum: fetching it again"
        rm -f "$deb"
    fi
    if [ ! -f "$deb" ]; then
        _say "downloading $pkg"
        tmp=$(mktemp -d "$cache/dl.XXXXXX")
        chmod 755 "$tmp"
        (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) || (cd "$tmp" && apt-get download "$pkg" >&2)
        got=$(sha256sum "$tmp"/*.deb | cut -d' ' -f1)
        [ "$got" = "$want" ] || { rm -rf "$tmp"; _say "checksum mismatch for $file"; return 1; }
        mv "$tmp"/*.deb "$deb"
        rm -rf "$tmp"
    fi
    echo "$deb"
}

# The machine's own Debian archive for bookworm (its apt sources, deb822
# or one-line), for debootstrap: never written into the project.
deb_mirror() {
    local m
    m=$(awk '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if($i=="bookworm") s=1}
             /^$/{if(s&&u~/\/debian\/?$/){print u; exit} s=0; u=""}
             END{if(s&&u~/\/debian\/?$/) print u}' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    [ -n "$m" ] || m=$(awk '$1=="deb" && $3=="bookworm" && $2~/\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    [ -n "$m" ] || { _say "no Debian bookworm archive in this machine's apt sources"; return 1; }
    echo "$m"
}
