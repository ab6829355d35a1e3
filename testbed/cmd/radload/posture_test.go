package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"trustnac/nac"
)

// startPDP starts trustnac's PDP in-process on loopback with the lab policy and an EAP-TTLS
// certificate for radius.test issued by the CA in caFile; pin is that certificate's
// fingerprint.
func startPDP(t *testing.T) (addr, caFile, pin string) {
	t.Helper()
	dir := t.TempDir()
	caFile, cert := testPKI(t, dir, "radius.test")
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("server.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))
	write("server.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	policy, err := os.ReadFile("../../../policies/examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	write("lab.yaml", policy)
	write("pdp.yaml", []byte(`
state_dir: state
policy: lab.yaml
pttls: {listen: 127.0.0.1:0}
api: {listen: "off"}
radius:
  auth_listen: 127.0.0.1:0
  acct_listen: "off"
  clients:
    - {name: local, network: 127.0.0.1/32, secret: testing123}
  eap: {cert: server.pem, key: server.key, timeout: 5s}
`))
	cfg, err := nac.LoadPDPConfig(filepath.Join(dir, "pdp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := nac.NewPDP(cfg, slog.New(slog.DiscardHandler))
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	sum := sha256.Sum256(cert.Certificate[0])
	return p.RADIUSAuthAddr().String(), caFile, "sha256:" + hex.EncodeToString(sum[:])
}

// TestRunPosture runs whole posture conversations of the trustnac agent against the PDP: the
// fixture decides the role, the PDP's certificate is verified by CA or pin, and a reject
// before the posture result is an error.
func TestRunPosture(t *testing.T) {
	addr, caFile, pin := startPDP(t)
	healthy, telnet := "../../fixtures/healthy", "../../fixtures/telnet"
	admit := []string{"-expect-filter", "admit", "-expect-vlan", "10", "-expect-posture", "admit"}
	tests := []struct {
		name                string
		args                []string
		code                int
		accept, reject, err uint64
	}{
		{"healthy by pin", append([]string{"-os-root", healthy, "-pin", pin}, admit...), 0, 4, 0, 0},
		{"healthy by CA", append([]string{"-os-root", healthy, "-ca", caFile, "-server-name", "radius.test", "-tls", "1.3"}, admit...), 0, 4, 0, 0},
		{"telnet remediated", []string{"-os-root", telnet, "-pin", pin, "-expect-filter", "remediate", "-expect-vlan", "30", "-expect-posture", "remediate"}, 0, 4, 0, 0},
		{"telnet is not admitted", append([]string{"-os-root", telnet, "-pin", pin}, admit...), 1, 0, 0, 4},
		{"posture result differs", []string{"-os-root", healthy, "-pin", pin, "-expect-posture", "isolate"}, 1, 0, 0, 4},
		{"wrong pin", append([]string{"-os-root", healthy, "-pin", "sha256:" + hex.EncodeToString(make([]byte, 32))}, admit...), 1, 0, 0, 4},
		{"wrong server name", append([]string{"-os-root", healthy, "-ca", caFile, "-server-name", "other.test"}, admit...), 1, 0, 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-addr", addr, "-mode", "ttls-posture", "-n", "4", "-c", "2", "-warmup", "0", "-timeout", "5s", "-macs", "3", "-json"}, tt.args...)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			var s Summary
			if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
				t.Fatalf("output %q: %v", stdout.String(), err)
			}
			if s.Accept != tt.accept || s.Reject != tt.reject || s.Error != tt.err || s.Timeout != 0 {
				t.Errorf("summary %+v", s)
			}
			if tt.accept > 0 && s.Rounds < 5 {
				t.Errorf("%.1f round trips per conversation: too few for TLS and a posture assessment", s.Rounds)
			}
		})
	}
}

func TestPostureFlags(t *testing.T) {
	dir := t.TempDir()
	caFile, _ := testPKI(t, dir, "radius.test")
	tests := []struct {
		name string
		args []string
	}{
		{"no pin or CA", nil},
		{"CA without server name", []string{"-ca", caFile}},
		{"TLS 1.2", []string{"-pin", "sha256:00", "-tls", "1.2"}},
		{"no OS root", []string{"-pin", "sha256:00", "-os-root", filepath.Join(dir, "none")}},
		{"unreadable CA", []string{"-ca", filepath.Join(dir, "none.pem"), "-server-name", "radius.test"}},
	}
	for _, tt := range tests {
		args := append([]string{"-mode", "ttls-posture", "-os-root", "../../fixtures/healthy"}, tt.args...)
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%s: exit %d, want 2; stderr %s", tt.name, code, stderr.String())
		}
	}
}
