#!/usr/bin/env bash
# Installs the system packages the tests run as real peers, when missing:
# nginx (the proxy in front of the server). The browser (Debian's chromium)
# is installed by js-client/test.sh. Needs root and apt-get; otherwise it says
# what is missing and the tests that need it skip (or fail when CI=true).
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
	echo "setup: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]})" >&2
	exit 0
fi
echo "setup: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
