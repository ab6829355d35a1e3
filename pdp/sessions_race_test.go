package pdp

import (
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestSessionTableConcurrentPutSetRole: accounting (Put) and CoA (SetRole)
// touch the same session at once; each must save a copy of its own (the race
// detector in `make test` catches a shared one).
func TestSessionTableConcurrentPutSetRole(t *testing.T) {
	st, err := OpenBoltStore(filepath.Join(t.TempDir(), "pdp.db"), false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tab, err := NewSessionTable(st)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if i == 0 {
					if err := tab.Put(&Session{NAS: "hv1", ID: "s1", MAC: "02:00:00:00:00:01", Role: "assess"}); err != nil {
						t.Error(err)
						return
					}
				} else {
					tab.SetRole("hv1", "s1", "admit")
				}
			}
		}()
	}
	wg.Wait()
	if all := tab.All(); len(all) != 1 {
		t.Fatalf("sessions %+v", all)
	}
}
