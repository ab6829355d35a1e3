package pdp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	tpmimv "trustnac/imv/tpm"
)

// API is the PDP's read-only admin API, served on a loopback address or a
// Unix socket:
//
//	GET /v1/endpoints       all endpoint records
//	GET /v1/endpoints/{id}  one record
//	GET /healthz            200 once the PDP is serving
//	GET /v1/aks             enrolled attestation keys
//	GET /v1/sessions        sessions NASes reported in RADIUS accounting
//	GET /v1/stats           counters of the RADIUS servers and handlers and
//	                        of the SM-DTLS listener (Stats)
//	GET /v1/psks            PSKs of the SM channel (never their keys)
//	POST /v1/aks/{name}/approve, POST /v1/aks/{name}/revoke (which also
//	                        revokes the PSKs wrapped for that AK),
//	POST /v1/endpoints/{id}/revoke (revokes the endpoint's PSKs)
//	                        only over a Unix socket, from root or the
//	                        PDP's own user (checked with SO_PEERCRED)
type API struct {
	Store Store
	AKs   AKAdmin
	// PSKs lists and revokes SM-channel PSKs; nil when the SM channel is
	// off.
	PSKs PSKAdmin
	// RADIUS gives sessions and counters; nil when RADIUS is off.
	RADIUS *RADIUS
	// Stats adds counters by name (the RADIUS servers'), may be nil.
	Stats func() map[string]map[string]uint64
	Log   *slog.Logger
}

// AKAdmin lists attestation keys and sets their status.
type AKAdmin interface {
	ListAKs() ([]*tpmimv.AKRecord, error)
	SetAKStatus(name, status string, now time.Time) (*tpmimv.AKRecord, error)
}

// PSKAdmin lists and revokes the PSKs of the SM channel (*PSKStore).
type PSKAdmin interface {
	List() ([]*PSK, error)
	RevokeEndpoint(endpoint string) (int, error)
	RevokeAK(akName string) (int, error)
}

// Handler returns the API's HTTP handler.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		recs, err := a.Store.List()
		if err != nil {
			a.fail(w, err)
			return
		}
		if recs == nil {
			recs = []*Record{}
		}
		writeJSON(w, http.StatusOK, recs)
	})
	mux.HandleFunc("GET /v1/endpoints/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec, err := a.Store.Get(r.PathValue("id"))
		if errors.Is(err, ErrNotFound) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "endpoint not found"})
			return
		}
		if err != nil {
			a.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, rec)
	})
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		ss := []Session{}
		if a.RADIUS != nil {
			ss = a.RADIUS.Sessions().All()
		}
		writeJSON(w, http.StatusOK, ss)
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]map[string]uint64{}
		if a.RADIUS != nil {
			out["radius"] = a.RADIUS.Stats()
		}
		if a.Stats != nil {
			for k, v := range a.Stats() {
				out[k] = v
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /v1/aks", func(w http.ResponseWriter, r *http.Request) {
		recs, err := a.AKs.ListAKs()
		if err != nil {
			a.fail(w, err)
			return
		}
		if recs == nil {
			recs = []*tpmimv.AKRecord{}
		}
		writeJSON(w, http.StatusOK, recs)
	})
	setStatus := func(status string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !mayChange(r.Context()) {
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "changes need the API on a unix socket, as root"})
				return
			}
			rec, err := a.AKs.SetAKStatus(r.PathValue("name"), status, time.Now().UTC())
			switch {
			case errors.Is(err, tpmimv.ErrUnknownAK):
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "attestation key not found"})
				return
			case err != nil:
				a.fail(w, err)
				return
			}
			if status == AKRevoked && a.PSKs != nil {
				n, err := a.PSKs.RevokeAK(rec.Name)
				if err != nil {
					a.fail(w, err)
					return
				}
				if a.Log != nil && n > 0 {
					a.Log.Info("PSKs revoked with their attestation key", "ak", rec.Name, "psks", n)
				}
			}
			if a.Log != nil {
				a.Log.Info("attestation key "+status, "ak", rec.Name, "endpoint", rec.EndpointID)
			}
			writeJSON(w, http.StatusOK, rec)
		}
	}
	mux.HandleFunc("GET /v1/psks", func(w http.ResponseWriter, r *http.Request) {
		psks := []*PSK{}
		if a.PSKs != nil {
			l, err := a.PSKs.List()
			if err != nil {
				a.fail(w, err)
				return
			}
			psks = append(psks, l...)
		}
		writeJSON(w, http.StatusOK, psks)
	})
	mux.HandleFunc("POST /v1/endpoints/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		if !mayChange(r.Context()) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "changes need the API on a unix socket, as root"})
			return
		}
		if a.PSKs == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "the SM channel is off: no PSKs"})
			return
		}
		id := r.PathValue("id")
		n, err := a.PSKs.RevokeEndpoint(id)
		if err != nil {
			a.fail(w, err)
			return
		}
		if a.Log != nil {
			a.Log.Info("endpoint revoked", "endpoint", id, "psks", n)
		}
		writeJSON(w, http.StatusOK, map[string]any{"endpoint": id, "revoked_psks": n})
	})
	mux.HandleFunc("POST /v1/aks/{name}/approve", setStatus(AKApproved))
	mux.HandleFunc("POST /v1/aks/{name}/revoke", setStatus(AKRevoked))
	return mux
}

type peerUIDKey struct{}

// PeerCredContext is an http.Server ConnContext that records the user ID of
// a Unix socket peer (SO_PEERCRED), which mayChange checks.
func PeerCredContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *syscall.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return ctx
	}
	return context.WithValue(ctx, peerUIDKey{}, cred.Uid)
}

// mayChange reports whether the request came over a Unix socket from root or
// from the PDP's own user.
func mayChange(ctx context.Context) bool {
	uid, ok := ctx.Value(peerUIDKey{}).(uint32)
	return ok && (uid == 0 || int(uid) == os.Getuid())
}

func (a *API) fail(w http.ResponseWriter, err error) {
	if a.Log != nil {
		a.Log.Error("api", "err", err)
	}
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
