#!/usr/bin/env bash
# Installs what trustnac's build, tests and demo need on Debian 12, as root,
# skipping what is already there. Go itself is expected on the PATH (or in
# /usr/local/go/bin).
set -euo pipefail

# swtpm, swtpm-tools and tpm2-tools: software TPMs and the tpm2-tools interop tests;
# libssl-dev: the go-tpm-tools simulator (cgo) in tests.
# freeradius-utils (radclient), eapoltest, hostapd, wpasupplicant: RADIUS/EAP interop tests;
# freeradius: the reference server of `make bench-radius` and `make bench-link`;
# curl, iputils-ping: exploring the lab of `nac testbed up` by hand.
pkgs=(ca-certificates git make gcc iproute2 procps libssl-dev swtpm swtpm-tools tpm2-tools
	freeradius freeradius-utils eapoltest hostapd wpasupplicant nftables curl iputils-ping)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
	# The freeradius package starts a server on 1812; trustnac's examples use that port and the
	# benchmark starts its own FreeRADIUS, so keep the system one off.
	if [[ " ${missing[*]} " == *" freeradius "* ]] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now freeradius >/dev/null 2>&1 || true
	fi
fi

if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		echo "install-deps: add /usr/local/go/bin to PATH" >&2
	else
		echo "install-deps: Go 1.26 is needed (golang.org/dl or /usr/local/go)" >&2
	fi
	exit 1
fi
go mod download
