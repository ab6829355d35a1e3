package nac

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/dtls/v2"

	smkeyimc "trustnac/imc/smkey"
	"trustnac/pdp"
	"trustnac/testbed"
	"trustnac/transport/smdtls"
)

// smPolicy is tpmPolicy with a group that requires the SM channel and a
// group of TPM-less kiosks that may enroll with SM2 keys.
const smPolicy = `version: 1
roles:
  admit: {vlan: 10}
  isolate: {vlan: 99, remediation: {text: "Reinstall the boot chain from the golden image"}}
groups:
  - name: sm-only
    identities: ["term-outdated"]
    require_channel: sm-dtls
  - name: terminals
    identities: ["term-*"]
    enrollment: credential
  - name: kiosks
    identities: ["kiosk-*"]
    allow_sm2_key: true
rules:
  - name: tpm-good
    groups: [terminals]
    when: 'has(tpm.quote_verified) && tpm.quote_verified && tpm.pcrs_match'
    role: admit
    reason: "TPM quote verified, PCRs match"
  - name: kiosk-over-sm
    groups: [kiosks]
    when: 'endpoint.channel == "sm-dtls"'
    role: admit
    reason: "kiosk with a registered SM2 key over the SM channel"
default: {role: isolate, reason: "no verified TPM evidence"}
reference_values:
  - name: swtpm-golden
    groups: [terminals]
    pcrs:
      sha256:
%s`

// smLab is tpmLab with smPolicy and extra users.
func smLab(t *testing.T, users map[string]string) (*lab, *testbed.SWTPM) {
	t.Helper()
	l, s := tpmLab(t)
	var refs strings.Builder
	pcrs := readPCRs(t, s)
	for _, idx := range quotedPCRs {
		fmt.Fprintf(&refs, "        %d: %q\n", idx, pcrs[idx])
	}
	writeFile(t, l.policy, fmt.Sprintf(smPolicy, refs.String()))
	for u, pw := range users {
		l.users[u] = pw
	}
	l.writeUsers()
	l.stop()
	l.start()
	return l, s
}

// writeUsers rewrites the lab's users file from l.users.
func (l *lab) writeUsers() {
	l.t.Helper()
	var users strings.Builder
	users.WriteString("users:\n")
	for u, pw := range l.users {
		h, err := pdp.HashPassword(pw, 1000)
		if err != nil {
			l.t.Fatal(err)
		}
		users.WriteString("  " + u + ": \"" + h + "\"\n")
	}
	writeFile(l.t, filepath.Join(l.dir, "users.yaml"), users.String())
}

// smAgent is a TPM agent of identity with the sm section pointing at the
// lab's SM listener and a PSK file in dir.
func (l *lab) smAgent(s *testbed.SWTPM, identity, akAlg, dir string) *AgentConfig {
	l.t.Helper()
	c := l.tpmAgent(s, akAlg, dir)
	c.Identity, c.Password = identity, l.users[identity]
	c.SM = &AgentSMConfig{Address: l.pdp.SMAddr().String()}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		l.t.Fatal(err)
	}
	return c
}

// ptAccepted is how many PT-TLS (TLS) connections the PDP accepted.
func (l *lab) ptAccepted() uint64 { return l.pdp.ptServer.Stats().Accepted }

// smAccepted is how many SM-DTLS associations the PDP accepted.
func (l *lab) smAccepted() uint64 { return l.pdp.smLn.Stats().Accepted }

// dialSM opens an SM-DTLS association to the lab with a PSK.
func (l *lab) dialSM(identity string, key []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := smdtls.Dial(ctx, "udp", l.pdp.SMAddr().(*net.UDPAddr), &smdtls.Config{Identity: []byte(identity), PSK: key})
	if err != nil {
		return err
	}
	return c.Close()
}

func TestSMEndToEnd(t *testing.T) {
	for _, alg := range []string{"sm2", "ecc-p256"} {
		t.Run(alg, func(t *testing.T) {
			l, s := smLab(t, nil)
			ctx := context.Background()
			agent := l.smAgent(s, "term-healthy", alg, t.TempDir())
			pskFile := agent.SM.PSKFile

			// First contact: no PSK, so PT-TLS, where the AK is enrolled
			// and the PSK issued; then at once over SM-DTLS.
			pt0, sm0 := l.ptAccepted(), l.smAccepted()
			o, err := RunAgent(ctx, agent, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if o.Role != "admit" {
				t.Fatalf("role %s, reasons %q; want admit", o.Role, o.Reasons)
			}
			if l.ptAccepted() != pt0+1 || l.smAccepted() != sm0+1 {
				t.Errorf("first run: %d PT-TLS and %d SM-DTLS connections, want 1 and 1", l.ptAccepted()-pt0, l.smAccepted()-sm0)
			}
			fi, err := os.Stat(pskFile)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("PSK file mode %v, want 0600", fi.Mode().Perm())
			}
			psk, err := loadPSK(pskFile)
			if err != nil {
				t.Fatal(err)
			}
			psks, err := l.pdp.PSKs().List()
			if err != nil || len(psks) != 1 {
				t.Fatalf("PSKs: %v, %v", psks, err)
			}
			aks, _ := l.pdp.store.ListAKs()
			if p := psks[0]; p.Identity != psk.Identity || p.Endpoint != "id:term-healthy" || p.Kind != pdp.PSKKindTPM || len(aks) != 1 || p.AKName != aks[0].Name {
				t.Errorf("PSK record %+v, agent's identity %s, AKs %v", p, psk.Identity, aks)
			}
			if !psk.Expires.Equal(psks[0].Expires) {
				t.Errorf("agent's expiry %v, PDP's %v", psk.Expires, psks[0].Expires)
			}
			rec, _ := l.pdp.Store().Get("id:term-healthy")
			if rec.Channel != "sm-dtls" || rec.Role != "admit" {
				t.Errorf("record: channel %s role %s", rec.Channel, rec.Role)
			}
			if rec.Facts["tpm"]["quote_verified"] != true {
				t.Errorf("the quote bound to the SM channel did not verify: %v", rec.Facts["tpm"])
			}

			// Enrolled: the next assessment goes straight to SM-DTLS.
			pt0, sm0 = l.ptAccepted(), l.smAccepted()
			if o, err := RunAgent(ctx, agent, testLogger(t)); err != nil || o.Role != "admit" {
				t.Fatalf("second run: %v, %v", o, err)
			}
			if l.ptAccepted() != pt0 || l.smAccepted() != sm0+1 {
				t.Errorf("second run: %d PT-TLS and %d SM-DTLS connections, want 0 and 1", l.ptAccepted()-pt0, l.smAccepted()-sm0)
			}

			// The admin lists the PSKs; the key is in no output.
			api := l.pdp.APIAddr().String()
			code, out, errs := runNac(t, nil, "endpoints", "psks", "--api", api, "--json")
			if code != 0 || !strings.Contains(out, psk.Identity) || !strings.Contains(out, `"endpoint": "id:term-healthy"`) {
				t.Errorf("nac endpoints psks: exit %d, %s %s", code, out, errs)
			}
			if strings.Contains(out, `"key"`) {
				t.Errorf("the PSK list carries keys:\n%s", out)
			}
			// The listener's counters are in the API's stats.
			var stats map[string]map[string]uint64
			if err := callAPI(ctx, api, http.MethodGet, "/v1/stats", &stats); err != nil || stats["sm-dtls"]["accepted"] != l.smAccepted() || stats["sm-dtls"]["handshakes"] == 0 {
				t.Errorf("stats %v, %v", stats["sm-dtls"], err)
			}
			// Changes need the unix socket.
			if code, _, errs := runNac(t, nil, "endpoints", "revoke-psks", "id:term-healthy", "--api", api); code == 0 || !strings.Contains(errs, "403") {
				t.Errorf("revoke over TCP: exit %d, %s", code, errs)
			}

			// Revoked: the handshake is refused.
			if n, err := l.pdp.PSKs().RevokeEndpoint("id:term-healthy"); err != nil || n != 1 {
				t.Fatalf("revoke: %d, %v", n, err)
			}
			if err := l.dialSM(psk.Identity, psk.Key); !errors.Is(err, smdtls.ErrUnknownIdentity) {
				t.Fatalf("revoked PSK: %v, want unknown_psk_identity", err)
			}
			// The agent deletes it, falls back to PT-TLS and is enrolled
			// again (its AK is still approved): a new PSK.
			if o, err := RunAgent(ctx, agent, testLogger(t)); err != nil || o.Role != "admit" {
				t.Fatalf("after revocation: %v, %v", o, err)
			}
			psk2, err := loadPSK(pskFile)
			if err != nil || psk2.Identity == psk.Identity {
				t.Fatalf("re-enrolled PSK %v, %v; old %s", psk2, err, psk.Identity)
			}
			if rec, _ := l.pdp.Store().Get("id:term-healthy"); rec.Channel != "sm-dtls" {
				t.Errorf("after re-enrollment: channel %s", rec.Channel)
			}

			// Revoking the AK revokes its PSKs; no new one is granted.
			if _, err := l.pdp.store.SetAKStatus(aks[0].Name, pdp.AKRevoked, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := l.dialSM(psk2.Identity, psk2.Key); !errors.Is(err, smdtls.ErrUnknownIdentity) {
				t.Fatalf("PSK of a revoked AK: %v, want unknown_psk_identity", err)
			}
			o, err = RunAgent(ctx, agent, testLogger(t))
			if err != nil || o.Role != "deny" {
				t.Fatalf("revoked AK: %v, %v; want deny", o, err)
			}
			if _, err := os.Stat(pskFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("PSK file after refusal and no grant: %v", err)
			}
		})
	}
}

func TestSMRequireChannel(t *testing.T) {
	l, s := smLab(t, nil)
	ctx := context.Background()
	dir := t.TempDir()

	// Over PT-TLS (no sm section): isolated with the reason.
	agent := l.tpmAgent(s, "sm2", dir)
	agent.Identity, agent.Password = "term-outdated", l.users["term-outdated"]
	o, err := RunAgent(ctx, agent, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	const reason = "group sm-only requires the SM channel (sm-dtls)"
	if o.Role != "isolate" || !slices.Contains(o.Reasons, reason) {
		t.Fatalf("over PT-TLS: role %s, reasons %q", o.Role, o.Reasons)
	}
	rec, _ := l.pdp.Store().Get("id:term-outdated")
	if rec.Channel != "pt-tls" || rec.Role != "isolate" || rec.Facts["tpm"]["quote_verified"] != true {
		t.Errorf("record: channel %s role %s tpm %v", rec.Channel, rec.Role, rec.Facts["tpm"])
	}

	// With the sm section: enrolled over PT-TLS, admitted over SM-DTLS.
	agent = l.smAgent(s, "term-outdated", "sm2", dir)
	if o, err := RunAgent(ctx, agent, testLogger(t)); err != nil || o.Role != "admit" {
		t.Fatalf("over SM-DTLS: %v, %v", o, err)
	}
	if rec, _ := l.pdp.Store().Get("id:term-outdated"); rec.Channel != "sm-dtls" {
		t.Errorf("channel %s", rec.Channel)
	}

	// With the PDP down, the admin lists and revokes PSKs in the store.
	l.stop()
	store := filepath.Join(l.cfg.StateDir, "pdp.db")
	if code, out, errs := runNac(t, nil, "endpoints", "psks", "--store", store); code != 0 || !strings.Contains(out, "id:term-outdated") || !strings.Contains(out, "valid") {
		t.Errorf("nac endpoints psks --store: exit %d, %s %s", code, out, errs)
	}
	if code, out, errs := runNac(t, nil, "endpoints", "revoke-psks", "id:term-outdated", "--store", store); code != 0 || !strings.Contains(out, "1 PSK(s) revoked") {
		t.Errorf("nac endpoints revoke-psks --store: exit %d, %s %s", code, out, errs)
	}
	if code, out, errs := runNac(t, nil, "endpoints", "psks", "--store", store); code != 0 || !strings.Contains(out, "revoked") || strings.Contains(out, "valid") {
		t.Errorf("after revoke-psks: exit %d, %s %s", code, out, errs)
	}
}

func TestSMRefusals(t *testing.T) {
	l, s := smLab(t, nil)
	agent := l.smAgent(s, "term-healthy", "ecc-p256", t.TempDir())
	if o, err := RunAgent(context.Background(), agent, testLogger(t)); err != nil || o.Role != "admit" {
		t.Fatalf("enrollment: %v, %v", o, err)
	}
	psk, err := loadPSK(agent.SM.PSKFile)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := append([]byte(nil), psk.Key...)
	wrongKey[0] ^= 1
	tests := []struct {
		name     string
		identity string
		key      []byte
		want     error
	}{
		{"unknown identity", "trustnac-psk-0123456789abcdef", psk.Key, smdtls.ErrUnknownIdentity},
		{"foreign identity", "client1", psk.Key, smdtls.ErrUnknownIdentity},
		{"right identity, wrong key", psk.Identity, wrongKey, smdtls.ErrAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm0 := l.smAccepted()
			if err := l.dialSM(tt.identity, tt.key); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if l.smAccepted() != sm0 {
				t.Errorf("a refused handshake reached Accept")
			}
		})
	}
	t.Run("non-SM suites only", func(t *testing.T) {
		sm0 := l.smAccepted()
		err := dialStockDTLS(t, l.pdp.SMAddr().(*net.UDPAddr), psk.Identity, psk.Key)
		if err == nil {
			t.Fatal("a client offering only AES suites completed a handshake")
		}
		if !strings.Contains(err.Error(), "insufficient_security") && !strings.Contains(err.Error(), "InsufficientSecurity") {
			t.Errorf("err %v, want an insufficient_security alert", err)
		}
		if l.smAccepted() != sm0 {
			t.Errorf("a refused handshake reached Accept")
		}
	})
	// A refused PSK is deleted by the agent, which falls back to PT-TLS.
	bad := &agentPSK{Identity: "trustnac-psk-0123456789abcdef", Key: psk.Key, Issued: time.Now(), Expires: time.Now().Add(time.Hour)}
	if err := storePSK(agent.SM.PSKFile, bad); err != nil {
		t.Fatal(err)
	}
	if o, err := RunAgent(context.Background(), agent, testLogger(t)); err != nil || o.Role != "admit" {
		t.Fatalf("with a refused PSK: %v, %v", o, err)
	}
	if got, err := loadPSK(agent.SM.PSKFile); err != nil || got.Identity == bad.Identity {
		t.Errorf("PSK file after refusal: %v, %v", got, err)
	}
}

// dialStockDTLS runs a stock pion/dtls PSK client that offers only
// TLS_PSK_WITH_AES_128_GCM_SHA256 against an smdtls listener, with the
// listener's cookie variant done by a small wire (the HelloVerifyRequest
// hidden from pion, the first ClientHello resent with the cookie).
func dialStockDTLS(t *testing.T, raddr *net.UDPAddr, identity string, key []byte) error {
	t.Helper()
	uc, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	w := &cookieWire{UDPConn: uc}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dtls.ClientWithContext(ctx, w, &dtls.Config{
		CipherSuites:         []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_GCM_SHA256},
		PSK:                  func([]byte) ([]byte, error) { return key, nil },
		PSKIdentityHint:      []byte(identity),
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
	})
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// cookieWire is the client side of smdtls's stateless cookie exchange for
// a stock pion client.
type cookieWire struct {
	*net.UDPConn
	first  []byte // the first ClientHello datagram
	cookie []byte
}

const (
	dtlsRecordHeader    = 13
	dtlsHandshakeHeader = 12
)

func (w *cookieWire) Write(p []byte) (int, error) {
	if isClientHello(p) {
		if w.first == nil {
			w.first = append([]byte(nil), p...)
		}
		if w.cookie != nil {
			if _, err := w.UDPConn.Write(withCookie(p, w.cookie)); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return w.UDPConn.Write(p)
}

func (w *cookieWire) Read(p []byte) (int, error) {
	for {
		n, err := w.UDPConn.Read(p)
		if err != nil {
			return n, err
		}
		d := p[:n]
		// A HelloVerifyRequest: type 22, handshake type 3.
		if n > dtlsRecordHeader+dtlsHandshakeHeader+3 && d[0] == 22 && d[dtlsRecordHeader] == 3 && w.first != nil {
			body := d[dtlsRecordHeader+dtlsHandshakeHeader:]
			cl := int(body[2])
			if len(body) < 3+cl {
				continue
			}
			w.cookie = append([]byte(nil), body[3:3+cl]...)
			if _, err := w.UDPConn.Write(withCookie(w.first, w.cookie)); err != nil {
				return 0, err
			}
			continue
		}
		return n, nil
	}
}

func isClientHello(d []byte) bool {
	return len(d) > dtlsRecordHeader+dtlsHandshakeHeader+35 && d[0] == 22 && d[3] == 0 && d[4] == 0 && d[dtlsRecordHeader] == 1
}

// withCookie returns a copy of a single-record, unfragmented ClientHello
// datagram with its cookie set.
func withCookie(d, cookie []byte) []byte {
	hs := dtlsRecordHeader
	body := hs + dtlsHandshakeHeader
	sid := body + 34
	ck := sid + 1 + int(d[sid])
	old := int(d[ck])
	out := append([]byte(nil), d[:ck]...)
	out = append(out, byte(len(cookie)))
	out = append(out, cookie...)
	out = append(out, d[ck+1+old:]...)
	delta := len(cookie) - old
	put16 := func(b []byte, v int) { b[0], b[1] = byte(v>>8), byte(v) }
	put24 := func(b []byte, v int) { b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v) }
	get24 := func(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }
	put16(out[11:13], int(d[11])<<8|int(d[12])+delta)
	put24(out[hs+1:hs+4], get24(d[hs+1:hs+4])+delta)
	put24(out[hs+9:hs+12], get24(d[hs+9:hs+12])+delta)
	return out
}

func TestSMTPMlessEndpoint(t *testing.T) {
	l, _ := smLab(t, map[string]string{"kiosk-1": "kiosk1-pw", "kiosk-2": "kiosk2-pw"})
	dir := t.TempDir()
	// The admin registers kiosk-1's key, and one of term-blocked, whose
	// groups do not allow SM2 keys; kiosk-2's key is not registered.
	keys := map[string]string{}
	var reg []byte
	for _, who := range []string{"kiosk-1", "kiosk-2", "term-blocked"} {
		keys[who] = filepath.Join(dir, who+".pem")
		if _, err := smkeyimc.GenerateKeyFile(keys[who]); err != nil {
			t.Fatal(err)
		}
		if who == "kiosk-2" {
			continue
		}
		c, err := smkeyimc.New(smkeyimc.Config{KeyFile: keys[who]}, nil)
		if err != nil {
			t.Fatal(err)
		}
		reg = append(reg, c.PublicKeyPEM("id:"+who)...)
	}
	writeFile(t, filepath.Join(dir, "sm2-keys.pem"), string(reg))
	l.stop()
	l.cfg.SM.SM2Keys = filepath.Join(dir, "sm2-keys.pem")
	l.start()

	agent := func(who string) *AgentConfig {
		c := l.agentConfig(who, "healthy")
		c.SM = &AgentSMConfig{Address: l.pdp.SMAddr().String(), SM2Key: keys[who], PSKFile: filepath.Join(dir, who+"-psk.json")}
		c.SetDefaults()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if !c.SM.enroll() {
			t.Fatal("sm.enroll does not default to true with an sm2_key")
		}
		return c
	}
	tests := []struct {
		who, role, reason  string
		enrolled           bool
		registered, issued bool // smkey facts of the refused enrollment
	}{
		{"kiosk-1", "admit", "kiosk with a registered SM2 key over the SM channel", true, true, true},
		{"kiosk-2", "isolate", "no verified TPM evidence", false, false, false},
		{"term-blocked", "isolate", "no verified TPM evidence", false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			c := agent(tt.who)
			o, err := RunAgent(context.Background(), c, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if o.Role != tt.role || !slices.Contains(o.Reasons, tt.reason) {
				t.Errorf("role %s, reasons %q; want %s with %q", o.Role, o.Reasons, tt.role, tt.reason)
			}
			_, err = os.Stat(c.SM.PSKFile)
			if got := err == nil; got != tt.enrolled {
				t.Fatalf("PSK file present %v, want %v", got, tt.enrolled)
			}
			rec, _ := l.pdp.Store().Get("id:" + tt.who)
			want := map[bool]string{true: "sm-dtls", false: "pt-tls"}[tt.enrolled]
			if rec == nil || rec.Channel != want {
				t.Fatalf("record %+v, want channel %s", rec, want)
			}
			if !tt.enrolled {
				f := rec.Facts["smkey"]
				if f["requested"] != true || f["registered"] != tt.registered || f["granted"] != false {
					t.Errorf("smkey facts %v", f)
				}
				return
			}
			psk, _ := loadPSK(c.SM.PSKFile)
			k, err := l.pdp.PSKs().Lookup(psk.Identity)
			if err != nil || k.Kind != pdp.PSKKindSM2 || k.Endpoint != "id:"+tt.who || !strings.HasPrefix(k.AKName, "sm3:") {
				t.Errorf("PSK record %+v, %v", k, err)
			}
		})
	}

	// The policy stops allowing SM2 key endpoints: kiosk-1's PSK still
	// completes a handshake, but the PDP ends the session before any
	// assessment, and the agent falls back to PT-TLS.
	pol, err := os.ReadFile(l.policy)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, l.policy, strings.Replace(string(pol), "allow_sm2_key: true", "allow_sm2_key: false", 1))
	l.stop()
	l.start()
	c := agent("kiosk-1")
	o, err := RunAgent(context.Background(), c, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ := l.pdp.Store().Get("id:kiosk-1"); o.Role != "isolate" || rec.Channel != "pt-tls" {
		t.Errorf("SM2 key endpoint no longer allowed: role %s over %s", o.Role, rec.Channel)
	}
}

func TestSMConfig(t *testing.T) {
	pdpTests := []struct {
		name, pttls, sm string
		listen, err     string
	}{
		{"default from pttls", "127.0.0.1:271", "", "127.0.0.1:271", ""},
		{"all interfaces", ":1271", "", ":271", ""},
		{"ephemeral stays ephemeral", "127.0.0.1:0", "", "127.0.0.1:0", ""},
		{"ipv6", "[::1]:271", "", "[::1]:271", ""},
		{"explicit", "127.0.0.1:271", "sm: {listen: '0.0.0.0:4271'}", "0.0.0.0:4271", ""},
		{"off", "127.0.0.1:271", "sm: {listen: 'off'}", "off", ""},
		{"full section", "127.0.0.1:271", "sm: {mtu: 1400, handshake_timeout: 5s, psk_lifetime: 24h, sm2_keys: keys.pem}", "127.0.0.1:271", ""},
		{"bad listen", "127.0.0.1:271", "sm: {listen: nowhere}", "", "sm.listen"},
		{"small mtu", "127.0.0.1:271", "sm: {mtu: 100}", "", "sm.mtu 100"},
		{"short lifetime", "127.0.0.1:271", "sm: {psk_lifetime: 30s}", "", "sm.psk_lifetime 30s"},
		{"unknown field", "127.0.0.1:271", "sm: {port: 271}", "", "field port not found"},
	}
	for _, tt := range pdpTests {
		t.Run("pdp/"+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "pdp.yaml"), "policy: p.yaml\npttls: {listen: '"+tt.pttls+"'}\n"+tt.sm+"\n")
			c, err := LoadPDPConfig(filepath.Join(dir, "pdp.yaml"))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SM.Listen != tt.listen || c.SM.Off() != (tt.listen == "off") {
				t.Errorf("listen %q, want %q", c.SM.Listen, tt.listen)
			}
			if c.SM.PSKLifetime == 0 || c.SM.MTU == 0 || c.SM.HandshakeTimeout == 0 {
				t.Errorf("defaults missing: %+v", c.SM)
			}
			if c.SM.SM2Keys != "" && c.SM.SM2Keys != filepath.Join(dir, "keys.pem") {
				t.Errorf("sm2_keys %q not resolved against the file's directory", c.SM.SM2Keys)
			}
		})
	}

	agentTests := []struct {
		name, body    string
		address, file string
		enroll        bool
		err           string
	}{
		{"tpm: enroll, psk in state_dir", "collectors: {tpm: {state_dir: st}}\nsm: {}", "10.0.0.1:271", "st/sm-psk.json", true, ""},
		{"no tpm: no enrollment", "sm: {}", "10.0.0.1:271", "/var/lib/trustnac/agent/sm-psk.json", false, ""},
		{"sm2 key: enroll", "sm: {sm2_key: k.pem, psk_file: p.json, address: '10.0.0.2:4271'}", "10.0.0.2:4271", "p.json", true, ""},
		{"tpm, enroll off", "collectors: {tpm: {state_dir: st}}\nsm: {enroll: false}", "10.0.0.1:271", "st/sm-psk.json", false, ""},
		{"enroll without a key", "sm: {enroll: true}", "", "", false, "sm.enroll needs a TPM collector or sm.sm2_key"},
		{"sm2 key beside a tpm", "collectors: {tpm: {}}\nsm: {sm2_key: k.pem}", "", "", false, "sm.sm2_key is for endpoints without a TPM"},
		{"bad address", "sm: {address: nowhere}", "", "", false, "sm.address"},
	}
	for _, tt := range agentTests {
		t.Run("agent/"+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "agent.yaml"), "pdp: {address: '10.0.0.1:1271', pin: 'sha256:"+strings.Repeat("ab", 32)+"'}\n"+tt.body+"\n")
			c, err := LoadAgentConfig(filepath.Join(dir, "agent.yaml"))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			file := tt.file
			if !filepath.IsAbs(file) {
				file = filepath.Join(dir, file)
			}
			if c.SM.Address != tt.address || c.SM.PSKFile != file || c.SM.enroll() != tt.enroll {
				t.Errorf("address %s, psk_file %s, enroll %v; want %s, %s, %v", c.SM.Address, c.SM.PSKFile, c.SM.enroll(), tt.address, file, tt.enroll)
			}
			// nac agent --pdp moves a derived SM address along.
			c.PDP.Address = "10.9.9.9:271"
			c.SetDefaults()
			if derived := tt.address == "10.0.0.1:271"; derived != (c.SM.Address == "10.9.9.9:271") {
				t.Errorf("after a new pdp.address: sm.address %s", c.SM.Address)
			}
		})
	}
}

func TestAgentPSKFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "psk.json")
	now := time.Now().UTC().Truncate(time.Second)
	k := &agentPSK{Identity: "trustnac-psk-0011223344556677", Key: make([]byte, 32), Issued: now.Add(-time.Hour), Expires: now.Add(3 * time.Hour)}
	if err := storePSK(path, k); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat %v, %v", fi, err)
	}
	got, err := loadPSK(path)
	if err != nil || got.Identity != k.Identity || !got.Expires.Equal(k.Expires) || len(got.Key) != 32 {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	tests := []struct {
		name          string
		at            time.Time
		usable, renew bool
	}{
		{"fresh", now, true, false},
		{"past half", now.Add(90 * time.Minute), true, true},
		{"expired", now.Add(3 * time.Hour), false, true},
	}
	for _, tt := range tests {
		if got.usable(tt.at) != tt.usable || got.renewDue(tt.at) != tt.renew {
			t.Errorf("%s: usable %v renew %v", tt.name, got.usable(tt.at), got.renewDue(tt.at))
		}
	}
	for _, bad := range []*agentPSK{
		{Identity: "", Key: make([]byte, 32), Expires: now.Add(time.Hour)},
		{Identity: "x", Key: make([]byte, 8), Expires: now.Add(time.Hour)},
		{Identity: strings.Repeat("x", 200), Key: make([]byte, 32), Expires: now.Add(time.Hour)},
	} {
		if bad.usable(now) {
			t.Errorf("%+v usable", bad)
		}
	}
	for name, data := range map[string]string{"garbage": "{", "huge": strings.Repeat(" ", maxPSKFile+1)} {
		writeFile(t, path, data)
		if _, err := loadPSK(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// startWithClock restarts the lab's PDP with its PSK clock at now+skew.
func (l *lab) startWithClock(skew time.Duration) {
	l.t.Helper()
	l.stop()
	l.pdp = NewPDP(l.cfg, testLogger(l.t))
	l.pdp.clock = func() time.Time { return time.Now().Add(skew) }
	if err := l.pdp.Start(context.Background()); err != nil {
		l.t.Fatal(err)
	}
}

// TestSMRotation: past half its lifetime the agent asks for a new PSK over
// SM-DTLS itself and gets one; the old PSK stays valid until it expires,
// and an expired PSK is refused, so the agent enrolls again over PT-TLS.
func TestSMRotation(t *testing.T) {
	l, s := smLab(t, nil)
	ctx := context.Background()
	agent := l.smAgent(s, "term-healthy", "ecc-p256", t.TempDir())
	if o, err := RunAgent(ctx, agent, testLogger(t)); err != nil || o.Role != "admit" {
		t.Fatalf("enrollment: %v, %v", o, err)
	}
	psk1, err := loadPSK(agent.SM.PSKFile)
	if err != nil {
		t.Fatal(err)
	}
	lifetime := psk1.Expires.Sub(psk1.Issued)

	// 400h of 720h later, on both sides.
	l.startWithClock(400 * time.Hour)
	agent.SM.Address = l.pdp.SMAddr().String()
	agent.PDP.Address, agent.PDP.Pin = l.pdp.PTTLSAddr().String(), l.pdp.Fingerprint
	// The agent judges by its own clock: make its PSK look past half
	// its life.
	psk1.Issued = psk1.Issued.Add(-lifetime - time.Hour)
	if err := storePSK(agent.SM.PSKFile, psk1); err != nil {
		t.Fatal(err)
	}
	pt0 := l.ptAccepted()
	if o, err := RunAgent(ctx, agent, testLogger(t)); err != nil || o.Role != "admit" {
		t.Fatalf("rotation: %v, %v", o, err)
	}
	if l.ptAccepted() != pt0 {
		t.Errorf("the rotation went over PT-TLS")
	}
	psk2, err := loadPSK(agent.SM.PSKFile)
	if err != nil || psk2.Identity == psk1.Identity {
		t.Fatalf("after rotation: %v, %v (old %s)", psk2, err, psk1.Identity)
	}
	if got := psk2.Expires.Sub(time.Now().Add(400 * time.Hour)); got < lifetime-time.Minute || got > lifetime+time.Minute {
		t.Errorf("new PSK lives %v, want %v", got, lifetime)
	}
	if err := l.dialSM(psk1.Identity, psk1.Key); err != nil {
		t.Errorf("the old PSK no longer works before it expires: %v", err)
	}

	// 800h later the first PSK has expired: refused at the handshake.
	l.startWithClock(800 * time.Hour)
	if err := l.dialSM(psk1.Identity, psk1.Key); !errors.Is(err, smdtls.ErrUnknownIdentity) {
		t.Errorf("expired PSK: %v", err)
	}
}

// TestSMExampleConfigs loads the example PDP configuration's sm section and
// the example agent's commented one with its comment marks taken off.
func TestSMExampleConfigs(t *testing.T) {
	pc, err := LoadPDPConfig("../policies/examples/pdp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if pc.SM.Listen != "127.0.0.1:271" || pc.SM.PSKLifetime.D() != DefaultPSKLifetime {
		t.Errorf("pdp.yaml sm: %+v", pc.SM)
	}
	b, err := os.ReadFile("../policies/examples/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case line == "# sm:":
			in, line = true, "sm:"
		case in && strings.HasPrefix(line, "#   "):
			line = strings.TrimPrefix(line, "#")
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				line = ""
			}
		default:
			in = false
		}
		out = append(out, line)
	}
	path := filepath.Join(t.TempDir(), "agent.yaml")
	writeFile(t, path, strings.Join(out, "\n"))
	ac, err := LoadAgentConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if ac.SM == nil || ac.SM.Address != "127.0.0.1:271" || !ac.SM.enroll() || ac.SM.SM2Key == "" {
		t.Errorf("agent.yaml sm: %+v", ac.SM)
	}
}
