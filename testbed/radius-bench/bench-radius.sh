#!/usr/bin/env bash
# bench-radius.sh: FreeRADIUS 3.2 and trustnac's `nac pdp` under the same RADIUS load, one after
# the other on this machine, with equivalent policies (README.md in this directory).
#
#   bash testbed/radius-bench/bench-radius.sh        (or: make bench-radius)
#
# Environment (defaults in brackets): DURATION [8s] and WARMUP [1s] per run, CONCURRENCY [64]
# requests in flight for mab and pap, TTLS_CONCURRENCY [16] conversations in flight for ttls-pap
# and ttls-posture, MACS [1000] distinct MACs, MODES ["mab pap ttls-pap ttls-posture"] (ttls-posture
# runs against nac only), SERVERS ["freeradius nac nac-classic"] (nac-classic: the PDP and the agent
# with key_exchange classic, ttls-posture only), REPEAT [2] runs of each (the best counts),
# TLS [1.2] for ttls-pap (the agent of ttls-posture speaks TLS 1.3 only), NAC_BIN (a built nac
# instead of building one), KEEP=1 keeps the temporary directory.
# Exit status 0 when every run passed radload's checks. The last lines are the ratios.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-1s}
CONCURRENCY=${CONCURRENCY:-64}
TTLS_CONCURRENCY=${TTLS_CONCURRENCY:-16}
MACS=${MACS:-1000}
MODES=${MODES:-mab pap ttls-pap ttls-posture}
SERVERS=${SERVERS:-freeradius nac nac-classic}
REPEAT=${REPEAT:-2}
TLS=${TLS:-1.2}
KEEP=${KEEP:-0}

SECRET=testing123
SERVER_NAME=radius.bench.test
USER_NAME=alice
USER_PASSWORD=alice-password
# Ports away from 1812/1813 so that a system RADIUS server never clashes.
FR_AUTH_PORT=18120
FR_ACCT_PORT=18130
NAC_AUTH_PORT=18121
NAC_ACCT_PORT=18131

log() { echo "bench-radius: $*" >&2; }
die() {
	log "$*"
	exit 1
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/radius-bench.XXXXXX")
SERVER_PID=""
SERVER_NAME_RUNNING=""
LOAD_PID=""

# alive reports whether process $1 runs (a child that exited stays a zombie until waited for).
alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $st != Z* ]]
}

# stop_server stops the running server: SIGTERM, then SIGKILL after 5 s (FreeRADIUS 3.2.1 can
# hang in its thread pool's shutdown after a heavy load).
stop_server() {
	[[ -n $SERVER_PID ]] || return 0
	kill "$SERVER_PID" 2>/dev/null || true
	for _ in $(seq 1 50); do
		alive "$SERVER_PID" || break
		sleep 0.1
	done
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}

cleanup() {
	local rc=$?
	if [[ -n $LOAD_PID ]]; then
		kill "$LOAD_PID" 2>/dev/null || true
		wait "$LOAD_PID" 2>/dev/null || true
	fi
	if [[ $rc -ne 0 && $rc -ne 130 && -n $SERVER_NAME_RUNNING ]]; then
		log "last lines of the $SERVER_NAME_RUNNING logs:"
		tail -n 30 "$TMP/log/$SERVER_NAME_RUNNING.log" "$TMP/log/$SERVER_NAME_RUNNING.out" >&2 2>/dev/null || true
	fi
	stop_server
	if [[ $KEEP == 1 ]]; then
		log "kept $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$TMP/bin" "$TMP/log" "$TMP/results" "$TMP/certs"

# --- tools and binaries -----------------------------------------------------------------------

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed ($2)"; }
need go "https://go.dev/dl"
need openssl "apt-get install openssl"
need iconv "apt-get install libc-bin"
[[ " $SERVERS " == *" freeradius "* ]] && need freeradius "apt-get install freeradius"

log "building radload"
(cd "$ROOT" && go build -o "$TMP/bin/radload" ./testbed/cmd/radload)
if [[ " $SERVERS " == *" nac"* ]]; then
	if [[ -n ${NAC_BIN:-} ]]; then
		cp "$NAC_BIN" "$TMP/nac"
	else
		log "building nac"
		(cd "$ROOT" && go build -o "$TMP/nac" ./nac/cmd/nac)
	fi
fi

# --- credentials shared by both servers -------------------------------------------------------

# A CA and a server certificate for EAP-TTLS (ECDSA P-256), the same for both servers.
make_certs() {
	local d=$TMP/certs
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=radius-bench CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=$SERVER_NAME" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
	printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature" \
		"extendedKeyUsage=serverAuth" "subjectAltName=DNS:$SERVER_NAME" >"$d/server.ext"
	openssl x509 -req -days 2 -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-CAcreateserial -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
}

# nt_hash prints the NT hash (MD4 of the UTF-16LE password) in lowercase hex.
nt_hash() {
	local h
	h=$(printf '%s' "$1" | iconv -f UTF-8 -t UTF-16LE | openssl dgst -md4 -provider legacy -provider default 2>/dev/null | awk '{print $NF}') || true
	if [[ ! $h =~ ^[0-9a-f]{32}$ ]] && command -v smbencrypt >/dev/null; then
		h=$(smbencrypt "$1" 2>/dev/null | awk 'NF == 2 && length($2) == 32 {print tolower($2)}')
	fi
	[[ $h =~ ^[0-9a-f]{32}$ ]] || die "cannot compute an NT hash (openssl without MD4 and no smbencrypt)"
	echo "$h"
}

make_certs
NTHASH=$(nt_hash "$USER_PASSWORD")

# --- FreeRADIUS ------------------------------------------------------------------------------

setup_freeradius() {
	local d=$TMP/freeradius
	mkdir -p "$d/raddb/certs" "$d/raddb/mods-config/files"
	sed -e "s|@DIR@|$d|g" -e "s|@LOGDIR@|$TMP/log|g" -e "s|@AUTH_PORT@|$FR_AUTH_PORT|g" \
		-e "s|@ACCT_PORT@|$FR_ACCT_PORT|g" -e "s|@SECRET@|$SECRET|g" -e "s|@TLS_MAX@|$TLS|g" \
		"$HERE/freeradius/radiusd.conf" >"$d/raddb/radiusd.conf"
	sed -e "s|@NTHASH@|$NTHASH|g" "$HERE/freeradius/users" >"$d/raddb/mods-config/files/authorize"
	cp "$TMP/certs/ca.pem" "$TMP/certs/server.pem" "$TMP/certs/server.key" "$d/raddb/certs/"
	mkdir -p "$d/run"
	freeradius -C -d "$d/raddb" >"$TMP/log/freeradius-check.out" 2>&1 ||
		{ cat "$TMP/log/freeradius-check.out" >&2; die "FreeRADIUS rejects the generated configuration"; }
}

start_freeradius() {
	freeradius -f -d "$TMP/freeradius/raddb" >"$TMP/log/freeradius.out" 2>&1 &
	SERVER_PID=$!
	SERVER_NAME_RUNNING=freeradius
	AUTH_ADDR=127.0.0.1:$FR_AUTH_PORT
}

# --- nac pdp ---------------------------------------------------------------------------------
# The PDP's configuration (nac/config.go: PDPConfig, RADIUSConfig) and policy (policies/). Adjust
# here when their fields change.

# setup_nac writes the PDP's configuration. The policy is the lab's (policies/examples/lab.yaml:
# the same MAB and password decisions as the FreeRADIUS users file, and the posture rules that
# admit the healthy fixture), plus auth_default deny so that an unknown user is rejected as
# FreeRADIUS rejects it.
setup_nac() {
	local d=$TMP/pdp
	mkdir -p "$d/state"
	cp "$ROOT/policies/examples/lab.yaml" "$d/policy.yaml"
	if ! grep -q '^auth_default:' "$d/policy.yaml"; then
		cat >>"$d/policy.yaml" <<-EOF

			# Added by bench-radius.sh: FreeRADIUS rejects a user it does not know.
			auth_default:
			  role: deny
			  reason: "unknown user"
		EOF
	fi
	cat >"$d/users.yaml" <<-EOF
		users:
		  $USER_NAME: "nthash\$$NTHASH"
	EOF
	cat >"$d/pdp.yaml" <<-EOF
		state_dir: $d/state
		policy: $d/policy.yaml
		radius:
		  auth_listen: 127.0.0.1:$NAC_AUTH_PORT
		  acct_listen: 127.0.0.1:$NAC_ACCT_PORT
		  clients:
		    - {name: local, network: 127.0.0.1/32, secret: $SECRET}
		  users_file: $d/users.yaml
		  session_timeout: 0s
		  eap:
		    cert: $TMP/certs/server.pem
		    key: $TMP/certs/server.key
		    tls_min: "$TLS"
		    key_exchange: hybrid
		pttls:
		  listen: 127.0.0.1:0
		api:
		  listen: "off"
		log:
		  level: warn
	EOF
	"$TMP/nac" policy check "$d/policy.yaml" >"$TMP/log/nac-check.out" 2>&1 ||
		{ cat "$TMP/log/nac-check.out" >&2; die "nac rejects the generated policy"; }
	# nac-classic: the same PDP with an ECDHE-only tunnel (radius.eap.key_exchange classic).
	sed -e 's/key_exchange: hybrid/key_exchange: classic/' "$d/pdp.yaml" >"$d/pdp-classic.yaml"
}
setup_nac-classic() { [[ -f $TMP/pdp/pdp-classic.yaml ]] || setup_nac; }

# start_nac starts the PDP on a fresh state directory, so that every round starts as the first
# (the PDP stores each endpoint's first decision, as FreeRADIUS stores nothing).
start_nac() {
	local conf=${1:-pdp.yaml} name=${2:-nac}
	rm -rf "$TMP/pdp/state" && mkdir -p "$TMP/pdp/state"
	"$TMP/nac" pdp -c "$TMP/pdp/$conf" >"$TMP/log/$name.out" 2>&1 &
	SERVER_PID=$!
	SERVER_NAME_RUNNING=$name
	AUTH_ADDR=127.0.0.1:$NAC_AUTH_PORT
}
start_nac-classic() { start_nac pdp-classic.yaml nac-classic; }

# --- running ---------------------------------------------------------------------------------

# wait_ready waits until the running server accepts alice's PAP request.
wait_ready() {
	for _ in $(seq 1 100); do
		alive "$SERVER_PID" || die "$SERVER_NAME_RUNNING exited during start"
		if "$TMP/bin/radload" -addr "$AUTH_ADDR" -secret "$SECRET" -mode pap -user "$USER_NAME" \
			-password "$USER_PASSWORD" -n 1 -c 1 -warmup 0 -timeout 200ms >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	"$TMP/bin/radload" -addr "$AUTH_ADDR" -secret "$SECRET" -mode pap -n 1 -c 1 -warmup 0 -timeout 500ms >&2 || true
	die "$SERVER_NAME_RUNNING does not answer on $AUTH_ADDR"
}

# load runs radload in one mode against the running server, with the checks that make a
# misconfigured server fail instead of looking fast.
load() {
	local mode=$1 out=$2
	local args=(-addr "$AUTH_ADDR" -secret "$SECRET" -mode "$mode" -d "$DURATION" -warmup "$WARMUP"
		-macs "$MACS" -server-pid "$SERVER_PID" -json)
	case $mode in
	mab) args+=(-c "$CONCURRENCY" -expect-filter admit -expect-vlan 10 -expect-filter-other assess -expect-vlan-other 20) ;;
	pap) args+=(-c "$CONCURRENCY" -user "$USER_NAME" -password "$USER_PASSWORD" -expect-filter admit -expect-vlan 10) ;;
	ttls-pap) args+=(-c "$TTLS_CONCURRENCY" -user "$USER_NAME" -password "$USER_PASSWORD"
		-expect-filter admit -expect-vlan 10 -ca "$TMP/certs/ca.pem" -server-name "$SERVER_NAME" -tls "$TLS") ;;
	# The trustnac agent with the healthy fixture: the lab policy's debian-12-hardened rule.
	ttls-posture) args+=(-c "$TTLS_CONCURRENCY" -os-root "$ROOT/testbed/fixtures/healthy"
		-expect-filter admit -expect-vlan 10 -expect-posture admit -ca "$TMP/certs/ca.pem" -server-name "$SERVER_NAME") ;;
	esac
	# The agents of a classic PDP are configured classic too (pdp.key_exchange).
	[[ $SERVER_NAME_RUNNING == nac-classic ]] && args+=(-key-exchange classic)
	# In the background so that a signal ends the script at once.
	"$TMP/bin/radload" "${args[@]}" >"$out" 2>"$out.err" &
	LOAD_PID=$!
	if ! wait "$LOAD_PID"; then
		LOAD_PID=""
		cat "$out" "$out.err" >&2
		die "$mode against $SERVER_NAME_RUNNING failed"
	fi
	LOAD_PID=""
}

# runs reports whether server $1 is measured in mode $2: ttls-posture needs the trustnac agent's
# posture assessment inside the tunnel, which only the PDP speaks; nac-classic differs from nac only
# in the tunnel's key exchange, so it runs ttls-posture alone.
runs() {
	case $1 in
	freeradius) [[ $2 != ttls-posture ]] ;;
	nac-classic) [[ $2 == ttls-posture ]] ;;
	*) true ;;
	esac
}

# field prints a number field of radload's one-line JSON.
field() { sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" "$1"; }

for mode in $MODES; do
	case $mode in
	mab | pap | ttls-pap | ttls-posture) ;;
	*) die "unknown mode $mode (want mab, pap, ttls-pap or ttls-posture)" ;;
	esac
done
for s in $SERVERS; do
	case $s in
	freeradius) setup_freeradius ;;
	nac | nac-classic) "setup_$s" ;;
	*) die "unknown server $s (want freeradius, nac or nac-classic)" ;;
	esac
done

for round in $(seq 1 "$REPEAT"); do
	for s in $SERVERS; do
		log "round $round: $s"
		"start_$s"
		wait_ready
		for mode in $MODES; do
			runs "$s" "$mode" || continue
			out=$TMP/results/$s.$mode.$round.json
			load "$mode" "$out"
			log "$(printf '  %-12s %9.1f/s  p50 %s ms' "$mode" "$(field "$out" rate)" "$(field "$out" p50_ms)")"
		done
		stop_server
		SERVER_NAME_RUNNING=""
	done
done

# --- report ----------------------------------------------------------------------------------

# best prints "rate p50 p99 rounds server-cpu load-cpu" of the run with the highest rate of a
# server and mode.
best() {
	local f
	for f in "$TMP/results/$1.$2".*.json; do
		echo "$(field "$f" rate) $(field "$f" p50_ms) $(field "$f" p99_ms) $(field "$f" rounds)" \
			"$(field "$f" server_cpu_us) $(field "$f" load_cpu_us)"
	done | sort -g -r | head -n 1
}

echo
echo "RADIUS benchmark: $(nproc) CPUs, $DURATION per run after $WARMUP warm-up, best of $REPEAT;"
echo "mab/pap $CONCURRENCY requests in flight, ttls $TTLS_CONCURRENCY conversations in flight"
echo "(ttls-pap TLS $TLS; ttls-posture TLS 1.3, the only version the trustnac agent speaks)"
printf '%-13s %-11s %14s %10s %10s %7s %9s %9s\n' mode server "rate" "p50 ms" "p99 ms" "rounds" "srv µs" "load µs"
declare -A RATE P50 CPU
for mode in $MODES; do
	for s in $SERVERS; do
		runs "$s" "$mode" || continue
		read -r rate p50 p99 rounds srv ld <<<"$(best "$s" "$mode")"
		RATE[$s.$mode]=$rate
		P50[$s.$mode]=$p50
		CPU[$s.$mode]=${srv:-}
		unit=req/s
		[[ $mode == ttls-* ]] && unit=conv/s
		printf '%-13s %-11s %14s %10s %10s %7.1f %9.1f %9.1f\n' "$mode" "$s" "$(printf '%.1f %s' "$rate" "$unit")" \
			"$p50" "$p99" "$rounds" "${srv:-0}" "${ld:-0}"
	done
done
echo "(for ttls modes: p50 is the median conversation time, rounds the RADIUS round trips of one;"
echo " srv µs and load µs: CPU time of the server, all threads, and of radload per transaction)"
# The ratios, last: rates of the same mode (higher is better for nac), then the issue's goal, a
# whole posture conversation on nac against FreeRADIUS's TTLS/PAP without posture.
for mode in mab pap ttls-pap; do
	[[ -n ${RATE[nac.$mode]:-} && -n ${RATE[freeradius.$mode]:-} ]] || continue
	awk -v m="$mode" -v n="${RATE[nac.$mode]}" -v f="${RATE[freeradius.$mode]}" \
		'BEGIN { if (f > 0) printf "ratio %s nac/freeradius = %.2f (rate; higher is better, > 1 nac faster)\n", m, n / f }'
done
# The server's own CPU per posture conversation against FreeRADIUS's per TTLS/PAP conversation:
# what the PDP costs, without the agent's work (TLS client, collectors) that radload does on the
# same CPUs.
for s in nac nac-classic; do
	[[ -n ${CPU[$s.ttls-posture]:-} && -n ${CPU[freeradius.ttls-pap]:-} ]] || continue
	awk -v s="$s" -v n="${CPU[$s.ttls-posture]}" -v f="${CPU[freeradius.ttls-pap]}" \
		'BEGIN { if (f > 0) printf "ratio posture-vs-freeradius-ttls-pap server-cpu %s-posture/freeradius-ttls-pap = %.2f (server CPU per conversation; lower is better)\n", s, n / f }'
done
for s in nac nac-classic; do
	[[ -n ${P50[$s.ttls-posture]:-} && -n ${P50[freeradius.ttls-pap]:-} ]] || continue
	kx=hybrid
	[[ $s == nac-classic ]] && kx=classic
	awk -v s="$s" -v kx="$kx" -v n="${P50[$s.ttls-posture]}" -v f="${P50[freeradius.ttls-pap]}" \
		'BEGIN { if (f > 0) printf "ratio posture-vs-freeradius-ttls-pap median-time %s-posture/freeradius-ttls-pap = %.2f (key exchange %s; lower is better; <= 1 meets the goal)\n", s, n / f, kx }'
done
