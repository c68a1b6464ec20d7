#!/usr/bin/env bash
# A Debian 12 base image made locally, for machines that reach a Debian
# mirror but no image registry: debootstrap --variant=minbase bookworm, trimmed
# like debian:12-slim (no manuals, docs or translations; apt leaves no
# downloaded packages or caches in layers), then `docker import`. Run as root.
#
#   bash tests/docker/debian-base.sh [TAG]     (default debian:12-slim)
#
# The mirror is DEBIAN_MIRROR, else the first Debian archive this machine's
# apt sources name, else deb.debian.org. The image is labelled
# embedd.image=base, so `docker image ls -f label=embedd.image` lists it.
set -euo pipefail

tag=${1:-debian:12-slim}
docker=${DOCKER:-docker}

# URLs of this machine's apt sources, one-line and deb822 formats alike.
apt_urls() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | sed -nE 's/^[[:space:]]*(deb[[:space:]]+(\[[^]]*\][[:space:]]+)?|URIs:[[:space:]]*)//p' |
    tr ' ' '\n' | grep -E '^https?://' || true
}

mirror=${DEBIAN_MIRROR:-$(apt_urls | grep -E '/debian/?$' | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}
security=$(apt_urls | grep -E '/debian-security/?$' | head -n 1)
security=${security:-http://deb.debian.org/debian-security}

for tool in debootstrap "$docker"; do
  command -v "$tool" >/dev/null || { echo "debian-base: $tool is not installed" >&2; exit 1; }
done

dir=$(mktemp -d /tmp/embedd-debian-base.XXXXXX)
trap 'rm -rf "$dir"' EXIT

echo "debian-base: debootstrap --variant=minbase bookworm from $mirror" >&2
if ! debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1; then
  tail -n 20 "$dir.log" >&2
  rm -f "$dir.log"
  exit 1
fi
rm -f "$dir.log"

# What debian:12-slim leaves out, and keeps out of later apt-get installs.
cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
find "$dir/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/lintian/*
find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# apt keeps no downloaded packages nor package caches in image layers
cat >"$dir/etc/apt/apt.conf.d/docker-slim" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
rm -rf "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
rm -f "$dir/etc/hostname" "$dir/etc/resolv.conf"

cat >"$dir/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF

tar --numeric-owner -C "$dir" -c . |
  "$docker" import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL embedd.image=base' - "$tag" >/dev/null
echo "debian-base: imported $tag" >&2
