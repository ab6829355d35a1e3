package tpmimc

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/emmansun/gmsm/sm3"
	"github.com/google/go-tpm/tpm2"
)

// TestBindingHash: the channel binding hashes are the standard ones (SM3
// is not on swtpm, so the end-to-end tests cover SHA-256 only).
func TestBindingHash(t *testing.T) {
	in := []byte("nonce-0123456789binding")
	s3 := sm3.Sum(in)
	s2 := sha256.Sum256(in)
	for _, tc := range []struct {
		alg  tpm2.TPMAlgID
		want []byte
	}{{tpm2.TPMAlgSM3256, s3[:]}, {tpm2.TPMAlgSHA256, s2[:]}} {
		h, err := bindingHash(tc.alg)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(in[:16])
		h.Write(in[16:])
		if got := h.Sum(nil); !bytes.Equal(got, tc.want) {
			t.Fatalf("%#04x: %x, want %x", uint16(tc.alg), got, tc.want)
		}
	}
	if _, err := bindingHash(tpm2.TPMAlgSHA1); err == nil {
		t.Fatal("SHA-1 binding accepted")
	}
}
