package osimc

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"trustnac/transport/patnc"
)

// settledClock is a clock an hour ahead: every file written by a test is
// past the racy window, so the cache keeps what it reads.
func settledClock() time.Time { return time.Now().Add(time.Hour) }

// privateCollector is a collector over cfg with a cache of its own (not
// shared with other tests), a fixed uname and the clock now.
func privateCollector(cfg Config, now func() time.Time) *Collector {
	c := New(cfg, nil)
	c.cache = new(caches)
	c.uname = func() (string, string, error) { return "6.1.0-18-amd64", "x86_64", nil }
	c.now = now
	return c
}

// begin runs one Begin on a new session of c.
func begin(t testing.TB, c *Collector) []patnc.Attribute {
	t.Helper()
	s, err := c.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

// encodeAttrs renders attributes as the verifier receives them, one
// hex-encoded PA-TNC attribute per line. It may run in any goroutine.
func encodeAttrs(t testing.TB, attrs []patnc.Attribute) string {
	t.Helper()
	var sb strings.Builder
	for _, a := range attrs {
		b, err := a.AppendBinary(nil)
		if err != nil {
			t.Error(err)
			return ""
		}
		sb.WriteString(hex.EncodeToString(b))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// attrOf returns the decoded attribute of type typ, nil if not sent.
func attrOf(t *testing.T, attrs []patnc.Attribute, typ uint32) patnc.Value {
	t.Helper()
	for _, v := range decodeAll(t, attrs) {
		if v.AttrID().Type == typ {
			return v
		}
	}
	return nil
}

// TestBeginGolden checks that what Begin sends for the testbed's healthy
// fixture is byte for byte what the collector sent before it cached
// anything (testdata/begin-healthy.golden was written by that version),
// on the first collection and on cached ones.
func TestBeginGolden(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "begin-healthy.golden"))
	if err != nil {
		t.Fatal(err)
	}
	c := privateCollector(Config{Root: healthyFixture}, settledClock)
	for i := range 3 {
		if got := encodeAttrs(t, begin(t, c)); got != string(want) {
			t.Fatalf("Begin %d sent\n%s\nwant\n%s", i+1, got, want)
		}
	}
	if n := c.cache.osRelease.loads.Load(); n != 1 {
		t.Errorf("os-release read %d times, want once", n)
	}
	if n := c.cache.dpkg.loads.Load(); n != 1 {
		t.Errorf("dpkg status read %d times, want once", n)
	}
	// A collector of the same configuration built by New shares the cache.
	d := New(Config{Root: healthyFixture}, nil)
	if d.cache != New(Config{Root: healthyFixture}, nil).cache {
		t.Error("collectors of one configuration do not share their cache")
	}
	if d.cache == New(Config{Root: healthyFixture, MaxPackages: 7}, nil).cache {
		t.Error("collectors of different configurations share their cache")
	}
}

// rewrite replaces the content of path by content, in place (same inode)
// or by renaming a new file over it, and then sets its mtime back to
// mtime. It waits until the kernel's ctime shows the change (ctime ticks
// are coarse), so that a stale answer can only come from the cache.
func rewrite(t *testing.T, path, content string, inPlace bool, mtime time.Time) {
	t.Helper()
	stat := func() syscall.Stat_t {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	before := stat()
	for range 200 {
		var err error
		if inPlace {
			err = os.WriteFile(path, []byte(content), 0o644)
		} else {
			tmp := path + ".new"
			err = os.WriteFile(tmp, []byte(content), 0o644)
			if err == nil {
				err = os.Rename(tmp, path)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		after := stat()
		if after.Size != before.Size || after.Mtim != before.Mtim {
			t.Fatalf("rewrite changed size or mtime: %+v, was %+v", after, before)
		}
		if inPlace != (after.Ino == before.Ino) {
			t.Fatalf("inode %d, was %d; in place %v", after.Ino, before.Ino, inPlace)
		}
		if after.Ctim != before.Ctim {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("ctime never changed")
}

func TestCacheSeesRewrite(t *testing.T) {
	past := time.Date(2024, 1, 2, 3, 4, 5, 600, time.UTC)
	files := []struct {
		name   string
		path   string
		before string
		after  string
		typ    uint32
		want   func(v patnc.Value) string
	}{
		{
			name:   "os-release",
			path:   "etc/os-release",
			before: "ID=debian\nVERSION_ID=12\n",
			after:  "ID=debiam\nVERSION_ID=12\n",
			typ:    patnc.AttrProductInformation,
			want:   func(v patnc.Value) string { return v.(*patnc.ProductInformation).Name },
		},
		{
			name:   "dpkg status",
			path:   "var/lib/dpkg/status",
			before: "Package: bash\nStatus: install ok installed\nVersion: 5.2\n",
			after:  "Package: bash\nStatus: install ok installed\nVersion: 5.3\n",
			typ:    patnc.AttrInstalledPackages,
			want:   func(v patnc.Value) string { return (*v.(*patnc.InstalledPackages))[0].Version },
		},
	}
	for _, f := range files {
		for _, inPlace := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/in place %v", f.name, inPlace), func(t *testing.T) {
				tree := fixtureFiles()
				tree[f.path] = f.before
				root := writeTree(t, tree)
				path := filepath.Join(root, f.path)
				if err := os.Chtimes(path, past, past); err != nil {
					t.Fatal(err)
				}
				c := privateCollector(Config{Root: root, RPMDB: "/none"}, settledClock)
				loads := &c.cache.dpkg.loads
				if f.typ == patnc.AttrProductInformation {
					loads = &c.cache.osRelease.loads
				}
				value := func() string {
					v := attrOf(t, begin(t, c), f.typ)
					if v == nil {
						t.Fatalf("attribute %d not sent", f.typ)
					}
					return f.want(v)
				}
				first := value()
				if again := value(); again != first || loads.Load() != 1 {
					t.Fatalf("second Begin: %q after %d reads; want %q from the cache", again, loads.Load(), first)
				}
				rewrite(t, path, f.after, inPlace, past)
				if got := value(); got == first || loads.Load() != 2 {
					t.Fatalf("after the rewrite: %q after %d reads; want the new content, read again", got, loads.Load())
				}
				if again := value(); loads.Load() != 2 {
					t.Fatalf("rewritten file read %d times (%q), want it cached again", loads.Load(), again)
				}
			})
		}
	}
}

// TestCacheRacyTimestamp checks the racy-timestamp rule: a file changed
// within racyWindow of the collection is not cached, so a second rewrite
// in the same timestamp tick (same size, inode, mtime and ctime: what a
// coarse file system shows) is still seen.
func TestCacheRacyTimestamp(t *testing.T) {
	root := writeTree(t, fixtureFiles())
	path := filepath.Join(root, "etc/os-release")
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	c := privateCollector(Config{Root: root}, time.Now)
	for i := range 3 {
		begin(t, c)
		if n := c.cache.osRelease.loads.Load(); n != uint64(i+1) {
			t.Fatalf("after %d Begins os-release read %d times: a racy file was cached", i+1, n)
		}
	}
	// Same size, same mtime; ctime too if the tick has not passed.
	if err := os.WriteFile(path, []byte(strings.Replace(osReleaseFixture, "debian", "debiaN", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	if v := attrOf(t, begin(t, c), patnc.AttrProductInformation); v.(*patnc.ProductInformation).Name != "debiaN" {
		t.Fatalf("name %q after the rewrite", v.(*patnc.ProductInformation).Name)
	}
}

func TestFileIDSettled(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) int64 { return now.Add(d).UnixNano() }
	tests := []struct {
		name         string
		mtime, ctime time.Duration
		want         bool
	}{
		{"both old", -time.Hour, -time.Hour, true},
		{"exactly the window", -racyWindow, -racyWindow, true},
		{"mtime within the window", -racyWindow + time.Nanosecond, -time.Hour, false},
		{"ctime within the window (mtime set back)", -time.Hour, -time.Second, false},
		{"now", 0, 0, false},
		{"in the future", time.Hour, time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fileID{mtime: at(tc.mtime), ctime: at(tc.ctime)}
			if got := id.settled(now); got != tc.want {
				t.Errorf("settled = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEntry(t *testing.T) {
	var e entry[fileID, []patnc.Package]
	k1, k2 := fileID{ino: 1}, fileID{ino: 2}
	v := []patnc.Package{{Name: "a"}}
	if _, ok := e.get(k1); ok {
		t.Fatal("empty entry hit")
	}
	e.put(k1, v, true)
	if got, ok := e.get(k1); !ok || !reflect.DeepEqual(got, v) {
		t.Fatalf("get = %v, %v", got, ok)
	}
	if _, ok := e.get(k2); ok {
		t.Fatal("hit under another key")
	}
	e.put(k2, v, false)
	if _, ok := e.get(k1); ok {
		t.Fatal("an unsettled put kept the old value")
	}
	if _, ok := e.get(k2); ok {
		t.Fatal("an unsettled put was cached")
	}
	e.put(k1, v, true)
	e.forget()
	if _, ok := e.get(k1); ok {
		t.Fatal("forget kept the value")
	}
}

// TestCacheFileGone checks that a cached file that is deleted stops being
// reported, and that os-release then falls back as it did.
func TestCacheFileGone(t *testing.T) {
	tree := fixtureFiles()
	tree["usr/lib/os-release"] = "ID=fallback\nVERSION_ID=1\n"
	root := writeTree(t, tree)
	c := privateCollector(Config{Root: root, RPMDB: "/none"}, settledClock)
	attrs := begin(t, c)
	if attrOf(t, attrs, patnc.AttrInstalledPackages) == nil || attrOf(t, attrs, patnc.AttrProductInformation).(*patnc.ProductInformation).Name != "debian" {
		t.Fatalf("first Begin:\n%s", encodeAttrs(t, attrs))
	}
	for _, p := range []string{"etc/os-release", "var/lib/dpkg/status"} {
		if err := os.Remove(filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	attrs = begin(t, c)
	if v := attrOf(t, attrs, patnc.AttrInstalledPackages); v != nil {
		t.Errorf("deleted status file still reported: %v", v)
	}
	if n := attrOf(t, attrs, patnc.AttrProductInformation).(*patnc.ProductInformation).Name; n != "fallback" {
		t.Errorf("name %q, want the fallback's", n)
	}
	if err := os.Remove(filepath.Join(root, "usr/lib/os-release")); err != nil {
		t.Fatal(err)
	}
	attrs = begin(t, c)
	for _, typ := range []uint32{patnc.AttrProductInformation, patnc.AttrStringVersion, patnc.AttrNumericVersion} {
		if v := attrOf(t, attrs, typ); v != nil {
			t.Errorf("attribute %d still sent without os-release: %v", typ, v)
		}
	}
}

// TestCacheCapsStillApply checks that a cached file that grows past a cap
// is rejected exactly as an uncached one is, and that the rejection is not
// cached.
func TestCacheCapsStillApply(t *testing.T) {
	two := "Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: b\nStatus: install ok installed\nVersion: 1\n"
	three := two + "\nPackage: c\nStatus: install ok installed\nVersion: 1\n"
	tests := []struct {
		name  string
		path  string
		grow  func(t *testing.T, path string)
		typ   uint32
		check func(t *testing.T, c *Collector)
	}{
		{
			name: "os-release over 64 KiB",
			path: "etc/os-release",
			grow: func(t *testing.T, path string) {
				big := osReleaseFixture + "# " + strings.Repeat("x", maxOSReleaseSize) + "\n"
				if err := os.WriteFile(path, []byte(big), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			typ: patnc.AttrProductInformation,
		},
		{
			name: "dpkg status over 64 MiB",
			path: "var/lib/dpkg/status",
			grow: func(t *testing.T, path string) {
				// Sparse: the parser reads zeros past the real content.
				if err := os.Truncate(path, maxDpkgStatusSize+1); err != nil {
					t.Fatal(err)
				}
			},
			typ: patnc.AttrInstalledPackages,
		},
		{
			name: "dpkg status over MaxPackages",
			path: "var/lib/dpkg/status",
			grow: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte(three), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			typ: patnc.AttrInstalledPackages,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree := fixtureFiles()
			tree["var/lib/dpkg/status"] = two
			root := writeTree(t, tree)
			c := privateCollector(Config{Root: root, RPMDB: "/none", MaxPackages: 2}, settledClock)
			fresh := func() *Collector { return privateCollector(c.cfg, settledClock) }
			if attrOf(t, begin(t, c), tc.typ) == nil || attrOf(t, begin(t, c), tc.typ) == nil {
				t.Fatalf("attribute %d not sent before growing", tc.typ)
			}
			path := filepath.Join(root, tc.path)
			tc.grow(t, path)
			for i := range 2 {
				got := encodeAttrs(t, begin(t, c))
				if v := attrOf(t, begin(t, c), tc.typ); v != nil {
					t.Fatalf("Begin %d after growing sent %v", i+1, v)
				}
				if want := encodeAttrs(t, begin(t, fresh())); got != want {
					t.Fatalf("cached collector sent\n%s\nan uncached one\n%s", got, want)
				}
			}
		})
	}
}

// TestConcurrentBegin runs Begins and Attribute Requests on one collector
// from several goroutines (go test -race) and checks they all send the
// same as one collection alone.
func TestConcurrentBegin(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "begin-healthy.golden"))
	if err != nil {
		t.Fatal(err)
	}
	c := privateCollector(Config{Root: healthyFixture}, settledClock)
	all := request(t, beginIDs...)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	for g := range 8 {
		wg.Go(func() {
			for range 20 {
				s, _ := c.NewSession(context.Background())
				var (
					attrs []patnc.Attribute
					err   error
				)
				if g%2 == 0 {
					attrs, err = s.Begin(context.Background())
				} else {
					attrs, err = s.Receive(context.Background(), all)
				}
				got := ""
				if err == nil {
					got = encodeAttrs(t, attrs)
				}
				if err != nil || got != string(want) {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("goroutine %d: %v\n%s", g, err, got))
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d goroutines differ; first:\n%s", len(errs), errs[0])
	}
}

// fakeRPM installs an rpm executable first on PATH that counts its runs
// in the returned file and prints the "name<TAB>version" lines of list.
func fakeRPM(t *testing.T, list string) (runs string) {
	t.Helper()
	dir := t.TempDir()
	runs = filepath.Join(dir, "runs")
	script := fmt.Sprintf("#!/bin/sh\necho run >> '%s'\nexec /bin/cat '%s'\n", runs, list)
	if err := os.WriteFile(filepath.Join(dir, "rpm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	return runs
}

func countRuns(t *testing.T, runs string) int {
	t.Helper()
	b, err := os.ReadFile(runs)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("run\n"))
}

func TestRPMCache(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for the fake rpm:", err)
	}
	tree := fixtureFiles()
	tree["var/lib/dpkg/status"] = "Package: bash\nStatus: install ok installed\nVersion: 5.2\n"
	tree["var/lib/rpm/rpmdb.sqlite"] = "db-1"
	tree["var/lib/rpm/rpmdb.sqlite-shm"] = "shm"
	root := writeTree(t, tree)
	list := filepath.Join(t.TempDir(), "list")
	if err := os.WriteFile(list, []byte("bash\t9\nkernel\t6.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := fakeRPM(t, list)
	c := privateCollector(Config{Root: root}, settledClock)
	db := func(name string) string { return filepath.Join(root, "var/lib/rpm", name) }
	packages := func() []patnc.Package {
		v := attrOf(t, begin(t, c), patnc.AttrInstalledPackages)
		if v == nil {
			t.Fatal("no installed packages")
		}
		return *v.(*patnc.InstalledPackages)
	}
	step := func(name string, wantRuns int, want ...patnc.Package) {
		t.Helper()
		if got := packages(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: packages %v, want %v", name, got, want)
		}
		if n := countRuns(t, runs); n != wantRuns {
			t.Errorf("%s: rpm ran %d times, want %d", name, n, wantRuns)
		}
		// The cached dpkg list is never extended in place.
		if d, ok := c.cache.dpkg.get(c.cache.dpkg.key); ok && !reflect.DeepEqual(d, []patnc.Package{{Name: "bash", Version: "5.2"}}) {
			t.Errorf("%s: cached dpkg list is %v", name, d)
		}
	}
	bash, kernel := patnc.Package{Name: "bash", Version: "5.2"}, patnc.Package{Name: "kernel", Version: "6.1"}
	step("first", 1, bash, kernel)
	step("cached", 1, bash, kernel)
	// Sessions merging the shared lists at once (go test -race).
	var wg sync.WaitGroup
	ask := request(t, ietfID(patnc.AttrInstalledPackages))
	for range 4 {
		wg.Go(func() {
			for range 5 {
				s, _ := c.NewSession(context.Background())
				attrs, err := s.Receive(context.Background(), ask)
				if err != nil || len(attrs) != 1 {
					t.Errorf("concurrent: %v, %v", attrs, err)
					return
				}
				var got patnc.InstalledPackages
				if err := got.UnmarshalBinary(attrs[0].Value); err != nil || !reflect.DeepEqual(got, patnc.InstalledPackages{bash, kernel}) {
					t.Errorf("concurrent: packages %v, %v", got, err)
				}
			}
		})
	}
	wg.Wait()
	step("after concurrent Begins", 1, bash, kernel)

	if err := os.WriteFile(db("rpmdb.sqlite-shm"), []byte("SHM"), 0o644); err != nil {
		t.Fatal(err)
	}
	step("shared-memory index written", 1, bash, kernel)

	if err := os.WriteFile(list, []byte("bash\t9\nkernel\t6.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db("rpmdb.sqlite-wal"), []byte("wal"), 0o644); err != nil {
		t.Fatal(err)
	}
	kernel.Version = "6.2"
	step("write-ahead log appeared", 2, bash, kernel)

	if err := os.WriteFile(list, []byte("bash\t9\nkernel\t6.3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, _ := statID(db("rpmdb.sqlite"))
	rewrite(t, db("rpmdb.sqlite"), "db-2", true, time.Unix(0, id.mtime))
	kernel.Version = "6.3"
	step("database rewritten in place", 3, bash, kernel)
	step("cached again", 3, bash, kernel)

	if err := os.RemoveAll(filepath.Join(root, "var/lib/rpm")); err != nil {
		t.Fatal(err)
	}
	step("database removed", 3, bash)

	if err := os.MkdirAll(filepath.Join(root, "var/lib/rpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	step("empty database directory", 4, bash, kernel)
	t.Setenv("PATH", t.TempDir())
	step("rpm binary gone", 4, bash)
}

func TestSysFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := openFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open missing: %v, want fs.ErrNotExist", err)
	}
	if _, err := readSmall(dir, make([]byte, 8)); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("read a directory: %v, want EISDIR", err)
	}
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		buf  int
		want string
	}{
		{4, "0123"},
		{10, "0123456789"},
		{11, "0123456789"},
		{100, "0123456789"},
	}
	for _, tc := range tests {
		buf := make([]byte, tc.buf)
		n, err := readSmall(p, buf)
		if err != nil || string(buf[:n]) != tc.want {
			t.Errorf("readSmall into %d: %q, %v; want %q", tc.buf, buf[:n], err, tc.want)
		}
	}
	f, err := openFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// TestRealMachineCached compares a warm collector on this machine with an
// uncached one, for the attributes the cache feeds.
func TestRealMachineCached(t *testing.T) {
	if _, err := os.Stat(DefaultDpkgStatus); err != nil {
		t.Skip("not a dpkg-based machine:", err)
	}
	warm := privateCollector(Config{}, time.Now)
	begin(t, warm)
	got := begin(t, warm)
	want := begin(t, privateCollector(Config{}, time.Now))
	for _, typ := range []uint32{patnc.AttrProductInformation, patnc.AttrStringVersion, patnc.AttrNumericVersion, patnc.AttrInstalledPackages} {
		i := slices.IndexFunc(got, func(a patnc.Attribute) bool { return a.Type == typ })
		j := slices.IndexFunc(want, func(a patnc.Attribute) bool { return a.Type == typ })
		if i < 0 || j < 0 || !bytes.Equal(got[i].Value, want[j].Value) {
			t.Errorf("attribute %d differs between a warm and an uncached collector", typ)
		}
	}
}
