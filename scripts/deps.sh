#!/usr/bin/env bash
# Install the Debian 12 packages embedd needs to build, test and run, if any
# are missing. Safe to run repeatedly; does nothing when all are present.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates curl jq clang-format clang
  libmicrohttpd-dev libcurl4-openssl-dev libjson-c-dev libpq-dev libcriterion-dev libssl-dev
  postgresql postgresql-contrib
  # the dashboard's browser test (tests/ui/run.sh drives it with playwright-core)
  chromium
  # promtool, which tests/api/test_metrics_api.c runs on a scrape of GET /metrics
  # (Debian has no smaller package with it; on a host run by systemd this also
  # installs an enabled prometheus service)
  prometheus
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages and not root; run: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
