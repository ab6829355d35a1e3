# trustnac: `make demo` runs the main scenario, `make test` the tests.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/nac
FUZZTIME ?= 10s

.PHONY: all deps build test demo bench fuzz vet clean

all: build

deps:
	@bash scripts/install-deps.sh

build:
	$(GO) build -o $(BIN) ./nac/cmd/nac

vet:
	$(GO) vet ./...

test: deps vet
	$(GO) test -count=1 -timeout 15m ./...
	@# Race reports go to files and are printed last, where a log's tail shows them.
	@races=$$(mktemp -d); \
	GORACE="log_path=$$races/race" $(GO) test -count=1 -race -timeout 15m \
		./transport/... ./pdp/... ./imc/... ./imv/... ./pep/... ./nac/... && rc=0 || rc=$$?; \
	for f in $$races/race.*; do [ -e "$$f" ] && { echo "== data race report $$f:"; cat "$$f"; }; done; \
	for f in $$races/race.*; do [ -e "$$f" ] && grep -h -A4 -E '^(Previous )?(read|write|Read|Write) at' "$$f"; done; \
	rm -rf "$$races"; exit $$rc

# The network-namespace lab (testbed/lab, as root): PDP, nac pep on a bridge, endpoints with
# swtpm; every outcome proved with traffic; exit 0 when all were as expected.
demo: deps build
	$(BIN) testbed demo

# The PT-TLS-only demo over loopback (no root needed).
.PHONY: demo-loopback
demo-loopback: deps build
	bash testbed/loopback-demo.sh $(BIN)

# Link up → first forwarded packet: nac pep + nac pdp with posture against hostapd -D wired +
# FreeRADIUS (EAP-TTLS/PAP, no posture) on the same bridge; BENCH_N repetitions each.
BENCH_N ?= 10
.PHONY: bench-link
bench-link: deps build
	$(BIN) testbed bench -n $(BENCH_N)

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...

# FreeRADIUS 3.2 and `nac pdp` under the same RADIUS load (testbed/radius-bench/README.md). It
# installs the freeradius package first when it is missing (scripts/install-deps.sh, as root).
.PHONY: bench-radius
bench-radius:
	@command -v freeradius >/dev/null 2>&1 || bash scripts/install-deps.sh
	bash testbed/radius-bench/bench-radius.sh

# The SM channel against PT-TLS over TLS 1.3 on loopback (handshakes/s, assessments/s with the OS
# collector) and SM4-GCM against AES-GCM record sealing, in one run (README.md, "The SM channel").
.PHONY: bench-sm
bench-sm:
	$(GO) test -run '^$$' -bench 'SM' -benchtime 2s ./nac
	$(GO) test -run '^$$' -bench 'GCMSeal|Handshake' -benchtime 2s ./transport/smdtls

# Each fuzz target a short while (FUZZTIME each).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin
