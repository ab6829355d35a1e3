package bridge

import (
	"net"
	"testing"

	"trustnac/pep"
)

// BenchmarkRoleChange measures a CoA for one endpoint with 1,000 others bound: Bind moving one
// MAC between the admit and isolate sets (FDB replace plus one nftables transaction).
func BenchmarkRoleChange(b *testing.B) {
	l := newLab(b, 1)
	e := l.newEnforcer(l.config())
	must(b, e.Lock(bg, "p0"))
	for i := range 1000 {
		mac := net.HardwareAddr{2, 1, 0, 0, byte(i >> 8), byte(i)}
		must(b, e.Bind(bg, pep.Binding{Port: "p0", MAC: mac, Role: allRoles[i%len(allRoles)]}))
	}
	rules := l.ruleCount(DefaultTable)
	mac := net.HardwareAddr{2, 1, 0, 0, 0, 7}
	roles := []string{RoleAdmit, RoleIsolate}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := e.Bind(bg, pep.Binding{Port: "p0", MAC: mac, Role: roles[i%2]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	if n := l.ruleCount(DefaultTable); n != rules {
		b.Errorf("rule count changed from %d to %d", rules, n)
	}
	got, err := e.Bindings(bg)
	must(b, err)
	if len(got) != 1000 {
		b.Errorf("%d bindings, want 1000", len(got))
	}
}
