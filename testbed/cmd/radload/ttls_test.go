package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/vendors/microsoft"

	"trustnac/transport/eap"
	"trustnac/transport/eap/ttls"
	tradius "trustnac/transport/radius"
)

// testPKI writes a CA certificate to dir/ca.pem and returns a server certificate for name
// issued by it.
func testPKI(t *testing.T, dir, name string) (caFile string, cert tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "radload test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ttlsServer is a minimal EAP-TTLS/PAP RADIUS server: conversations keyed by State, alice
// admitted with Filter-Id admit and the MSK in MS-MPPE keys. badKeys sends keys that differ
// from the MSK; posture offers an inner EAP method after PAP, as the PDP does, and admits on
// the password alone when the peer refuses it.
type ttlsServer struct {
	cert    tls.Certificate
	badKeys bool
	posture bool
	naks    atomic.Int64
	mu      sync.Mutex
	convs   map[string]*ttlsConv
	next    atomic.Uint64
}

type ttlsConv struct {
	eap    *eap.Server
	method *ttls.Server
}

func (s *ttlsServer) ServeRADIUS(ctx context.Context, r *tradius.Request) *radius.Packet {
	req := r.Packet
	raw, ok := tradius.EAPMessage(req)
	if !ok {
		return nil
	}
	in, err := eap.Parse(raw)
	if err != nil {
		return nil
	}
	state := string(rfc2865.State_Get(req))
	s.mu.Lock()
	c := s.convs[state]
	delete(s.convs, state)
	s.mu.Unlock()
	if c == nil {
		c = &ttlsConv{}
		c.eap = eap.NewServer(eap.SelectorFunc(func(ctx context.Context, id string, done []eap.ServerMethod, nak []eap.Type) (eap.ServerMethod, bool, error) {
			if len(done) > 0 {
				return nil, true, nil
			}
			c.method = ttls.NewServer(&ttls.ServerConfig{
				TLS: &tls.Config{Certificates: []tls.Certificate{s.cert}},
				Phase2: func(ttls.TunnelInfo) ttls.Phase2 {
					cfg := ttls.InnerConfig{PAP: func(_ context.Context, user, password string) bool {
						return user == "alice" && password == "alice-password"
					}}
					if s.posture {
						cfg.Selector = eap.SelectorFunc(func(_ context.Context, _ string, _ []eap.ServerMethod, nak []eap.Type) (eap.ServerMethod, bool, error) {
							if nak == nil {
								return postureStub{}, false, nil
							}
							s.naks.Add(1)
							return nil, true, nil
						})
					}
					return ttls.NewInnerServer(cfg)
				},
			})
			return c.method, false, nil
		}), 0)
	}
	out, err := c.eap.Handle(ctx, in)
	if err != nil || out == nil {
		return nil
	}
	b, _ := out.MarshalBinary()
	var reply *radius.Packet
	switch out.Code {
	case eap.CodeRequest:
		reply = req.Response(radius.CodeAccessChallenge)
		st := strconv.FormatUint(s.next.Add(1), 10)
		_ = rfc2865.State_SetString(reply, st)
		s.mu.Lock()
		s.convs[st] = c
		s.mu.Unlock()
	case eap.CodeSuccess:
		reply = req.Response(radius.CodeAccessAccept)
		msk := append([]byte(nil), c.method.MSK()...)
		if s.badKeys {
			msk[0] ^= 1
		}
		_ = microsoft.MSMPPERecvKey_Add(reply, msk[:32])
		_ = microsoft.MSMPPESendKey_Add(reply, msk[32:64])
		_ = rfc2865.FilterID_SetString(reply, "admit")
		_ = rfc2868.TunnelPrivateGroupID_SetString(reply, 0, "10")
	default:
		reply = req.Response(radius.CodeAccessReject)
	}
	if c.method != nil && out.Code != eap.CodeRequest {
		c.method.Close()
	}
	tradius.SetEAPMessage(reply, b)
	return reply
}

// postureStub stands for the PDP's PT-EAP method; radload's peer must refuse it.
type postureStub struct{}

func (postureStub) Type() eap.Type                        { return eap.TypePTEAP }
func (postureStub) Start(context.Context) ([]byte, error) { return []byte{0x21}, nil }
func (postureStub) Process(context.Context, []byte) (eap.Step, error) {
	return eap.Step{Done: true}, nil
}

func startTTLSServer(t *testing.T, s *ttlsServer) string {
	t.Helper()
	clients, err := tradius.NewClients([]tradius.ClientConfig{{Name: "local", Network: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte("testing123")}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.convs = map[string]*ttlsConv{}
	srv := &tradius.Server{Clients: clients, Handler: s}
	go srv.Serve(pc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return pc.LocalAddr().String()
}

// TestRunTTLS runs whole EAP-TTLS/PAP conversations against an in-process server: keys and
// Filter-Id checked, the server's certificate verified against -ca and -server-name.
func TestRunTTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, cert := testPKI(t, dir, "radius.test")
	good := startTTLSServer(t, &ttlsServer{cert: cert})
	bad := startTTLSServer(t, &ttlsServer{cert: cert, badKeys: true})
	posture := &ttlsServer{cert: cert, posture: true}
	withPosture := startTTLSServer(t, posture)
	tests := []struct {
		name                string
		addr                string
		args                []string
		code                int
		accept, reject, err uint64
	}{
		{"tls 1.2", good, []string{"-tls", "1.2"}, 0, 10, 0, 0},
		{"tls 1.3", good, []string{"-tls", "1.3"}, 0, 10, 0, 0},
		{"wrong password", good, []string{"-password", "nope"}, 1, 0, 10, 0},
		{"wrong server name", good, []string{"-server-name", "other.test"}, 1, 0, 0, 10},
		{"keys differ from the MSK", bad, nil, 1, 0, 0, 10},
		{"inner EAP refused", withPosture, nil, 0, 10, 0, 0},
		{"wrong Filter-Id", good, []string{"-expect-filter", "assess"}, 1, 0, 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-addr", tt.addr, "-mode", "ttls-pap", "-ca", caFile, "-server-name", "radius.test",
				"-n", "10", "-c", "2", "-warmup", "0", "-timeout", "2s", "-expect-filter", "admit", "-expect-vlan", "10", "-json"}, tt.args...)
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
			if tt.accept > 0 && s.Rounds < 3 {
				t.Errorf("%.1f round trips per conversation", s.Rounds)
			}
		})
	}
	if n := posture.naks.Load(); n != 10 {
		t.Errorf("server saw %d Naks of its inner method, want 10", n)
	}
}
