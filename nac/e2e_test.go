package nac

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"trustnac/pdp"
	"trustnac/transport/pbtnc"
	"trustnac/transport/pttls"
)

// fixture is a prepared endpoint tree under testbed/fixtures.
func fixture(name string) string {
	return filepath.Join("..", "testbed", "fixtures", name)
}

type lab struct {
	t      *testing.T
	dir    string
	cfg    *PDPConfig
	pdp    *PDP
	users  map[string]string // identity → password
	policy string
}

// newLab starts a PDP in-process on loopback with the test policy and a
// users file, on ephemeral ports.
func newLab(t *testing.T) *lab {
	t.Helper()
	dir := t.TempDir()
	l := &lab{t: t, dir: dir, users: map[string]string{
		"term-healthy": "healthy-pw", "term-telnet": "telnet-pw",
		"term-outdated": "outdated-pw", "term-blocked": "blocked-pw",
	}}
	var users strings.Builder
	users.WriteString("users:\n")
	for u, pw := range l.users {
		h, err := pdp.HashPassword(pw, 1000)
		if err != nil {
			t.Fatal(err)
		}
		users.WriteString("  " + u + ": \"" + h + "\"\n")
	}
	writeFile(t, filepath.Join(dir, "users.yaml"), users.String())
	l.policy = filepath.Join(dir, "policy.yaml")
	copyFile(t, "testdata/policy.yaml", l.policy)
	writeFile(t, filepath.Join(dir, "pdp.yaml"), `
state_dir: state
policy: policy.yaml
pttls:
  listen: 127.0.0.1:0
  users_file: users.yaml
  require_sasl: true
  handshake_timeout: 2s
  idle_timeout: 2s
api:
  listen: 127.0.0.1:0
`)
	cfg, err := LoadPDPConfig(filepath.Join(dir, "pdp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	l.cfg = cfg
	l.start()
	return l
}

func (l *lab) start() {
	l.t.Helper()
	l.pdp = NewPDP(l.cfg, testLogger(l.t))
	if err := l.pdp.Start(context.Background()); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { l.stop() })
}

func (l *lab) stop() {
	if l.pdp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.pdp.Stop(ctx); err != nil {
		l.t.Errorf("stop: %v", err)
	}
	l.pdp = nil
}

func (l *lab) agentConfig(identity, fixtureName string) *AgentConfig {
	c := &AgentConfig{
		PDP:        AgentPDPConfig{Address: l.pdp.PTTLSAddr().String(), Pin: l.pdp.Fingerprint},
		Identity:   identity,
		Password:   l.users[identity],
		Timeout:    Duration(10 * time.Second),
		Collectors: CollectorsConfig{OS: &OSCollectorConfig{Root: fixture(fixtureName)}},
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		l.t.Fatal(err)
	}
	return c
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

func TestEndToEndDecisions(t *testing.T) {
	l := newLab(t)
	tests := []struct {
		identity, fixture string
		role              string
		reason            string
		remediation       []string
	}{
		{"term-healthy", "healthy", "admit", "Debian 12 or later with forwarding off", nil},
		{"term-telnet", "telnet", "remediate", "telnet is listening on port 23",
			[]string{"Remove telnetd", "https://remediation.test/telnet"}},
		{"term-outdated", "outdated", "isolate", "no rule matched",
			[]string{"Call the helpdesk", "https://helpdesk.test/"}},
		{"term-blocked", "healthy", "deny", "this endpoint is blocked", nil},
	}
	for _, tt := range tests {
		t.Run(tt.identity, func(t *testing.T) {
			o, err := RunAgent(context.Background(), l.agentConfig(tt.identity, tt.fixture), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if o.Role != tt.role {
				t.Errorf("role = %q, want %q (reasons %q)", o.Role, tt.role, o.Reasons)
			}
			if !slices.Contains(o.Reasons, tt.reason) {
				t.Errorf("reasons = %q, want %q among them", o.Reasons, tt.reason)
			}
			var rem []string
			for _, r := range o.Remediation {
				for _, s := range []string{r.Text, r.URI} {
					if s != "" && !slices.Contains(rem, s) {
						rem = append(rem, s)
					}
				}
			}
			slices.Sort(rem)
			want := slices.Clone(tt.remediation)
			slices.Sort(want)
			if !slices.Equal(rem, want) {
				t.Errorf("remediation = %q, want %q", rem, want)
			}
			rec, err := l.pdp.Store().Get("id:" + tt.identity)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Role != tt.role || rec.Channel != "pt-tls" {
				t.Errorf("stored record = %+v", rec)
			}
			if tt.role != "deny" && rec.Facts["os"]["name"] != "debian" {
				t.Errorf("stored facts: os.name = %v", rec.Facts["os"]["name"])
			}
		})
	}
}

func TestEndToEndAuthAndPinning(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()

	c := l.agentConfig("term-healthy", "healthy")
	c.Password = "wrong"
	if _, err := RunAgent(ctx, c, testLogger(t)); err == nil {
		t.Error("a wrong password got a decision")
	}

	c = l.agentConfig("term-healthy", "healthy")
	c.Identity, c.Password = "", ""
	if _, err := RunAgent(ctx, c, testLogger(t)); err == nil {
		t.Error("an agent without credentials got a decision though SASL is required")
	}

	c = l.agentConfig("term-healthy", "healthy")
	c.PDP.Pin = "sha256:" + strings.Repeat("ab", 32)
	if _, err := RunAgent(ctx, c, testLogger(t)); err == nil || !strings.Contains(err.Error(), "pin") {
		t.Errorf("a wrong pin: err = %v, want a pin mismatch", err)
	}

	// The PDP's own certificate file as CA works as well as the pin.
	c = l.agentConfig("term-healthy", "healthy")
	c.PDP.Pin, c.PDP.CA, c.PDP.ServerName = "", l.cfg.PTTLS.Cert, "127.0.0.1"
	if o, err := RunAgent(ctx, c, testLogger(t)); err != nil || o.Role != "admit" {
		t.Errorf("with the CA file: %v, %v", o, err)
	}
}

func TestEndToEndPolicyReload(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	run := func() string {
		t.Helper()
		o, err := RunAgent(ctx, l.agentConfig("term-healthy", "healthy"), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return o.Role
	}
	if got := run(); got != "admit" {
		t.Fatalf("before reload: %s", got)
	}

	// A valid change: Debian 12 now needs Debian 13.
	b, _ := os.ReadFile(l.policy)
	changed := strings.Replace(string(b), `version_at_least("12")`, `version_at_least("13")`, 1)
	writeFile(t, l.policy, changed)
	if err := l.pdp.Policy().Reload(); err != nil {
		t.Fatal(err)
	}
	if got := run(); got != "isolate" {
		t.Errorf("after a valid reload: %s, want isolate", got)
	}

	// An invalid file is refused and the last good policy stays in force.
	writeFile(t, l.policy, changed+"\nrules_typo: []\n")
	if err := l.pdp.Policy().Reload(); err == nil {
		t.Error("an invalid policy was accepted")
	}
	if got := run(); got != "isolate" {
		t.Errorf("after a refused reload: %s, want isolate from the last good policy", got)
	}

	// The watcher picks up a change of the file by itself.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go l.pdp.Policy().Watch(wctx, 20*time.Millisecond, nil)
	writeFile(t, l.policy, string(b))
	deadline := time.Now().Add(5 * time.Second)
	for run() != "admit" {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not reload the restored policy")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEndToEndRestartKeepsStore(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := RunAgent(ctx, l.agentConfig("term-telnet", "telnet"), testLogger(t)); err != nil {
			t.Fatal(err)
		}
	}
	pin := l.pdp.Fingerprint
	l.stop()
	l.start()
	if l.pdp.Fingerprint != pin {
		t.Error("the certificate changed across a restart")
	}
	rec, err := l.pdp.Store().Get("id:term-telnet")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Role != "remediate" || rec.Assessments != 2 {
		t.Errorf("after restart: role %s, %d assessments; want remediate, 2", rec.Role, rec.Assessments)
	}
	recs, err := listEndpoints(ctx, l.pdp.APIAddr().String(), "")
	if err != nil || len(recs) != 1 || recs[0].ID != "id:term-telnet" {
		t.Errorf("API after restart: %v, %v", recs, err)
	}
}

// dialPTTLS opens a PT-TLS session to the lab's PDP as term-healthy.
func (l *lab) dialPTTLS(t *testing.T) *pttls.Conn {
	t.Helper()
	tc, err := agentTLSConfig(AgentPDPConfig{Pin: l.pdp.Fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", l.pdp.PTTLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pttls.Client(ctx, tls.Client(raw, tc), &pttls.ClientConfig{
		SASL: []pttls.ClientMechanism{&pttls.PlainClient{Username: "term-healthy", Password: l.users["term-healthy"]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEndToEndMalformedPeers(t *testing.T) {
	l := newLab(t)

	t.Run("garbage instead of PT-TLS", func(t *testing.T) {
		tc, _ := agentTLSConfig(AgentPDPConfig{Pin: l.pdp.Fingerprint})
		c, err := tls.Dial("tcp", l.pdp.PTTLSAddr().String(), tc)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(bytes.Repeat([]byte{0xff}, 64))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		hdr := make([]byte, pttls.HeaderLen)
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatalf("no PT-TLS Error came back: %v", err)
		}
		if typ := binary.BigEndian.Uint32(hdr[4:8]); typ != uint32(pttls.TypeError) {
			t.Errorf("answer type %d, want PT-TLS Error", typ)
		}
	})

	t.Run("malformed PB-TNC batch", func(t *testing.T) {
		c := l.dialPTTLS(t)
		// A batch header claiming version 1 and a length that lies.
		if err := c.WriteBatch([]byte{1, 0, 0, 1, 0, 0, 0, 99}); err != nil {
			t.Fatal(err)
		}
		in, err := c.ReadBatch()
		if err != nil {
			t.Fatalf("no PB-TNC answer: %v", err)
		}
		b, err := pbtnc.ParseBatch(in, pbtnc.DefaultMaxBatchSize)
		if err != nil {
			t.Fatal(err)
		}
		if b.Type != pbtnc.BatchClose || len(b.Messages) == 0 || b.Messages[0].Type != pbtnc.MsgError {
			t.Errorf("answer = %v batch with %d messages, want CLOSE with PB-Error", b.Type, len(b.Messages))
		}
	})

	t.Run("server batch from the client", func(t *testing.T) {
		c := l.dialPTTLS(t)
		b := pbtnc.Batch{FromServer: true, Type: pbtnc.BatchSDATA}
		raw, _ := b.MarshalBinary()
		c.WriteBatch(raw)
		in, err := c.ReadBatch()
		if err != nil {
			t.Fatalf("no PB-TNC answer: %v", err)
		}
		ans, err := pbtnc.ParseBatch(in, pbtnc.DefaultMaxBatchSize)
		if err != nil || ans.Type != pbtnc.BatchClose {
			t.Errorf("answer = %+v, %v; want CLOSE with PB-Error", ans, err)
		}
	})

	t.Run("silent peer times out", func(t *testing.T) {
		raw, err := net.Dial("tcp", l.pdp.PTTLSAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(raw)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Error("the PDP kept a silent peer for 10s; handshake_timeout is 2s")
		}
	})

	// Everyone else is still served.
	o, err := RunAgent(context.Background(), l.agentConfig("term-healthy", "healthy"), testLogger(t))
	if err != nil || o.Role != "admit" {
		t.Errorf("after the malformed peers: %v, %v", o, err)
	}
}

func TestExampleConfigsLoad(t *testing.T) {
	pc, err := LoadPDPConfig("../policies/examples/pdp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if pc.PTTLS.Listen != "127.0.0.1:271" || !strings.HasSuffix(pc.Policy, "policies/examples/lab.yaml") {
		t.Errorf("pdp.yaml: %+v", pc)
	}
	if _, err := os.Stat(pc.Policy); err != nil {
		t.Errorf("pdp.yaml names a policy that is not there: %v", err)
	}
	ac, err := LoadAgentConfig("../policies/examples/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if ac.PDP.Address != "127.0.0.1:271" || ac.PDP.CA != pc.PTTLS.Cert {
		t.Errorf("agent.yaml does not point at the example PDP's certificate: %+v", ac.PDP)
	}
}

func TestConfigStrict(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, yaml, want string }{
		{"unknown field", "policy: p.yaml\npttls: {listn: ':271'}\n", "listn"},
		{"no policy", "state_dir: /tmp/x\n", "policy"},
		{"bad listen", "policy: p.yaml\npttls: {listen: 'nope'}\n", "pttls.listen"},
		{"bad duration", "policy: p.yaml\npolicy_check_interval: soon\n", "soon"},
		{"sasl without users", "policy: p.yaml\npttls: {require_sasl: true}\n", "users_file"},
		{"two documents", "policy: p.yaml\n---\npolicy: q.yaml\n", "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "c.yaml")
			writeFile(t, p, tt.yaml)
			_, err := LoadPDPConfig(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	p := filepath.Join(dir, "a.yaml")
	writeFile(t, p, "pdp: {address: '127.0.0.1:271'}\n")
	if _, err := LoadAgentConfig(p); err == nil || !strings.Contains(err.Error(), "ca or pin") {
		t.Errorf("agent without ca or pin: %v", err)
	}
}
