package osimc

import (
	"encoding/binary"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"trustnac/transport/patnc"
)

// racyWindow is how long after its last change a file must have stood still
// before what was read from it is cached. Timestamps advance in ticks (a
// jiffy on ext4, a second on some network file systems, two on FAT): a file
// rewritten twice within one tick, with the same size and inode, shows the
// same stat(2) both times. A file whose mtime or ctime is within racyWindow
// of the time of the stat may still be in that tick, so it is read again
// next time (the rule git applies to its index, "racy timestamps").
const racyWindow = 2 * time.Second

// maxRPMDBEntries caps the directory entries that key the RPM cache; a
// database directory with more is not cached (rpm runs every time).
const maxRPMDBEntries = 1024

// fileID is what stat(2) says of a file's identity and last change: a file
// rewritten in place changes its ctime (which no system call sets back)
// and usually its mtime and size; one replaced by rename changes its inode.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds since the Unix epoch
}

// statID stats path, following symbolic links as open(2) does.
func statID(path string) (fileID, error) {
	var st unix.Stat_t
	for {
		err := unix.Stat(path, &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fileID{}, &fs.PathError{Op: "stat", Path: path, Err: err}
		}
		break
	}
	return fileID{
		// Dev and Ino are narrower on some architectures.
		dev:   uint64(st.Dev),
		ino:   uint64(st.Ino),
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
	}, nil
}

// settled reports whether the file's mtime and ctime are both at least
// racyWindow before now, so that any later change shows in a later stat.
// Timestamps in the future (a clock set back) are never settled.
func (id fileID) settled(now time.Time) bool {
	return now.UnixNano()-max(id.mtime, id.ctime) >= int64(racyWindow)
}

// appendBinary appends id in a fixed layout, for keys made of several
// files.
func (id fileID) appendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, id.dev)
	b = binary.BigEndian.AppendUint64(b, id.ino)
	b = binary.BigEndian.AppendUint64(b, uint64(id.size))
	b = binary.BigEndian.AppendUint64(b, uint64(id.mtime))
	return binary.BigEndian.AppendUint64(b, uint64(id.ctime))
}

// entry caches the parsed content of one file, keyed by what stat said of
// it before it was read. It holds one value at most. Values handed out are
// shared between sessions and must not be modified.
type entry[K comparable, V any] struct {
	mu  sync.Mutex
	key K
	val V
	ok  bool
	// loads counts the reads and parses done for this entry (the misses);
	// tests use it to tell a cached answer from a fresh one.
	loads atomic.Uint64
}

// get returns the cached value if it was read under key.
func (e *entry[K, V]) get(key K) (V, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ok && e.key == key {
		return e.val, true
	}
	var zero V
	return zero, false
}

// put caches val as read under key if the file had settled; otherwise it
// drops whatever was cached, since the file has changed since.
func (e *entry[K, V]) put(key K, val V, settled bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !settled {
		e.drop()
		return
	}
	e.key, e.val, e.ok = key, val, true
}

// forget drops the cached value: the file is gone or no longer parses.
func (e *entry[K, V]) forget() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drop()
}

func (e *entry[K, V]) drop() {
	var (
		zk K
		zv V
	)
	e.key, e.val, e.ok = zk, zv, false
}

// osReleaseKey names the os-release candidate (by its index in the search
// order) and its stat.
type osReleaseKey struct {
	index int
	id    fileID
}

// caches holds what the collector caches across collections: the files
// that change only by being rewritten. /proc is never cached.
type caches struct {
	osRelease entry[osReleaseKey, osRelease]
	// dpkg holds the packages of the status file, in file order.
	dpkg entry[fileID, []patnc.Package]
	// rpm holds the packages `rpm -qa` listed, keyed by rpmDBKey.
	rpm entry[string, []patnc.Package]
}

// cacheScope is what the cached values depend on besides the files
// themselves: collectors built with the same scope share one caches.
type cacheScope struct {
	root, osRelease, dpkgStatus, rpmDB string
	maxPackages                        int
}

// maxSharedCaches bounds the scopes remembered for sharing; an agent has
// one.
const maxSharedCaches = 8

// sharedCaches lets collectors built anew for every assessment (the agent
// builds its collectors per conversation) keep what earlier ones read.
var sharedCaches struct {
	mu sync.Mutex
	m  map[cacheScope]*caches
}

// cachesFor returns the caches shared by collectors of scope s. When
// maxSharedCaches scopes are remembered, one is forgotten (collectors
// holding it keep using it).
func cachesFor(s cacheScope) *caches {
	sharedCaches.mu.Lock()
	defer sharedCaches.mu.Unlock()
	if c, ok := sharedCaches.m[s]; ok {
		return c
	}
	if sharedCaches.m == nil {
		sharedCaches.m = make(map[cacheScope]*caches)
	}
	if len(sharedCaches.m) >= maxSharedCaches {
		for k := range sharedCaches.m {
			delete(sharedCaches.m, k)
			break
		}
	}
	c := new(caches)
	sharedCaches.m[s] = c
	return c
}

// rpmDBKey describes the RPM database directory dir and the rpm binary bin
// for the rpm cache: the stat of the binary, of the directory (whose mtime
// changes when files are created, removed or renamed in it: a new
// database, a write-ahead log appearing or going) and of every entry in it
// (Packages, Index.db, rpmdb.sqlite, rpmdb.sqlite-wal, the __db.* region
// files: whatever backend the installed rpm uses). A SQLite "-shm" file is
// left out: it is the write-ahead log's index, shared memory that readers
// (our own `rpm -qa`) write too, and holds no content that the database and
// its log do not. settled is false if any of them changed within
// racyWindow; ok is false when the key cannot be made, and then rpm must
// run.
func rpmDBKey(dir, bin string, now func() time.Time) (key string, settled, ok bool) {
	binID, err := statID(bin)
	if err != nil {
		return "", false, false
	}
	dirID, err := statID(dir)
	if err != nil {
		return "", false, false
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) > maxRPMDBEntries {
		return "", false, false
	}
	ids := []fileID{binID, dirID}
	b := make([]byte, 0, 64*(len(ents)+2)+len(bin))
	b = append(b, bin...)
	b = append(b, 0)
	b = binID.appendBinary(b)
	b = dirID.appendBinary(b)
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, "-shm") {
			continue
		}
		id, err := statID(dir + "/" + name)
		if err != nil {
			return "", false, false
		}
		ids = append(ids, id)
		b = append(b, name...)
		b = append(b, 0)
		b = id.appendBinary(b)
	}
	t := now()
	settled = true
	for _, id := range ids {
		settled = settled && id.settled(t)
	}
	return string(b), settled, true
}
