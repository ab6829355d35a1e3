package radius

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	radius "layeh.com/radius"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 2865 §7.1: the Access-Request of "User Telnet to Specified Host" and
// its Access-Accept, shared secret "xyzzy5461".
const (
	rfc2865Request = `01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
		98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
		93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
		01 10 05 06 00 00 00 03`
	rfc2865Accept = `02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
		9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
		0e 06 c0 a8 01 03`
)

func TestRFC2865ResponseAuthenticator(t *testing.T) {
	req := unhex(t, rfc2865Request)
	acc := unhex(t, rfc2865Accept)
	var reqAuth [16]byte
	copy(reqAuth[:], req[4:20])
	got := sumAuth(acc, &reqAuth, []byte("xyzzy5461"))
	if !bytes.Equal(got[:], acc[4:20]) {
		t.Fatalf("Response Authenticator %x, want %x", got, acc[4:20])
	}
	// The RFC's request predates the Message-Authenticator requirement.
	if err := VerifyRequest(req, []byte("xyzzy5461")); !errors.Is(err, ErrMissingMessageAuthenticator) {
		t.Errorf("VerifyRequest(RFC 2865 §7.1 request) = %v, want ErrMissingMessageAuthenticator", err)
	}
	// And its Access-Accept has none either: not acceptable for an
	// Access-Request any more, though its Response Authenticator is right.
	if err := VerifyReply(acc, req, []byte("xyzzy5461")); !errors.Is(err, ErrMissingMessageAuthenticator) {
		t.Errorf("VerifyReply(RFC 2865 §7.1 accept) = %v, want ErrMissingMessageAuthenticator", err)
	}
	bad := bytes.Clone(acc)
	bad[30] ^= 1
	if err := VerifyReply(bad, req, []byte("xyzzy5461")); !errors.Is(err, ErrBadAuthenticator) {
		t.Errorf("VerifyReply(altered accept) = %v, want ErrBadAuthenticator", err)
	}
}

func TestEncodeRequestMatchesReference(t *testing.T) {
	for _, code := range []radius.Code{radius.CodeAccessRequest, radius.CodeStatusServer,
		radius.CodeAccountingRequest, radius.CodeCoARequest, radius.CodeDisconnectRequest} {
		t.Run(code.String(), func(t *testing.T) {
			p := &radius.Packet{Code: code, Identifier: 42, Authenticator: authOf("0123456789abcdef"), Secret: testSecret}
			p.Add(1, radius.Attribute("alice"))
			p.Add(80, radius.Attribute("stale-value-0123")) // replaced
			p.Add(33, radius.Attribute("state"))
			b, err := EncodeRequest(p)
			if err != nil {
				t.Fatal(err)
			}
			hashed := hashedAuthenticator(code)
			want := buildRequest(code, 42, p.Authenticator, []attr{{1, []byte("alice")}, {33, []byte("state")}}, buildOpts{})
			if !bytes.Equal(b, want) {
				t.Fatalf("EncodeRequest\n got % x\nwant % x", b, want)
			}
			if !hashed && !bytes.Equal(b[4:20], p.Authenticator[:]) {
				t.Errorf("authenticator changed for %v", code)
			}
			if err := VerifyRequest(b, testSecret); err != nil {
				t.Errorf("VerifyRequest: %v", err)
			}
			if err := VerifyRequest(b, []byte("other")); err == nil {
				t.Error("VerifyRequest with the wrong secret succeeded")
			}
			var auth *[16]byte
			if hashed {
				auth = &zeroAuth
			}
			if err := VerifyMessageAuthenticator(b, testSecret, auth); err != nil {
				t.Errorf("VerifyMessageAuthenticator: %v", err)
			}
		})
	}
}

func TestEncodeReplyMatchesReference(t *testing.T) {
	req := buildRequest(radius.CodeAccessRequest, 7, authOf("request-auth-123"), []attr{{1, []byte("bob")}}, buildOpts{})
	p, err := radius.Parse(req, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []radius.Code{radius.CodeAccessAccept, radius.CodeAccessReject, radius.CodeAccessChallenge} {
		r := p.Response(code)
		r.Add(18, radius.Attribute("hello"))
		b, err := EncodeReply(r)
		if err != nil {
			t.Fatal(err)
		}
		checkReply(t, b, req, testSecret)
		if err := VerifyReply(b, req, testSecret); err != nil {
			t.Errorf("%v: VerifyReply: %v", code, err)
		}
		if err := VerifyMessageAuthenticator(b, testSecret, &p.Authenticator); err != nil {
			t.Errorf("%v: VerifyMessageAuthenticator: %v", code, err)
		}
	}
	if _, err := EncodeReply(p); !errors.Is(err, ErrUnsupportedCode) {
		t.Errorf("EncodeReply(Access-Request) = %v, want ErrUnsupportedCode", err)
	}
	if _, err := EncodeRequest(p.Response(radius.CodeAccessAccept)); !errors.Is(err, ErrUnsupportedCode) {
		t.Errorf("EncodeRequest(Access-Accept) = %v, want ErrUnsupportedCode", err)
	}
	noSecret := p.Response(radius.CodeAccessAccept)
	noSecret.Secret = nil
	if _, err := EncodeReply(noSecret); !errors.Is(err, ErrNoSecret) {
		t.Errorf("EncodeReply without secret = %v, want ErrNoSecret", err)
	}
}

func TestEncodeLimits(t *testing.T) {
	tests := []struct {
		name  string
		attrs radius.Attributes
		ok    bool
	}{
		{"253 octets", radius.Attributes{{Type: 18, Attribute: make([]byte, 253)}}, true},
		{"254 octets", radius.Attributes{{Type: 18, Attribute: make([]byte, 254)}}, false},
		{"type 256", radius.Attributes{{Type: 256, Attribute: []byte("x")}}, false},
		{"type -1", radius.Attributes{{Type: -1, Attribute: []byte("x")}}, false},
		{"nil AVP skipped", radius.Attributes{nil, {Type: 1, Attribute: []byte("x")}}, true},
		{"exactly 4096", fill(4096 - 20 - 18), true},
		{"4097", fill(4097 - 20 - 18), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &radius.Packet{Code: radius.CodeAccessRequest, Secret: testSecret, Attributes: tt.attrs}
			b, err := EncodeRequest(p)
			if (err == nil) != tt.ok {
				t.Fatalf("EncodeRequest error = %v, want ok=%v", err, tt.ok)
			}
			if err == nil {
				if err := VerifyRequest(b, testSecret); err != nil {
					t.Errorf("VerifyRequest: %v", err)
				}
			}
		})
	}
}

// fill returns attributes whose encoding takes exactly n octets (n ≥ 2).
func fill(n int) radius.Attributes {
	var as radius.Attributes
	for n > 0 {
		l := min(n, 255)
		if n-l == 1 { // keep the remainder encodable
			l--
		}
		as = append(as, &radius.AVP{Type: 26, Attribute: make([]byte, l-2)})
		n -= l
	}
	return as
}

func TestCheckPacket(t *testing.T) {
	valid := buildRequest(radius.CodeAccessRequest, 1, authOf("aaaaaaaaaaaaaaaa"), []attr{{1, []byte("u")}, {33, []byte("p")}}, buildOpts{})
	tests := []struct {
		name    string
		b       []byte
		wantErr bool
		wantLen int
		maCount int
	}{
		{"valid", valid, false, len(valid), 1},
		{"trailing octets ignored", append(bytes.Clone(valid), 1, 2, 3), false, len(valid), 1},
		{"19 octets", valid[:19], true, 0, 0},
		{"Length 19", withLength(valid, 19), true, 0, 0},
		{"Length beyond datagram", withLength(valid, len(valid)+1), true, 0, 0},
		{"Length 4097", withLength(append(bytes.Clone(valid), make([]byte, 4097-len(valid))...), 4097), true, 0, 0},
		{"datagram of 4097", append(bytes.Clone(valid), make([]byte, 4097-len(valid))...), true, 0, 0},
		{"attribute length 0", append(withLength(valid, len(valid)+2), 1, 0), true, 0, 0},
		{"attribute length 1", append(withLength(valid, len(valid)+2), 1, 1), true, 0, 0},
		{"attribute overruns", append(withLength(valid, len(valid)+3), 1, 5, 0), true, 0, 0},
		{"lone type octet", append(withLength(valid, len(valid)+1), 1), true, 0, 0},
		{"MA of length 17", append(withLength(valid, len(valid)+17), append([]byte{80, 17}, make([]byte, 15)...)...), true, 0, 0},
		{"header only", withLength(valid[:20], 20), false, 20, 0},
		{"two MAs", buildRequest(radius.CodeAccessRequest, 1, authOf("a"), nil, buildOpts{twoMA: true}), false, 56, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt, info, err := checkPacket(tt.b)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(pkt) != tt.wantLen || info.maCount != tt.maCount {
				t.Errorf("len %d, MAs %d; want %d, %d", len(pkt), info.maCount, tt.wantLen, tt.maCount)
			}
			// layeh's Parse agrees on everything checkPacket accepts.
			if _, err := radius.Parse(pkt, testSecret); err != nil {
				t.Errorf("radius.Parse rejects what checkPacket accepted: %v", err)
			}
		})
	}
}

func withLength(b []byte, n int) []byte {
	b = bytes.Clone(b)
	b[2], b[3] = byte(n>>8), byte(n)
	return b
}

func TestVerifyRequestErrors(t *testing.T) {
	auth := authOf("fedcba9876543210")
	ps := []attr{{33, []byte("proxy")}}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"access ok", buildRequest(radius.CodeAccessRequest, 1, auth, ps, buildOpts{}), nil},
		{"access MA last ok", buildRequest(radius.CodeAccessRequest, 1, auth, ps, buildOpts{maLast: true}), nil},
		{"access no MA", buildRequest(radius.CodeAccessRequest, 1, auth, nil, buildOpts{noMA: true}), ErrMissingMessageAuthenticator},
		{"access no MA with Proxy-State", buildRequest(radius.CodeAccessRequest, 1, auth, ps, buildOpts{noMA: true}), ErrMissingMessageAuthenticator},
		{"access bad MA", buildRequest(radius.CodeAccessRequest, 1, auth, ps, buildOpts{badMA: true}), ErrBadMessageAuthenticator},
		{"access wrong secret", buildRequest(radius.CodeAccessRequest, 1, auth, ps, buildOpts{secret: []byte("nope")}), ErrBadMessageAuthenticator},
		{"access two MA", buildRequest(radius.CodeAccessRequest, 1, auth, ps, buildOpts{twoMA: true}), ErrMalformed},
		{"status no MA", buildRequest(radius.CodeStatusServer, 1, auth, nil, buildOpts{noMA: true}), ErrMissingMessageAuthenticator},
		{"status ok", buildRequest(radius.CodeStatusServer, 1, auth, nil, buildOpts{}), nil},
		{"acct ok, no MA", buildRequest(radius.CodeAccountingRequest, 1, auth, ps, buildOpts{noMA: true}), nil},
		{"acct ok, MA", buildRequest(radius.CodeAccountingRequest, 1, auth, ps, buildOpts{}), nil},
		{"acct bad auth", buildRequest(radius.CodeAccountingRequest, 1, auth, ps, buildOpts{badAuth: true}), ErrBadAuthenticator},
		{"acct bad MA", buildRequest(radius.CodeAccountingRequest, 1, auth, ps, buildOpts{badMA: true}), ErrBadMessageAuthenticator},
		{"acct two MA", buildRequest(radius.CodeAccountingRequest, 1, auth, ps, buildOpts{twoMA: true}), ErrMalformed},
		{"CoA ok", buildRequest(radius.CodeCoARequest, 1, auth, ps, buildOpts{}), nil},
		{"CoA bad auth", buildRequest(radius.CodeCoARequest, 1, auth, ps, buildOpts{badAuth: true}), ErrBadAuthenticator},
		{"Disconnect ok", buildRequest(radius.CodeDisconnectRequest, 1, auth, ps, buildOpts{}), nil},
		{"Disconnect wrong secret", buildRequest(radius.CodeDisconnectRequest, 1, auth, ps, buildOpts{secret: []byte("x")}), ErrBadAuthenticator},
		{"Access-Accept is no request", buildRequest(radius.CodeAccessAccept, 1, auth, nil, buildOpts{}), ErrUnsupportedCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyRequest(tt.b, testSecret)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifyRequest = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyReplyErrors(t *testing.T) {
	req := buildRequest(radius.CodeAccessRequest, 9, authOf("0000111122223333"), nil, buildOpts{})
	p, _ := radius.Parse(req, testSecret)
	good := func(code radius.Code, mod func(*radius.Packet)) []byte {
		r := p.Response(code)
		if mod != nil {
			mod(r)
		}
		b, err := EncodeReply(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A reply without Message-Authenticator: layeh's Encode computes only
	// the Response Authenticator.
	plain := func(code radius.Code) []byte {
		b, err := p.Response(code).Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	acctReq := buildRequest(radius.CodeAccountingRequest, 3, [16]byte{}, nil, buildOpts{})
	ap, _ := radius.Parse(acctReq, testSecret)
	acctPlain, _ := ap.Response(radius.CodeAccountingResponse).Encode()

	tests := []struct {
		name    string
		reply   []byte
		request []byte
		want    error
	}{
		{"accept", good(radius.CodeAccessAccept, nil), req, nil},
		{"challenge", good(radius.CodeAccessChallenge, nil), req, nil},
		{"no MA", plain(radius.CodeAccessAccept), req, ErrMissingMessageAuthenticator},
		{"bad response auth", flip(good(radius.CodeAccessAccept, nil), 5), req, ErrBadAuthenticator},
		{"wrong id", good(radius.CodeAccessAccept, func(r *radius.Packet) { r.Identifier++ }), req, ErrUnexpectedReply},
		{"wrong code", good(radius.CodeCoAACK, nil), req, ErrUnexpectedReply},
		{"acct reply without MA is fine", acctPlain, acctReq, nil},
		{"bad MA, authenticator recomputed", reauth(flip(good(radius.CodeAccessAccept, nil), 25), req), req, ErrBadMessageAuthenticator},
		{"MA over zero authenticator", maOverZero(t, p), req, ErrBadMessageAuthenticator},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyReply(tt.reply, tt.request, testSecret)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifyReply = %v, want %v", err, tt.want)
			}
		})
	}
}

// reauth recomputes the Response Authenticator of reply with the reference
// function, so that only the Message-Authenticator is wrong.
func reauth(reply, request []byte) []byte {
	reply = bytes.Clone(reply)
	copy(reply[4:20], refAuth(reply, testSecret, request[4:20]))
	return reply
}

// maOverZero builds an Access-Accept whose Message-Authenticator was
// computed over a zero authenticator field instead of the Request
// Authenticator (RFC 3579 §3.2 says the latter).
func maOverZero(t *testing.T, req *radius.Packet) []byte {
	b := []byte{2, req.Identifier, 0, 38}
	b = append(b, make([]byte, 16)...)
	b = append(b, 80, 18)
	b = append(b, make([]byte, 16)...)
	copy(b[22:38], refMA(b, testSecret, nil))
	copy(b[4:20], refAuth(b, testSecret, req.Authenticator[:]))
	return b
}
