package policies

import (
	"fmt"
	"os"
	"testing"
)

// realisticFacts are the os facts of a Debian 12 server with 1,500 installed packages and a
// dozen ports, as imv/os would fill them.
func realisticFacts() (Endpoint, Facts) {
	pkgs := make(map[string]any, 1500)
	for i := 0; i < 1497; i++ {
		pkgs[fmt.Sprintf("lib-package-%04d", i)] = fmt.Sprintf("%d.%d.%d-%d+deb12u%d", i%7, i%13, i%29, i%5+1, i%3+1)
	}
	pkgs["openssh-server"] = "1:9.2p1-2+deb12u3"
	pkgs["openssl"] = "3.0.15-1~deb12u1"
	pkgs["base-files"] = "12.4+deb12u8"
	var ports, listening []any
	for _, p := range []int64{22, 53, 68, 80, 111, 123, 443, 631, 5353, 8080, 9100, 25} {
		blocked := p == 25 || p == 631
		ports = append(ports, map[string]any{"protocol": "tcp", "port": p, "blocked": blocked})
		if !blocked {
			listening = append(listening, map[string]any{"protocol": "tcp", "port": p})
		}
	}
	return Endpoint{ID: "ep-bench", MAC: "02:00:00:00:00:01", Identity: "srv-bench", AK: "sha256:00", Channel: "pt-tls"},
		Facts{"os": {
			"name": "debian", "product": "Debian GNU/Linux 12 (bookworm)", "version": "12",
			"build": "6.1.0-18-amd64", "config": "x86_64", "version_major": int64(12), "version_minor": int64(0),
			"status": "operational", "last_use": "2025-11-20T08:15:00Z",
			"packages": pkgs, "package_count": int64(len(pkgs)), "forwarding": "disabled",
			"ports": ports, "listening": listening,
		}}
}

// BenchmarkDecide measures decisions per second with the lab policy on realistic facts.
func BenchmarkDecide(b *testing.B) {
	for _, file := range []string{"lab.yaml", "campus.yaml"} {
		b.Run(file, func(b *testing.B) {
			p, err := LoadFile("examples/" + file)
			if err != nil {
				b.Fatal(err)
			}
			ep, facts := realisticFacts()
			if file == "campus.yaml" {
				ep.Identity = "alice@staff.campus.example"
			}
			if d := p.Decide(ep, facts); d.Role != RoleAdmit {
				b.Fatalf("benchmark facts not admitted: %s %+v", d.Role, d.Trace)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p.Decide(ep, facts)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

// BenchmarkDecideScan measures a rule that iterates over all 1,500 packages.
func BenchmarkDecideScan(b *testing.B) {
	p := mustParse(b, `version: 1
rules:
  - name: no-telnetd
    when: '!os.packages.exists(k, k.startsWith("telnetd") || k.startsWith("inetutils-telnetd"))'
    role: admit
default: {role: isolate}
`)
	ep, facts := realisticFacts()
	if d := p.Decide(ep, facts); d.Role != RoleAdmit {
		b.Fatalf("%s %+v", d.Role, d.Trace)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(ep, facts)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

func BenchmarkDecideMAB(b *testing.B) {
	p, err := LoadFile("examples/campus.yaml")
	if err != nil {
		b.Fatal(err)
	}
	ep := Endpoint{MAC: "30:05:5c:12:34:56"}
	b.ReportAllocs()
	for b.Loop() {
		p.DecideMAB(ep)
	}
}

// BenchmarkParse measures loading (YAML and CEL compilation) of the campus policy.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("examples/campus.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("campus.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompareVersions(b *testing.B) {
	for b.Loop() {
		CompareVersions("1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u10")
	}
}
