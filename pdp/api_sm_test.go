package pdp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tpmimv "trustnac/imv/tpm"
)

// TestAPIPSKs: the PSK list carries no keys; revoking an endpoint revokes
// its PSKs and revoking an AK those wrapped for it, both only for a local
// administrator (SO_PEERCRED on the unix socket).
func TestAPIPSKs(t *testing.T) {
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "pdp.db"), false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	psks := s.PSKs()
	if err := s.PutAK(&tpmimv.AKRecord{Name: "sha256:aa", EndpointID: "id:a", Status: tpmimv.StatusApproved}); err != nil {
		t.Fatal(err)
	}
	a1, key, err := psks.Issue("id:a", PSKKindTPM, "sha256:aa", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b1, _, err := psks.Issue("id:b", PSKKindSM2, "sm3:bb", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := (&API{Store: s, AKs: s, PSKs: psks}).Handler()
	admin := context.WithValue(context.Background(), peerUIDKey{}, uint32(0))
	do := func(ctx context.Context, method, path string) (int, string) {
		req := httptest.NewRequest(method, path, nil).WithContext(ctx)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	list := func() map[string]bool {
		code, body := do(context.Background(), http.MethodGet, "/v1/psks")
		if code != http.StatusOK {
			t.Fatalf("GET /v1/psks: %d %s", code, body)
		}
		if strings.Contains(body, `"key"`) || strings.Contains(body, string(key)) {
			t.Fatalf("the PSK list carries a key:\n%s", body)
		}
		var got []PSK
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		revoked := map[string]bool{}
		for _, p := range got {
			revoked[p.Identity] = p.Revoked
		}
		return revoked
	}
	if r := list(); len(r) != 2 || r[a1.Identity] || r[b1.Identity] {
		t.Fatalf("list %v", r)
	}

	tests := []struct {
		name    string
		ctx     context.Context
		path    string
		code    int
		revoked map[string]bool
	}{
		{"endpoint revoke over TCP refused", context.Background(), "/v1/endpoints/id:b/revoke", http.StatusForbidden, map[string]bool{a1.Identity: false, b1.Identity: false}},
		{"endpoint revoke", admin, "/v1/endpoints/id:b/revoke", http.StatusOK, map[string]bool{a1.Identity: false, b1.Identity: true}},
		{"unknown endpoint revokes nothing", admin, "/v1/endpoints/id:zz/revoke", http.StatusOK, map[string]bool{a1.Identity: false, b1.Identity: true}},
		{"AK revoke revokes its PSKs", admin, "/v1/aks/sha256:aa/revoke", http.StatusOK, map[string]bool{a1.Identity: true, b1.Identity: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := do(tt.ctx, http.MethodPost, tt.path); code != tt.code {
				t.Fatalf("%s: %d %s", tt.path, code, body)
			}
			if r := list(); len(r) != 2 || r[a1.Identity] != tt.revoked[a1.Identity] || r[b1.Identity] != tt.revoked[b1.Identity] {
				t.Fatalf("revoked %v, want %v", r, tt.revoked)
			}
		})
	}

	// Without the SM channel: an empty list, and revoking says why not.
	h = (&API{Store: s, AKs: s}).Handler()
	if code, body := do(context.Background(), http.MethodGet, "/v1/psks"); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("no PSK store: %d %s", code, body)
	}
	if code, _ := do(admin, http.MethodPost, "/v1/endpoints/id:a/revoke"); code != http.StatusNotFound {
		t.Errorf("revoke without PSK store: %d", code)
	}
}
