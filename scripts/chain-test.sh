#!/usr/bin/env bash
# The real-node tests of ./chainwatch/... (the node client, payouts): Debian's litecoind (a Bitcoin-Core-family node
# whose regtest stands in for Dogecoin Core, which Debian does not package; contract
# gigawallet.md §13), installed when missing as scripts/mqtt-test.sh installs mosquitto:
# `apt-get update` once, then `apt-get install -y litecoind`, with sudo when not root. The
# tests start their own regtest nodes on loopback ports below 32768 with fresh data
# directories and kill them by PID.
#
# GIGALEDGER_TEST_LITECOIND=1 makes a missing node a test failure instead of a skip, so this
# target never passes without having run them.
#
# Environment: GO [go]  CHAIN_TEST_FLAGS [-race -count=1]
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
CHAIN_TEST_FLAGS=${CHAIN_TEST_FLAGS:-"-race -count=1"}
APT_UPDATE_TIMEOUT_SECONDS=600
APT_INSTALL_TIMEOUT_SECONDS=900

have_litecoind() { command -v litecoind >/dev/null || [[ -x /usr/bin/litecoind ]]; }

if ! have_litecoind; then
	echo "== litecoind not found: installing Debian's litecoind package" >&2
	sudo=""
	[[ $(id -u) -ne 0 ]] && sudo="sudo"
	$sudo env DEBIAN_FRONTEND=noninteractive timeout "$APT_UPDATE_TIMEOUT_SECONDS" apt-get update -q
	$sudo env DEBIAN_FRONTEND=noninteractive timeout "$APT_INSTALL_TIMEOUT_SECONDS" apt-get install -y -q litecoind
	have_litecoind || { echo "litecoind still missing after the install" >&2; exit 1; }
fi

# shellcheck disable=SC2086 # CHAIN_TEST_FLAGS is a list of flags
GIGALEDGER_TEST_LITECOIND=1 exec "$GO" test $CHAIN_TEST_FLAGS -run 'Litecoind' -v ./chainwatch/... ./cmd/gigaledger
