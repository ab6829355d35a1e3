package tpmimc

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// The P-256 AK template marshalled here equals go-tpm's marshalling of the
// same TPMT_PUBLIC.
func TestAKTemplateMatchesGoTPM(t *testing.T) {
	want := tpm2.Marshal(tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
			UserWithAuth: true, Restricted: true, SignEncrypt: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
	})
	got := akTemplate(tpm2.TPMECCNistP256, tpm2.TPMAlgECDSA, tpm2.TPMAlgSHA256)
	if !bytes.Equal(got, want) {
		t.Errorf("template\n got %x\nwant %x", got, want)
	}
}

// The SM2 template, byte by byte (TPM 2.0 Part 2 §12.2.4).
func TestSM2Template(t *testing.T) {
	want, _ := hex.DecodeString("" +
		"0023" + // type TPM_ALG_ECC
		"000b" + // nameAlg SHA-256
		"00050072" + // fixedTPM fixedParent sensitiveDataOrigin userWithAuth restricted sign
		"0000" + // authPolicy
		"0010" + // symmetric TPM_ALG_NULL
		"001b" + "0012" + // scheme TPM_ALG_SM2, SM3-256
		"0020" + // curve TPM_ECC_SM2_P256
		"0010" + // kdf TPM_ALG_NULL
		"0000" + "0000") // unique x, y
	if got := akTemplate(tpm2.TPMECCSM2P256, tpm2.TPMAlgSM2, tpm2.TPMAlgSM3256); !bytes.Equal(got, want) {
		t.Errorf("SM2 template\n got %x\nwant %x", got, want)
	}
}

// tpm2-tools made testdata/tpm2tools/ak.pub with
// `tpm2_create -G ecc256:ecdsa-sha256:null -a fixedtpm|fixedparent|...`:
// the same template as ours, with the TPM's point.
func TestParseTPM2ToolsAK(t *testing.T) {
	b, err := os.ReadFile("testdata/tpm2tools/ak.pub")
	if err != nil {
		t.Fatal(err)
	}
	pub := b[2:]
	if int(binary.BigEndian.Uint16(b)) != len(pub) {
		t.Fatal("ak.pub is not a TPM2B")
	}
	p, err := ParseECCPublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{kind: akKinds[AKAlgECCP256]}
	ak, err := c.newAK(pub)
	if err != nil {
		t.Fatalf("tpm2-tools AK is not ours: %v", err)
	}
	if _, err := ak.PublicKey(); err != nil {
		t.Fatal(err)
	}
	x, y := p.X, p.Y
	p.X, p.Y = nil, nil
	tmpl, _ := p.AppendBinary(nil)
	if !bytes.Equal(tmpl, akTemplate(tpm2.TPMECCNistP256, tpm2.TPMAlgECDSA, tpm2.TPMAlgSHA256)) {
		t.Errorf("tpm2-tools AK template differs: %x", tmpl)
	}
	p.X, p.Y = x, y
	again, _ := p.AppendBinary(nil)
	if !bytes.Equal(again, pub) {
		t.Error("public area does not round-trip")
	}
	// go-tpm's view agrees with the byte-level one.
	gp, err := tpm2.Unmarshal[tpm2.TPMTPublic](pub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tpm2.Marshal(ak.Public), tpm2.Marshal(*gp)) {
		t.Error("goTPMPublic differs from go-tpm's parse")
	}
}

func TestParseECCPublic(t *testing.T) {
	valid := akTemplate(tpm2.TPMECCNistP256, tpm2.TPMAlgECDSA, tpm2.TPMAlgSHA256)
	srk := tpm2.Marshal(tpm2.ECCSRKTemplate) // symmetric AES-128-CFB, scheme NULL
	ecdaa := (&ECCPublic{NameAlg: tpm2.TPMAlgSHA256, Symmetric: tpm2.TPMAlgNull, Scheme: tpm2.TPMAlgECDAA,
		SchemeHash: tpm2.TPMAlgSHA256, SchemeCount: 7, Curve: tpm2.TPMECCBNP256, KDF: tpm2.TPMAlgKDF1SP80056A, KDFHash: tpm2.TPMAlgSHA256})
	ecdaaB, err := ecdaa.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	rsa := tpm2.Marshal(tpm2.RSAEKTemplate)
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"AK template", valid, true},
		{"SRK template", srk, true},
		{"ECDAA with KDF", ecdaaB, true},
		{"RSA", rsa, false},
		{"empty", nil, false},
		{"truncated", valid[:len(valid)-1], false},
		{"trailing byte", append(bytes.Clone(valid), 0), false},
		{"long point", append(valid[:len(valid)-4], append(append([]byte{0, 67}, make([]byte, 67)...), 0, 0)...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseECCPublic(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseECCPublic: %v, want ok %v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrBadPublic) {
					t.Errorf("error %v is not ErrBadPublic", err)
				}
				return
			}
			out, err := p.AppendBinary(nil)
			if err != nil || !bytes.Equal(out, tt.in) {
				t.Errorf("round trip: %x (%v), want %x", out, err, tt.in)
			}
		})
	}
	// The SRK template's fields, as go-tpm defines them.
	p, _ := ParseECCPublic(srk)
	if p.Symmetric != tpm2.TPMAlgAES || p.SymKeyBits != 128 || p.SymMode != tpm2.TPMAlgCFB || p.Scheme != tpm2.TPMAlgNull || len(p.X) != 32 {
		t.Errorf("SRK template parsed as %+v", p)
	}
}

func TestPublicKeyRejectsBadPoints(t *testing.T) {
	p := &ECCPublic{Curve: tpm2.TPMECCNistP256, X: []byte{1}, Y: []byte{2}}
	if _, err := p.PublicKey(); err == nil {
		t.Error("accepted a point off P-256")
	}
	p.Curve = tpm2.TPMECCSM2P256
	if _, err := p.PublicKey(); err == nil {
		t.Error("accepted a point off SM2 P-256")
	}
	p.Curve = tpm2.TPMECCNistP384
	if _, err := p.PublicKey(); err == nil {
		t.Error("accepted P-384")
	}
	p = &ECCPublic{Curve: tpm2.TPMECCNistP256}
	if _, err := p.PublicKey(); err == nil {
		t.Error("accepted an empty point")
	}
}

// quoteResponse builds a TPM2_Quote response around attest and sig.
func quoteResponse(attest, sig []byte) []byte {
	params := append2B(nil, attest)
	params = append(params, sig...)
	b := binary.BigEndian.AppendUint16(nil, tpmSTSessions)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(params)))
	b = append(b, params...)
	b = append(b, 0, 0, 1, 0, 0) // TPMS_AUTH_RESPONSE: nonce, continueSession, hmac
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	return b
}

func TestParseQuoteResponse(t *testing.T) {
	attest := []byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0, 0, 0, 2, 0xaa, 0xbb}
	sig := []byte{0, 0x18, 0, 0x0b, 0, 1, 7, 0, 1, 8}
	good := quoteResponse(attest, sig)
	rcResp := []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x8b} // TPM_RC_HANDLE for handle 1
	tests := []struct {
		name  string
		in    []byte
		tpmRC bool
	}{
		{"good", good, false},
		{"empty", nil, false},
		{"size lies", append(bytes.Clone(good), 0), false},
		{"params too long", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint32(b[10:], uint32(len(b)))
			return b
		}(), false},
		{"attest too long", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint16(b[14:], 0xffff)
			return b
		}(), false},
		{"no signature", quoteResponse(attest, nil), false},
		{"TPM error", rcResp, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, s, err := parseQuoteResponse(tt.in)
			if tt.name == "good" {
				if err != nil || !bytes.Equal(a, attest) || !bytes.Equal(s, sig) {
					t.Fatalf("got %x %x %v", a, s, err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.tpmRC != errors.Is(err, tpm2.TPMRCHandle) {
				t.Errorf("error %v: TPM_RC_HANDLE %v", err, errors.Is(err, tpm2.TPMRCHandle))
			}
			if !tt.tpmRC && !errors.Is(err, ErrBadResponse) {
				t.Errorf("error %v is not ErrBadResponse", err)
			}
		})
	}
}

func TestCheckQuote(t *testing.T) {
	n := []byte("12345678")
	attest := append([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0, 2, 0, 0x0b}, append2B(nil, n)...)
	sig := []byte{0, 0x1b, 0, 0x12, 0, 1, 7, 0, 1, 8}
	tests := []struct {
		name   string
		attest []byte
		sig    []byte
		nonce  []byte
		ok     bool
	}{
		{"good", attest, sig, n, true},
		{"other nonce", attest, sig, []byte("87654321"), false},
		{"bad magic", append([]byte{0}, attest[1:]...), sig, n, false},
		{"certify, not quote", append(append(bytes.Clone(attest[:4]), 0x80, 0x17), attest[6:]...), sig, n, false},
		{"short attest", attest[:7], sig, n, false},
		{"ECDSA signature", attest, append([]byte{0, 0x18}, sig[2:]...), n, false},
		{"SHA-256 hash", attest, append([]byte{0, 0x1b, 0, 0x0b}, sig[4:]...), n, false},
		{"RSA signature", attest, []byte{0, 0x14, 0, 0x0b, 0, 1, 1}, n, false},
		{"trailing", attest, append(bytes.Clone(sig), 0), n, false},
	}
	for _, tt := range tests {
		err := checkQuote(tt.attest, tt.sig, tt.nonce, tpm2.TPMAlgSM2, tpm2.TPMAlgSM3256)
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestBitmap(t *testing.T) {
	for _, pcrs := range [][]uint8{nil, {0}, {7, 8}, {0, 1, 2, 3, 4, 5, 6, 7, 10, 23}} {
		got := indexes(bitmap(pcrs))
		if len(got) != len(pcrs) {
			t.Errorf("%v → %v", pcrs, got)
			continue
		}
		for i := range got {
			if got[i] != pcrs[i] {
				t.Errorf("%v → %v", pcrs, got)
			}
		}
	}
	if b := bitmap([]uint8{0, 7, 10}); !bytes.Equal(b, []byte{0x81, 0x04, 0x00}) {
		t.Errorf("bitmap %x", b)
	}
}
