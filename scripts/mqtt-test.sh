#!/usr/bin/env bash
# The relay's MQTT tests against a real mosquitto broker (Debian's package), installed when
# missing as bench/compare.sh installs PostgreSQL: `apt-get update` once, then
# `apt-get install -y mosquitto mosquitto-clients`, with sudo when not root. The tests start
# their own brokers on loopback ports below 32768 with generated configurations and kill them
# by PID; the system service the package may start (port 1883) is not used.
#
# GIGALEDGER_TEST_MOSQUITTO=1 makes a missing broker a test failure instead of a skip, so this
# target never passes without having run them.
#
# Environment: GO [go]  MQTT_TEST_FLAGS [-race -count=1]
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
MQTT_TEST_FLAGS=${MQTT_TEST_FLAGS:-"-race -count=1"}
APT_UPDATE_TIMEOUT_SECONDS=600
APT_INSTALL_TIMEOUT_SECONDS=900

have_mosquitto() { command -v mosquitto >/dev/null || [[ -x /usr/sbin/mosquitto ]]; }

if ! have_mosquitto; then
	echo "== mosquitto not found: installing Debian's mosquitto package" >&2
	sudo=""
	[[ $(id -u) -ne 0 ]] && sudo="sudo"
	$sudo env DEBIAN_FRONTEND=noninteractive timeout "$APT_UPDATE_TIMEOUT_SECONDS" apt-get update -q
	$sudo env DEBIAN_FRONTEND=noninteractive timeout "$APT_INSTALL_TIMEOUT_SECONDS" apt-get install -y -q mosquitto mosquitto-clients
	have_mosquitto || { echo "mosquitto still missing after the install" >&2; exit 1; }
fi

# shellcheck disable=SC2086 # MQTT_TEST_FLAGS is a list of flags
GIGALEDGER_TEST_MOSQUITTO=1 exec "$GO" test $MQTT_TEST_FLAGS -run 'MQTT' -v ./cluster/relay/ ./cmd/gigaledger/
