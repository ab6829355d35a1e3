package pttls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

const testServerName = "pttls.test"

var testPKI struct {
	once sync.Once
	cert tls.Certificate
	pool *x509.CertPool
	err  error
}

// testCert returns a self-signed ECDSA P-256 certificate (good for server
// and client authentication) and a pool that trusts it.
func testCert(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	cert, pool, err := loadTestPKI()
	if err != nil {
		tb.Fatalf("test certificate: %v", err)
	}
	return cert, pool
}

func loadTestPKI() (tls.Certificate, *x509.CertPool, error) {
	testPKI.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			testPKI.err = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: testServerName},
			DNSNames:              []string{testServerName},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			testPKI.err = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			testPKI.err = err
			return
		}
		testPKI.cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		testPKI.pool = x509.NewCertPool()
		testPKI.pool.AddCert(leaf)
	})
	return testPKI.cert, testPKI.pool, testPKI.err
}

func serverTLS(tb testing.TB) *tls.Config {
	cert, pool := testCert(tb)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	}
}

func clientTLS(tb testing.TB) *tls.Config {
	_, pool := testCert(tb)
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: testServerName}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	type acc struct {
		c   net.Conn
		err error
	}
	ch := make(chan acc, 1)
	go func() {
		c, err := l.Accept()
		ch <- acc{c, err}
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		tb.Fatal(a.err)
	}
	tb.Cleanup(func() { client.Close(); a.c.Close() })
	return client, a.c
}

// tlsPair returns a TLS 1.3 client and server over loopback TCP. The
// handshake has not run yet.
func tlsPair(tb testing.TB, ccfg *tls.Config) (client, server *tls.Conn) {
	tb.Helper()
	if ccfg == nil {
		ccfg = clientTLS(tb)
	}
	c, s := tcpPair(tb)
	return tls.Client(c, ccfg), tls.Server(s, serverTLS(tb))
}

type result struct {
	c   *Conn
	err error
}

// runPair negotiates Client against ServerHandshake over TLS 1.3.
func runPair(tb testing.TB, ccfg *ClientConfig, scfg *ServerConfig) (cli, srv result) {
	tb.Helper()
	cc, sc := tlsPair(tb, nil)
	return runPairOn(tb, cc, sc, ccfg, scfg)
}

func runPairOn(tb testing.TB, cc, sc net.Conn, ccfg *ClientConfig, scfg *ServerConfig) (cli, srv result) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch := make(chan result, 1)
	go func() {
		c, err := ServerHandshake(ctx, sc, scfg)
		ch <- result{c, err}
	}()
	c, err := Client(ctx, cc, ccfg)
	cli = result{c, err}
	srv = <-ch
	tb.Cleanup(func() {
		if cli.c != nil {
			cli.c.Close()
		}
		if srv.c != nil {
			srv.c.Close()
		}
	})
	return cli, srv
}

// peer is a hand-driven PT-TLS endpoint for protocol tests.
type peer struct {
	tb testing.TB
	nc net.Conn
	id uint32
}

func newPeer(tb testing.TB, nc net.Conn) *peer {
	if err := nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	return &peer{tb: tb, nc: nc}
}

// send writes one message with the peer's next message ID and returns its
// wire bytes.
func (p *peer) send(vendor uint32, typ MessageType, value []byte) []byte {
	p.tb.Helper()
	m := &Message{Vendor: vendor, Type: typ, ID: p.id, Value: value}
	b, err := m.AppendBinary(nil)
	if err != nil {
		p.tb.Fatal(err)
	}
	p.sendRaw(b)
	p.id++
	return b
}

func (p *peer) sendRaw(b []byte) {
	p.tb.Helper()
	if _, err := p.nc.Write(b); err != nil {
		p.tb.Fatalf("peer write: %v", err)
	}
}

func (p *peer) recv() *Message {
	p.tb.Helper()
	m, err := ReadMessage(p.nc, 0)
	if err != nil {
		p.tb.Fatalf("peer read: %v", err)
	}
	return m
}

func (p *peer) expect(typ MessageType) *Message {
	p.tb.Helper()
	m := p.recv()
	if m.Vendor != VendorIETF || m.Type != typ {
		p.tb.Fatalf("peer got vendor %d %v, want %v", m.Vendor, m.Type, typ)
	}
	return m
}

// expectError reads a PT-TLS Error and checks its code.
func (p *peer) expectError(code ErrorCode) *Error {
	p.tb.Helper()
	m := p.expect(TypeError)
	var e Error
	if err := e.UnmarshalBinary(m.Value); err != nil {
		p.tb.Fatalf("peer: bad Error value: %v", err)
	}
	if e.Vendor != VendorIETF || e.Code != code {
		p.tb.Fatalf("peer got error %v (vendor %d), want %v", e.Code, e.Vendor, code)
	}
	return &e
}

// expectClosed checks that the other side closes the connection.
func (p *peer) expectClosed() {
	p.tb.Helper()
	m, err := ReadMessage(p.nc, 0)
	if err == nil {
		p.tb.Fatalf("peer: got %v, want the connection closed", m.Type)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		p.tb.Fatalf("peer: connection still open: %v", err)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		p.tb.Logf("peer: connection ended with %v", err)
	}
	p.nc.Close() // as a real peer would: this ends the other side's linger
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// negotiateRaw plays the client up to the data phase against a server with
// no SASL.
func (p *peer) negotiateAsClient() {
	p.tb.Helper()
	req, _ := VersionRequest{Min: 1, Max: 1, Preferred: 1}.AppendBinary(nil)
	p.send(VendorIETF, TypeVersionRequest, req)
	p.expect(TypeVersionResponse)
	if m := p.expect(TypeSASLMechanisms); len(m.Value) != 0 {
		p.tb.Fatalf("peer: server asks for SASL %x", m.Value)
	}
}

// negotiateAsServer plays the server up to the data phase, offering no SASL.
func (p *peer) negotiateAsServer() {
	p.tb.Helper()
	p.expect(TypeVersionRequest)
	resp, _ := VersionResponse{Version: 1}.AppendBinary(nil)
	p.send(VendorIETF, TypeVersionResponse, resp)
	p.send(VendorIETF, TypeSASLMechanisms, nil)
}

// goServer runs ServerHandshake in the background.
func goServer(nc net.Conn, cfg *ServerConfig) <-chan result {
	ch := make(chan result, 1)
	go func() {
		c, err := ServerHandshake(context.Background(), nc, cfg)
		ch <- result{c, err}
	}()
	return ch
}

// goClient runs Client in the background.
func goClient(nc net.Conn, cfg *ClientConfig) <-chan result {
	ch := make(chan result, 1)
	go func() {
		c, err := Client(context.Background(), nc, cfg)
		ch <- result{c, err}
	}()
	return ch
}

func waitResult(tb testing.TB, ch <-chan result) result {
	tb.Helper()
	select {
	case r := <-ch:
		if r.c != nil {
			tb.Cleanup(func() { r.c.Close() })
		}
		return r
	case <-time.After(10 * time.Second):
		tb.Fatal("negotiation did not finish")
	}
	return result{}
}

// plainVerifier accepts alice/secret and records what it saw.
func plainVerifier() *PlainServer {
	return &PlainServer{Verify: func(_ context.Context, authzid, user, pass string) (string, error) {
		if user == "alice" && pass == "secret" {
			if authzid != "" {
				return authzid, nil
			}
			return "", nil
		}
		return "", errors.New("bad credentials")
	}}
}
