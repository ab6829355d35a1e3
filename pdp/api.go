package pdp

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// API is the PDP's read-only admin API, served on a loopback address or a
// Unix socket:
//
//	GET /v1/endpoints       all endpoint records
//	GET /v1/endpoints/{id}  one record
//	GET /healthz            200 once the PDP is serving
type API struct {
	Store Store
	Log   *slog.Logger
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
	return mux
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
