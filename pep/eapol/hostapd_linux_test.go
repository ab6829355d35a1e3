//go:build linux

package eapol

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"trustnac/transport/eap"
	"trustnac/transport/eap/ttls"
)

// syncBuf is hostapd's output, written by exec's copier and read by the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// testPKI writes a CA and a server certificate for hostapd's EAP server into dir.
func testPKI(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trustnac test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "radius.test"}, DNSNames: []string{"radius.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("server.pem", "CERTIFICATE", der)
	write("server.key", "PRIVATE KEY", keyDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

// TestHostapdInterop runs the Supplicant (EAP-TTLS/PAP) against hostapd's wired driver and its
// internal EAP server: the right password gets the port authorized, a wrong one an EAP-Failure.
func TestHostapdInterop(t *testing.T) {
	hostapd, err := exec.LookPath("hostapd")
	if err != nil {
		t.Skip("hostapd not installed")
	}
	tests := []struct {
		name, password string
		want           eap.Outcome
	}{
		{"right password", "pw", eap.Succeeded},
		{"wrong password", "nope", eap.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newTestNetns(t)
			macAP := []byte{0x02, 0xaa, 0, 0, 0, 0x11}
			macSTA := []byte{0x02, 0xbb, 0, 0, 0, 0x22}
			ns.vethPair(t, "hapd0", "sta0", macAP, macSTA)
			dir := t.TempDir()
			roots := testPKI(t, dir)
			out := startHostapd(t, ns, hostapd, dir)

			sc := ns.open(t, "sta0")
			peer := func() *eap.Peer {
				return eap.NewPeer("anonymous", eap.PeerFactory{Type: eap.TypeTTLS, New: func() eap.PeerMethod {
					return ttls.NewPeer(&ttls.PeerConfig{
						TLS:    &tls.Config{RootCAs: roots, ServerName: "radius.test"},
						Phase2: ttls.NewInnerPeer("alice", tt.password, nil),
					})
				}})
			}
			var authMAC string
			s := &Supplicant{Conn: sc, NewPeer: peer, StartPeriod: time.Second, Once: true,
				OnOutcome: func(_ eap.Outcome, a net.HardwareAddr) { authMAC = a.String() }}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			o, err := s.Run(ctx)
			if err != nil || o != tt.want {
				t.Fatalf("Supplicant.Run = %v, %v; want %v", o, err, tt.want)
			}
			if authMAC != net.HardwareAddr(macAP).String() {
				t.Fatalf("authenticator %s, want %s", authMAC, net.HardwareAddr(macAP))
			}
			if tt.want == eap.Succeeded {
				waitFor(t, "hostapd to authorize the port", func() bool {
					return strings.Contains(out.String(), "IEEE 802.1X: authorizing port")
				})
				return
			}
			waitFor(t, "hostapd's EAP-Failure", func() bool { return strings.Contains(out.String(), "CTRL-EVENT-EAP-FAILURE") })
			if strings.Contains(out.String(), "IEEE 802.1X: authorizing port") {
				t.Fatal("hostapd authorized the port for a wrong password")
			}
		})
	}
}

// startHostapd runs hostapd -D wired on hapd0 in ns with its internal EAP server: TTLS in
// phase 1 for anyone, PAP for alice/pw in phase 2.
func startHostapd(t *testing.T, ns *testNetns, hostapd, dir string) *syncBuf {
	t.Helper()
	users := "* TTLS\n\"alice\" TTLS-PAP \"pw\" [2]\n"
	if err := os.WriteFile(filepath.Join(dir, "eap_users"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := strings.Join([]string{
		"interface=hapd0", "driver=wired", "logger_stdout=-1", "logger_stdout_level=1",
		"ieee8021x=1", "eapol_version=2", "eap_reauth_period=0", "use_pae_group_addr=1",
		"eap_server=1", "eap_user_file=" + filepath.Join(dir, "eap_users"),
		"ca_cert=" + filepath.Join(dir, "ca.pem"), "server_cert=" + filepath.Join(dir, "server.pem"),
		"private_key=" + filepath.Join(dir, "server.key"), "",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "hostapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &syncBuf{}
	cmd := exec.Command(hostapd, "-d", filepath.Join(dir, "hostapd.conf"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := ns.do(t, cmd.Start); err != nil {
		t.Fatalf("start hostapd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("hostapd output:\n%s", out.String())
		}
	})
	waitFor(t, "hostapd ready", func() bool {
		s := out.String()
		return strings.Contains(s, "hapd0: interface state UNINITIALIZED->ENABLED") || strings.Contains(s, "initialization failed")
	})
	if strings.Contains(out.String(), "initialization failed") {
		t.Fatal("hostapd failed to initialize")
	}
	return out
}
