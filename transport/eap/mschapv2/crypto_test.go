package mschapv2

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func arr16(t testing.TB, s string) (a [16]byte) {
	t.Helper()
	if copy(a[:], unhex(t, s)) != 16 {
		t.Fatalf("%s is not 16 octets", s)
	}
	return a
}

// TestRFC2759Vectors checks the §8 functions against RFC 2759 §9.2.
func TestRFC2759Vectors(t *testing.T) {
	const (
		user     = "User"
		password = "clientPass"
	)
	authCh := arr16(t, "5B5D7C7D7B3F2F3E3C2C602132262628")
	peerCh := arr16(t, "21402324255E262A28295F2B3A337C7E")

	hash := NTHash(password)
	if want := unhex(t, "44EBBA8D5312B8D611474411F56989AE"); !bytes.Equal(hash, want) {
		t.Fatalf("NtPasswordHash = %X, want %X", hash, want)
	}
	var h [16]byte
	copy(h[:], hash)
	if hh, want := hashNTHash(h), unhex(t, "41C00C584BD2D91C4017A2A12FA59F3F"); !bytes.Equal(hh[:], want) {
		t.Fatalf("PasswordHashHash = %X, want %X", hh, want)
	}
	ch := ChallengeHash(peerCh, authCh, user)
	if want := unhex(t, "D02E4386BCE91226"); !bytes.Equal(ch[:], want) {
		t.Fatalf("ChallengeHash = %X, want %X", ch, want)
	}
	nt := GenerateNTResponse(authCh, peerCh, user, h)
	if want := unhex(t, "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"); !bytes.Equal(nt[:], want) {
		t.Fatalf("NT-Response = %X, want %X", nt, want)
	}
	if cr := ChallengeResponse(ch, h); cr != nt {
		t.Fatalf("ChallengeResponse = %X, want the NT-Response", cr)
	}
	auth := AuthenticatorResponse(h, nt, peerCh, authCh, user)
	if got := FormatSuccess(auth, "x"); got != "S=407A5589115FD0D6209F510FE9C04566932CDA56 M=x" {
		t.Fatalf("authenticator response %q", got)
	}
	// The domain prefix does not enter the challenge hash (RFC 2759 §8.2).
	if GenerateNTResponse(authCh, peerCh, `CORP\User`, h) != nt {
		t.Fatal("domain prefix changed the NT-Response")
	}
}

func TestNTHash(t *testing.T) {
	tests := []struct{ password, want string }{
		{"", "31D6CFE0D16AE931B73C59D7E0C089C0"},           // MD4 of the empty string
		{"clientPass", "44EBBA8D5312B8D611474411F56989AE"}, // RFC 2759 §9.2
	}
	for _, tt := range tests {
		if got := NTHash(tt.password); !bytes.Equal(got, unhex(t, tt.want)) {
			t.Errorf("NTHash(%q) = %X, want %s", tt.password, got, tt.want)
		}
	}
	// Non-ASCII passwords are hashed in UTF-16LE, surrogate pairs included:
	// each must give a distinct 16-octet hash.
	seen := map[string]string{}
	for _, p := range []string{"pässwort", "passwort", "密码", "😀", "\U0001F600x"} {
		h := NTHash(p)
		if len(h) != 16 {
			t.Fatalf("NTHash(%q) has %d octets", p, len(h))
		}
		if q, dup := seen[string(h)]; dup {
			t.Fatalf("NTHash(%q) = NTHash(%q)", p, q)
		}
		seen[string(h)] = p
	}
}

func BenchmarkVerifyResponse(b *testing.B) {
	var h, a, p [16]byte
	copy(h[:], NTHash("clientPass"))
	b.ReportAllocs()
	for b.Loop() {
		nt := GenerateNTResponse(a, p, "User", h)
		_ = AuthenticatorResponse(h, nt, p, a, "User")
	}
}
