#!/usr/bin/env bash
# The loopback demo behind `make demo`: a PDP with the example lab policy and
# an embedded store, and agents with different facts assessed over PT-TLS.
# Exits 0 when every outcome is the expected one.
set -uo pipefail

nac=$(realpath "${1:-bin/nac}")
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
addr=127.0.0.2
work=$(mktemp -d /tmp/trustnac-demo.XXXXXX)
pdp_pid=
cleanup() {
	[ -n "$pdp_pid" ] && kill "$pdp_pid" 2>/dev/null && wait "$pdp_pid" 2>/dev/null
	[ -n "${swtpm_pid:-}" ] && kill "$swtpm_pid" 2>/dev/null && wait "$swtpm_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail=0

# SASL PLAIN accounts, one per endpoint, hashed as an admin would.
{
	echo "users:"
	for u in term-healthy term-telnet term-outdated tpm-terminal; do
		printf '  %s: "%s"\n' "$u" "$(printf '%s-password' "$u" | "$nac" passwd --iterations 20000)"
		printf '%s-password\n' "$u" >"$work/$u.password"
	done
} >"$work/users.yaml"

# A software TPM for the attested terminal: swtpm manufactured by swtpm_setup with EK
# certificates from a CA of its own, which the PDP trusts for enrollment.
tpmdir=$work/tpm
mkdir -p "$tpmdir/state" "$tpmdir/ca"
printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
	"$tpmdir/ca" "$tpmdir/ca" "$tpmdir/ca" "$tpmdir/ca" >"$tpmdir/localca.conf"
printf -- '--platform-manufacturer trustnac\n--platform-version 1.0\n--platform-model demo\n' >"$tpmdir/localca.options"
printf 'create_certs_tool = swtpm_localca\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = %s\nactive_pcr_banks = sha1,sha256\n' \
	"$tpmdir/localca.conf" "$tpmdir/localca.options" >"$tpmdir/setup.conf"
swtpm_setup --tpm2 --tpmstate "$tpmdir/state" --create-ek-cert --config "$tpmdir/setup.conf" \
	--pcr-banks sha1,sha256 --overwrite >"$tpmdir/setup.log" 2>&1 || { cat "$tpmdir/setup.log" >&2; exit 1; }
swtpm socket --tpm2 --tpmstate dir="$tpmdir/state" --server type=unixio,path="$tpmdir/tpm.sock" \
	--ctrl type=unixio,path="$tpmdir/tpm.sock.ctrl" --flags startup-clear,not-need-init >"$tpmdir/swtpm.log" 2>&1 &
swtpm_pid=$!
for _ in $(seq 50); do [ -S "$tpmdir/tpm.sock" ] && TPM2TOOLS_TCTI="swtpm:path=$tpmdir/tpm.sock" tpm2_getcap properties-fixed >/dev/null 2>&1 && break; sleep 0.1; done
export TPM2TOOLS_TCTI="swtpm:path=$tpmdir/tpm.sock"

# The policy in force: the example lab policy plus the reference values of this TPM's boot
# (read now, as an admin would record a golden image's).
cp "$top/policies/examples/lab.yaml" "$work/policy.yaml"
{
	printf '\nreference_values:\n  - name: demo-golden-image\n    groups: [attested]\n    pcrs:\n      sha256:\n'
	tpm2_pcrread sha256:0,1,2,3,4,5,6,7,10 | awk '/^ *[0-9]+ *:/ { gsub(/ /, ""); split($0, a, ":"); printf "        %s: \"%s\"\n", a[1], tolower(substr(a[2], 3)) }'
} >>"$work/policy.yaml"

cat >"$work/pdp.yaml" <<YAML
state_dir: $work/state
policy: $work/policy.yaml
pttls:
  listen: $addr:271
  names: [$addr]
  users_file: $work/users.yaml
  require_sasl: true
tpm:
  ek_roots: [$tpmdir/ca/swtpm-localca-rootca-cert.pem, $tpmdir/ca/issuercert.pem]
api:
  listen: $addr:8271
log:
  level: info
  audit: $work/decisions.jsonl
YAML

start_pdp() {
	local before
	before=$(grep -c "pdp ready" "$work/pdp.log" 2>/dev/null)
	"$nac" pdp --config "$work/pdp.yaml" 2>>"$work/pdp.log" &
	pdp_pid=$!
	for _ in $(seq 100); do
		[ "$(grep -c "pdp ready" "$work/pdp.log" 2>/dev/null)" -gt "${before:-0}" ] && return 0
		kill -0 "$pdp_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "the PDP did not start:" >&2
	cat "$work/pdp.log" >&2
	exit 1
}

say "policy check"
"$nac" policy check "$work/policy.yaml" || fail=1

say "starting the PDP on $addr:271 (PT-TLS, TLS 1.3, SASL PLAIN required)"
start_pdp
pin=$(grep -o 'fingerprint=sha256:[0-9a-f]*' "$work/pdp.log" | head -1 | cut -d= -f2)
echo "PDP certificate pin: $pin"

# agent NAME FIXTURE EXPECTED-EXIT
agent() {
	local name=$1 fixture=$2 want=$3
	say "agent $name (facts from testbed/fixtures/$fixture), expecting exit $want"
	"$nac" agent --pdp "$addr:271" --pin "$pin" --identity "$name" \
		--password-file "$work/$name.password" --os-root "$here/fixtures/$fixture"
	local got=$?
	if [ "$got" != "$want" ]; then
		echo "UNEXPECTED: exit $got, want $want" >&2
		fail=1
	else
		echo "(exit $got as expected)"
	fi
}

agent term-healthy healthy 0     # admit
agent term-telnet telnet 2       # remediate, with instructions
agent term-outdated outdated 3   # isolate by the default rule

# The attested terminal: OS facts from the healthy fixture, and its TPM.
cat >"$work/tpm-agent.yaml" <<YAML
pdp: {address: "$addr:271", pin: "$pin"}
identity: tpm-terminal
password_file: $work/tpm-terminal.password
collectors:
  os: {root: $here/fixtures/healthy}
  tpm: {device: "unix:$tpmdir/tpm.sock", state_dir: $work/agent-tpm, ak_alg: ecc-p256, event_log: "-", ima_log: "-"}
YAML
tpm_agent() {
	local want=$1
	say "agent tpm-terminal (swtpm, ECC P-256 attestation key), expecting exit $want"
	"$nac" agent --config "$work/tpm-agent.yaml"
	local got=$?
	[ "$got" = "$want" ] && echo "(exit $got as expected)" || { echo "UNEXPECTED: exit $got, want $want" >&2; fail=1; }
}
tpm_agent 0   # AK enrolled by EK certificate + credential activation; PCRs match the reference
say "something extends PCR 7 on the attested terminal (a changed Secure Boot policy)"
tpm2_pcrextend 7:sha256=$(printf '5a%.0s' $(seq 32))
tpm_agent 3   # the quote still verifies, the PCRs do not match: isolate with remediation
say "enrolled attestation keys"
"$nac" endpoints aks --api "$addr:8271"

say "an agent with a wrong password gets no decision"
echo wrong >"$work/wrong.password"
"$nac" agent --pdp "$addr:271" --pin "$pin" --identity term-healthy \
	--password-file "$work/wrong.password" --os-root "$here/fixtures/healthy"
got=$?
[ "$got" = 1 ] && echo "(exit 1 as expected)" || { echo "UNEXPECTED: exit $got" >&2; fail=1; }

say "an agent that pins the wrong certificate refuses the PDP"
"$nac" agent --pdp "$addr:271" --pin "sha256:$(printf '0%.0s' $(seq 64))" --os-root "$here/fixtures/healthy"
got=$?
[ "$got" = 1 ] && echo "(exit 1 as expected)" || { echo "UNEXPECTED: exit $got" >&2; fail=1; }

say "endpoints (from the PDP's admin API)"
"$nac" endpoints --api "$addr:8271"

say "restarting the PDP: the embedded store keeps the decisions"
kill "$pdp_pid"; wait "$pdp_pid" 2>/dev/null; pdp_pid=
"$nac" endpoints --store "$work/state/pdp.db"
start_pdp
n=$("$nac" endpoints --api "$addr:8271" --json | grep -c '"role"')
[ "$n" = 4 ] && echo "4 endpoints after restart" || { echo "UNEXPECTED: $n endpoints after restart" >&2; fail=1; }

say "audit log (one JSON line per decision)"
cat "$work/decisions.jsonl"

if [ "$fail" = 0 ]; then
	say "demo: every outcome as expected"
else
	say "demo: FAILED"
	echo "PDP log:"; cat "$work/pdp.log"
fi
exit $fail
