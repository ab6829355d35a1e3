package ttls

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"sync"
	"testing"
	"time"

	"trustnac/transport/eap"
)

const serverName = "pdp.trustnac.test"

type testCert struct {
	cert tls.Certificate
	pool *x509.CertPool
	pin  [32]byte // SHA-256 of the leaf
}

var certs = sync.OnceValues(func() ([2]*testCert, error) {
	var out [2]*testCert
	for i := range out {
		c, err := makeCert(fmt.Sprintf("trustnac test %d", i))
		if err != nil {
			return out, err
		}
		out[i] = c
	}
	return out, nil
})

func makeCert(cn string) (*testCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              []string{serverName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &testCert{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pool: pool,
		pin:  sha256.Sum256(der),
	}, nil
}

// testCerts returns the server's certificate and another, unrelated one.
func testCerts(tb testing.TB) (server, other *testCert) {
	tb.Helper()
	c, err := certs()
	if err != nil {
		tb.Fatal(err)
	}
	return c[0], c[1]
}

func serverTLS(tb testing.TB, version uint16) *tls.Config {
	srv, _ := testCerts(tb)
	return &tls.Config{Certificates: []tls.Certificate{srv.cert}, MaxVersion: version}
}

func peerTLS(tb testing.TB, version uint16) *tls.Config {
	srv, _ := testCerts(tb)
	return &tls.Config{RootCAs: srv.pool, ServerName: serverName, MaxVersion: version}
}

// pinnedTLS trusts exactly the certificate with the given SHA-256.
func pinnedTLS(pin [32]byte) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // the pin below is the verification
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || sha256.Sum256(raw[0]) != pin {
				return errors.New("certificate does not match the pin")
			}
			return nil
		},
	}
}

// typeFake is the Experimental EAP type (RFC 3748 §5.8), used by the fake inner method.
const typeFake eap.Type = 255

// fakeServer is an inner EAP method: it sends a challenge of size bytes and succeeds when the
// peer echoes it back reversed.
type fakeServer struct {
	size      int
	challenge []byte
}

func (m *fakeServer) Type() eap.Type { return typeFake }

func (m *fakeServer) Start(context.Context) ([]byte, error) {
	m.challenge = make([]byte, max(m.size, 8))
	if _, err := rand.Read(m.challenge); err != nil {
		return nil, err
	}
	return m.challenge, nil
}

func (m *fakeServer) Process(_ context.Context, data []byte) (eap.Step, error) {
	return eap.Step{Done: true, Success: bytes.Equal(data, reversed(m.challenge))}, nil
}

// fakePeer answers the fakeServer's challenge; wrong makes it answer badly.
type fakePeer struct {
	wrong    bool
	answered bool
}

func (m *fakePeer) Type() eap.Type { return typeFake }

func (m *fakePeer) Process(_ context.Context, data []byte) ([]byte, error) {
	m.answered = true
	out := reversed(data)
	if m.wrong {
		out[0] ^= 1
	}
	return out, nil
}

func (m *fakePeer) Succeeded() bool { return m.answered && !m.wrong }

func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[len(b)-1-i] = c
	}
	return out
}

func fakePeerFactory(wrong bool) eap.PeerFactory {
	return eap.PeerFactory{Type: typeFake, New: func() eap.PeerMethod { return &fakePeer{wrong: wrong} }}
}

// chain is an inner Selector: the listed methods in order, then finish.
func chain(methods ...func() eap.ServerMethod) eap.Selector {
	return eap.SelectorFunc(func(_ context.Context, _ string, done []eap.ServerMethod, nak []eap.Type) (eap.ServerMethod, bool, error) {
		n := 0
		for _, m := range done {
			if _, ok := m.(PAPDone); !ok {
				n++
			}
		}
		if nak != nil || n >= len(methods) {
			return nil, true, nil
		}
		return methods[n](), false, nil
	})
}

func papCheck(user, password string) func(context.Context, string, string) bool {
	return func(_ context.Context, u, p string) bool { return u == user && p == password }
}

// conversation is one outer EAP conversation with EAP-TTLS between the engines of package eap.
type conversation struct {
	srv    *eap.Server
	peer   *eap.Peer
	ts     *Server
	tp     *Peer
	rounds int
	trace  []string
}

// converse runs the outer conversation to its end (or to a stall: a packet the peer drops).
func converse(tb testing.TB, scfg *ServerConfig, pcfg *PeerConfig) *conversation {
	tb.Helper()
	ctx := context.Background()
	c := &conversation{ts: NewServer(scfg)}
	sent := false
	c.srv = eap.NewServer(eap.SelectorFunc(func(context.Context, string, []eap.ServerMethod, []eap.Type) (eap.ServerMethod, bool, error) {
		if sent {
			return nil, true, nil
		}
		sent = true
		return c.ts, false, nil
	}), 0)
	c.peer = eap.NewPeer("anonymous", eap.PeerFactory{Type: eap.TypeTTLS, New: func() eap.PeerMethod {
		c.tp = NewPeer(pcfg)
		return c.tp
	}})
	req := c.srv.Start(0)
	for c.rounds = 0; c.rounds < 5000; c.rounds++ {
		resp, err := c.peer.Handle(ctx, req)
		c.trace = append(c.trace, fmt.Sprintf("-> %v | <- %v %v", req, resp, err))
		if req.Code == eap.CodeSuccess || req.Code == eap.CodeFailure || resp == nil {
			return c
		}
		if req, err = c.srv.Handle(ctx, resp); err != nil {
			c.trace = append(c.trace, fmt.Sprintf("server dropped: %v", err))
			return c
		}
	}
	tb.Fatalf("conversation did not end in %d rounds", c.rounds)
	return c
}

func (c *conversation) dump(tb testing.TB) {
	tb.Helper()
	for _, l := range c.trace {
		tb.Log(l)
	}
}

// waitGoroutines waits for the goroutine count to drop to base.
func waitGoroutines(tb testing.TB, base int) {
	tb.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			tb.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
