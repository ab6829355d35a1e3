package smdtls

import (
	"bytes"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
	"github.com/pion/dtls/v2/pkg/crypto/prf"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// referencePRF is RFC 5246 §5 written out as the RFC states it, with a
// one-shot HMAC-SM3 per step: A(i) kept as a list, output the
// concatenation of HMAC(secret, A(i) + label + seed).
func referencePRF(secret, label, seed []byte, n int) []byte {
	hmacSM3 := func(parts ...[]byte) []byte {
		m := hmac.New(sm3.New, secret)
		for _, p := range parts {
			m.Write(p)
		}
		return m.Sum(nil)
	}
	labelSeed := append(append([]byte{}, label...), seed...)
	A := [][]byte{labelSeed}
	var out []byte
	for i := 1; len(out) < n; i++ {
		A = append(A, hmacSM3(A[i-1]))
		out = append(out, hmacSM3(A[i], labelSeed)...)
	}
	return out[:n]
}

// referenceOpen decrypts one DTLS 1.2 SM4-GCM record without this
// package's record code.
func referenceOpen(t *testing.T, key, salt, rec []byte) []byte {
	t.Helper()
	block, err := sm4.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := append(append([]byte{}, salt...), rec[13:21]...)
	ct := rec[21:]
	ad := make([]byte, 13)
	copy(ad[0:8], rec[3:11])
	ad[8] = rec[0]
	ad[9], ad[10] = rec[1], rec[2]
	binary.BigEndian.PutUint16(ad[11:], uint16(len(ct)-16))
	plain, err := aead.Open(nil, nonce, ct, ad)
	if err != nil {
		t.Fatalf("reference open: %v", err)
	}
	return plain
}

func TestSM3KnownAnswer(t *testing.T) {
	// GB/T 32905-2016 Appendix A, example 1.
	got := sm3.Sum([]byte("abc"))
	if want := unhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"); !bytes.Equal(got[:], want) {
		t.Fatalf("SM3(abc) = %x", got)
	}
}

func TestPRFSM3(t *testing.T) {
	secret := unhex("9bbe436ba940f017b17652849a71db35")
	seed := unhex("a0ba9f936cda311827a6f796ffd5198c")
	tests := []struct {
		label string
		n     int
	}{{"test label", 100}, {"key expansion", keyBlockLen}, {"", 1}, {"x", 32}, {"master secret", 48}}
	for _, tt := range tests {
		got := make([]byte, tt.n)
		prfSM3(got, secret, tt.label, seed)
		if want := referencePRF(secret, []byte(tt.label), seed, tt.n); !bytes.Equal(got, want) {
			t.Errorf("%q: prfSM3 %x, reference %x", tt.label, got, want)
		}
		// pion's P_hash, an independent implementation, agrees.
		want, err := prf.PHash(secret, append([]byte(tt.label), seed...), tt.n, sm3.New)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: prfSM3 %x, pion P_hash %x", tt.label, got, want)
		}
		// Split seeds give the same output as one seed.
		split := make([]byte, tt.n)
		prfSM3(split, secret, tt.label, seed[:5], seed[5:])
		if !bytes.Equal(split, got) {
			t.Errorf("%q: split seed differs", tt.label)
		}
	}
	// Output is a prefix-stable stream; longer output extends shorter.
	a, b := make([]byte, 20), make([]byte, 70)
	prfSM3(a, secret, "l", seed)
	prfSM3(b, secret, "l", seed)
	if !bytes.Equal(a, b[:20]) {
		t.Error("PRF output is not prefix-stable")
	}
}

func TestExpandKeysAndExporter(t *testing.T) {
	master := bytes.Repeat([]byte{0x4d}, 48)
	cr, sr := bytes.Repeat([]byte{0xc1}, 32), bytes.Repeat([]byte{0x5e}, 32)
	kb := expandKeys(master, cr, sr)
	ref := referencePRF(master, []byte("key expansion"), append(append([]byte{}, sr...), cr...), 40)
	got := append(append(append(append([]byte{}, kb.clientKey[:]...), kb.serverKey[:]...), kb.clientSalt[:]...), kb.serverSalt[:]...)
	if !bytes.Equal(got, ref) {
		t.Errorf("key block %x, want %x", got, ref)
	}

	ctx := []byte("ctx")
	out, err := exportKeyingMaterial(master, cr, sr, "EXPORTER-test", ctx, 48)
	if err != nil {
		t.Fatal(err)
	}
	seed := append(append(append(append([]byte{}, cr...), sr...), 0, 3), ctx...)
	if want := referencePRF(master, []byte("EXPORTER-test"), seed, 48); !bytes.Equal(out, want) {
		t.Errorf("exporter with context %x, want %x", out, want)
	}
	out, _ = exportKeyingMaterial(master, cr, sr, "EXPORTER-test", nil, 48)
	if want := referencePRF(master, []byte("EXPORTER-test"), append(append([]byte{}, cr...), sr...), 48); !bytes.Equal(out, want) {
		t.Errorf("exporter without context %x, want %x", out, want)
	}
	if _, err := exportKeyingMaterial(nil, cr, sr, "EXPORTER-test", nil, 8); err == nil {
		t.Error("export before the handshake succeeded")
	}
}

// TestSM4GCMVector checks the record cipher's AEAD against RFC 8998
// Appendix A.1.
func TestSM4GCMVector(t *testing.T) {
	key := unhex("0123456789ABCDEFFEDCBA9876543210")
	iv := unhex("00001234567800000000ABCD")
	plain := unhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
	ad := unhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
	wantCT := unhex("17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D")
	wantTag := unhex("83DE3541E4C2B58177E065A9BF7B62EC")

	rc, err := newSM4Cipher(key, iv[:4])
	if err != nil {
		t.Fatal(err)
	}
	got := rc.aead.Seal(nil, iv, plain, ad)
	if !bytes.Equal(got, append(append([]byte{}, wantCT...), wantTag...)) {
		t.Fatalf("SM4-GCM = %X", got)
	}
	if _, err := rc.aead.Open(nil, iv, got, ad); err != nil {
		t.Fatal(err)
	}
}

// TestRecordSealOpen checks the record layout against a record built by
// hand with the RFC 8998 key and salt: epoch 0x5678 and sequence number
// 0xABCD give the RFC's IV as the nonce.
func TestRecordSealOpen(t *testing.T) {
	key := unhex("0123456789ABCDEFFEDCBA9876543210")
	salt := unhex("00001234")
	rc, err := newSM4Cipher(key, salt)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("PT-TLS over SM-DTLS")
	hdr := []byte{contentApplicationData, 254, 253, 0x56, 0x78, 0, 0, 0, 0, 0xAB, 0xCD, 0, byte(len(plain))}
	rec := append(append([]byte{}, hdr...), plain...)

	sealed, err := rc.seal(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	// Expected bytes, from the AEAD directly.
	block, _ := sm4.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	ad := []byte{0x56, 0x78, 0, 0, 0, 0, 0xAB, 0xCD, contentApplicationData, 254, 253, 0, byte(len(plain))}
	body := aead.Seal(nil, unhex("00001234567800000000ABCD"), plain, ad)
	want := append(append(append([]byte{}, hdr[:11]...), 0, byte(8+len(body))), append(unhex("567800000000ABCD"), body...)...)
	if !bytes.Equal(sealed, want) {
		t.Fatalf("sealed\n%x\nwant\n%x", sealed, want)
	}
	opened, err := rc.open(nil, sealed)
	if err != nil || !bytes.Equal(opened, rec) {
		t.Fatalf("open = %x, %v", opened, err)
	}

	tamper := []struct {
		name string
		mod  func([]byte) []byte
	}{
		{"type", func(b []byte) []byte { b[0] = contentHandshake; return b }},
		{"version", func(b []byte) []byte { b[2] = 255; return b }},
		{"epoch", func(b []byte) []byte { b[4] ^= 1; return b }},
		{"sequence", func(b []byte) []byte { b[10] ^= 1; return b }},
		{"explicit nonce", func(b []byte) []byte { b[20] ^= 1; return b }},
		{"ciphertext", func(b []byte) []byte { b[25] ^= 0x80; return b }},
		{"tag", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
	}
	for _, tt := range tamper {
		b := tt.mod(append([]byte{}, sealed...))
		if _, err := rc.open(nil, b); err != errRecordAuth {
			t.Errorf("%s tampered: err = %v, want errRecordAuth", tt.name, err)
		}
	}
	malformed := [][]byte{
		nil,
		sealed[:recordHeaderLen+explicitNonceLen+gcmTagLen-1],
		sealed[:len(sealed)-1], // length field now lies
		append(append([]byte{}, sealed...), 0),
	}
	for i, b := range malformed {
		if _, err := rc.open(nil, b); err == nil || err == errRecordAuth {
			t.Errorf("malformed %d: err = %v, want ErrMalformed", i, err)
		}
	}
	if _, err := rc.seal(nil, make([]byte, recordHeaderLen+maxPlaintextLen+1)); err == nil {
		t.Error("sealing an oversized record succeeded")
	}
}
