package osimc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"trustnac/imc"
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// Default paths, relative to Config.Root.
const (
	DefaultOSRelease         = "/etc/os-release"
	DefaultOSReleaseFallback = "/usr/lib/os-release"
	DefaultDpkgStatus        = "/var/lib/dpkg/status"
	DefaultRPMDB             = "/var/lib/rpm"
	DefaultProcNet           = "/proc/net"
	DefaultProcStat          = "/proc/stat"
	DefaultMaxPackages       = 20000
)

// maxSysctlSize caps a sysctl file read for Forwarding Enabled; a longer
// one counts as unreadable.
const maxSysctlSize = 64

// DefaultForwardingPaths are the sysctl files read for Forwarding Enabled.
var DefaultForwardingPaths = []string{
	"/proc/sys/net/ipv4/ip_forward",
	"/proc/sys/net/ipv6/conf/all/forwarding",
}

// Config says where the collector reads the machine's state. Every path is
// taken relative to Root; zero values mean the defaults above.
type Config struct {
	// Root prefixes every path below; "" means "/". Tests use a temp dir.
	Root string
	// OSRelease is the os-release(5) file; by default /etc/os-release,
	// falling back to /usr/lib/os-release.
	OSRelease string
	// DpkgStatus is dpkg's status database.
	DpkgStatus string
	// RPMDB is the RPM database directory, read by running `rpm -qa` only
	// when both the rpm binary and the directory exist.
	RPMDB string
	// ProcNet holds the tcp, tcp6, udp and udp6 socket tables.
	ProcNet string
	// ProcStat is /proc/stat, whose btime line gives the boot time that
	// Operational Status reports as the last use.
	ProcStat string
	// ForwardingPaths are sysctl files holding 0 or 1; forwarding is
	// enabled if any of them reads 1.
	ForwardingPaths []string
	// IncludeLoopback reports sockets bound only to a loopback address in
	// Port Filter too. By default they are left out: the network cannot
	// reach them.
	IncludeLoopback bool
	// MaxPackages caps the installed packages reported (at most 65535, the
	// wire limit). A machine with more sends no Installed Packages rather
	// than a truncated list.
	MaxPackages int
}

// Collector is the Operating System IMC (PA subtype IETF 1, RFC 5792 §3.5).
// It implements imc.Collector. Its sessions may run concurrently.
//
// What changes only by being rewritten (os-release, the dpkg status file,
// the RPM database) is parsed once and kept, with what stat(2) said of the
// file; each collection stats the file again and reads it anew if anything
// differs or if the file changed too recently for its timestamps to be
// trusted (see racyWindow). Collectors built by New with the same
// configuration share what they keep. /proc is read on every collection.
type Collector struct {
	cfg Config
	log *slog.Logger
	// uname returns the kernel release and machine; tests replace it.
	uname func() (release, machine string, err error)
	// files are the configured paths joined under the root, once.
	files files
	// cache holds the parsed os-release, dpkg status and rpm listing,
	// shared with other collectors of the same configuration.
	cache *caches
	// now is the clock the racy-timestamp rule compares file times with;
	// tests replace it.
	now func() time.Time
}

var _ imc.Collector = (*Collector)(nil)

// New returns an Operating System collector reading the machine as cfg
// says. A nil log discards.
func New(cfg Config, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.DpkgStatus == "" {
		cfg.DpkgStatus = DefaultDpkgStatus
	}
	if cfg.RPMDB == "" {
		cfg.RPMDB = DefaultRPMDB
	}
	if cfg.ProcNet == "" {
		cfg.ProcNet = DefaultProcNet
	}
	if cfg.ProcStat == "" {
		cfg.ProcStat = DefaultProcStat
	}
	if cfg.ForwardingPaths == nil {
		cfg.ForwardingPaths = slices.Clone(DefaultForwardingPaths)
	}
	if cfg.MaxPackages <= 0 {
		cfg.MaxPackages = DefaultMaxPackages
	}
	cfg.MaxPackages = min(cfg.MaxPackages, maxPackagesWire)
	return &Collector{
		cfg:   cfg,
		log:   log.With("imc", "os"),
		uname: uname,
		files: filesOf(cfg),
		cache: cachesFor(cacheScope{
			root:        cfg.Root,
			osRelease:   cfg.OSRelease,
			dpkgStatus:  cfg.DpkgStatus,
			rpmDB:       cfg.RPMDB,
			maxPackages: cfg.MaxPackages,
		}),
		now: time.Now,
	}
}

// Name returns "os".
func (c *Collector) Name() string { return "os" }

// Subtype returns the IETF Operating System PA subtype.
func (c *Collector) Subtype() pbtnc.PASubtype { return pbtnc.SubtypeOS }

// NewSession starts the collector's part of one handshake.
func (c *Collector) NewSession(ctx context.Context) (imc.Session, error) {
	return &session{c: c}, nil
}

// beginAttributes are sent unasked, in this order, at the start of a
// handshake. Factory Default Password Enabled is not among them: the
// collector cannot tell, and "unknown" is expressed by not sending it.
var beginAttributes = []uint32{
	patnc.AttrProductInformation,
	patnc.AttrStringVersion,
	patnc.AttrNumericVersion,
	patnc.AttrOperationalStatus,
	patnc.AttrInstalledPackages,
	patnc.AttrForwardingEnabled,
	patnc.AttrPortFilter,
}

type session struct {
	c *Collector
}

// Begin collects the machine's state and returns every attribute it can
// produce (IF-IMC BeginHandshake). What cannot be read is left out and
// logged; the verifier may ask for it again.
func (s *session) Begin(ctx context.Context) ([]patnc.Attribute, error) {
	return s.c.attributes(ctx, beginIDs)
}

// beginIDs are beginAttributes as IETF attribute IDs; read only.
var beginIDs = func() []patnc.AttrID {
	ids := make([]patnc.AttrID, len(beginAttributes))
	for i, t := range beginAttributes {
		ids[i] = patnc.AttrID{Vendor: patnc.VendorIETF, Type: t}
	}
	return ids
}()

// Receive answers an Attribute Request (RFC 5792 §4.2.1) with exactly the
// requested attributes it can produce, collected afresh. An unsupported
// attribute with NOSKIP set, or one that does not parse, makes the whole
// message ignored and is answered with a PA-TNC Error (RFC 5792 §4.2,
// §4.2.8). Other attributes from the verifier are ignored.
func (s *session) Receive(ctx context.Context, msg *patnc.Message) ([]patnc.Attribute, error) {
	values, rejected := msg.DecodeAll()
	if len(rejected) > 0 {
		for _, r := range rejected {
			s.c.log.Warn("rejecting PA-TNC message from verifier", "attr", r.Attr.ID().String(), "err", r.Err)
		}
		return patnc.Answers(rejected)
	}
	var requested []patnc.AttrID
	for _, v := range values {
		switch v := v.(type) {
		case *patnc.AttributeRequest:
			requested = append(requested, (*v)...)
		case *patnc.PAError:
			s.c.log.Warn("verifier reported a PA-TNC error", "vendor", v.Vendor, "code", v.Code)
		}
	}
	if len(requested) == 0 {
		return nil, nil
	}
	return s.c.attributes(ctx, requested)
}

// snapshot caches what several attributes share within one collection.
type snapshot struct {
	osr     *osRelease
	osrErr  error
	release string
	machine string
	unameD  bool
}

// attributes produces the requested attributes in the order asked, each at
// most once, leaving out those the collector does not produce or cannot
// read now.
func (c *Collector) attributes(ctx context.Context, ids []patnc.AttrID) ([]patnc.Attribute, error) {
	var (
		snap snapshot
		out  = make([]patnc.Attribute, 0, len(ids))
		done = make(map[patnc.AttrID]bool, len(ids))
	)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("osimc: %w", err)
		}
		if done[id] {
			continue
		}
		done[id] = true
		if id.Vendor != patnc.VendorIETF {
			continue
		}
		v, err := c.produce(ctx, id.Type, &snap)
		if err != nil {
			c.log.Warn("cannot collect attribute", "attr", id.String(), "err", err)
			continue
		}
		if v == nil {
			continue
		}
		a, err := patnc.EncodeAttribute(v, false)
		if err != nil {
			c.log.Warn("cannot encode attribute", "attr", id.String(), "err", err)
			continue
		}
		out = append(out, a)
	}
	c.log.Debug("collected", "asked", len(ids), "sent", len(out))
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// produce collects one IETF attribute; nil, nil means the collector does
// not produce that type.
func (c *Collector) produce(ctx context.Context, typ uint32, snap *snapshot) (patnc.Value, error) {
	switch typ {
	case patnc.AttrProductInformation:
		osr, err := c.osRelease(snap)
		if err != nil {
			return nil, err
		}
		// RFC 5792 §4.2.2: vendor 0 and product 0 when no SMI number or
		// product ID applies; the name is the os-release ID.
		return &patnc.ProductInformation{Name: fit255(osr.ID)}, nil
	case patnc.AttrStringVersion:
		osr, err := c.osRelease(snap)
		if err != nil {
			return nil, err
		}
		release, machine := c.unameInfo(snap)
		return &patnc.StringVersion{Version: fit255(osr.VersionID), Build: fit255(release), Config: fit255(machine)}, nil
	case patnc.AttrNumericVersion:
		osr, err := c.osRelease(snap)
		if err != nil {
			return nil, err
		}
		major, minor, ok := numericVersion(osr.VersionID)
		if !ok {
			return nil, fmt.Errorf("osimc: VERSION_ID %q is not numeric", osr.VersionID)
		}
		return &patnc.NumericVersion{Major: major, Minor: minor}, nil
	case patnc.AttrOperationalStatus:
		return &patnc.OperationalStatus{
			Status:  patnc.StatusOperational,
			Result:  patnc.ResultSuccess,
			LastUse: c.bootTime(),
		}, nil
	case patnc.AttrInstalledPackages:
		pkgs, err := c.installedPackages(ctx)
		if err != nil {
			return nil, err
		}
		v := patnc.InstalledPackages(pkgs)
		return &v, nil
	case patnc.AttrForwardingEnabled:
		v := c.forwarding()
		return &v, nil
	case patnc.AttrPortFilter:
		pf, err := c.portFilter()
		if err != nil {
			return nil, err
		}
		return &pf, nil
	}
	return nil, nil
}

// files are the paths the collector reads, joined under Config.Root.
type files struct {
	osRelease  []string // candidates in search order
	dpkgStatus string
	rpmDB      string
	procStat   string
	forwarding []string
	procNet    []string // parallel to procNetTables
}

// filesOf joins cfg's paths (defaults already applied) under its root.
func filesOf(cfg Config) files {
	under := func(p string) string {
		if cfg.Root == "" {
			return p
		}
		return filepath.Join(cfg.Root, p)
	}
	f := files{
		dpkgStatus: under(cfg.DpkgStatus),
		rpmDB:      under(cfg.RPMDB),
		procStat:   under(cfg.ProcStat),
	}
	if cfg.OSRelease != "" {
		f.osRelease = []string{under(cfg.OSRelease)}
	} else {
		f.osRelease = []string{under(DefaultOSRelease), under(DefaultOSReleaseFallback)}
	}
	for _, p := range cfg.ForwardingPaths {
		f.forwarding = append(f.forwarding, under(p))
	}
	for _, t := range procNetTables {
		f.procNet = append(f.procNet, under(filepath.Join(cfg.ProcNet, t.file)))
	}
	return f
}

// readCapped reads at most limit bytes of the file at path; a longer file
// is an error.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s (%d bytes)", errTooLarge, path, limit)
	}
	return b, nil
}

// osRelease reads os-release, once per collection (snap) and, while the
// file is unchanged, once per collector (c.cache).
func (c *Collector) osRelease(snap *snapshot) (osRelease, error) {
	if snap.osr != nil || snap.osrErr != nil {
		if snap.osrErr != nil {
			return osRelease{}, snap.osrErr
		}
		return *snap.osr, nil
	}
	e := &c.cache.osRelease
	var err error
	for i, p := range c.files.osRelease {
		key := osReleaseKey{index: i}
		var serr error
		key.id, serr = statID(p)
		if serr == nil {
			if r, ok := e.get(key); ok {
				snap.osr = &r
				return r, nil
			}
		} else if errors.Is(serr, fs.ErrNotExist) {
			err = serr // open would fail the same way
			continue
		}
		e.loads.Add(1)
		var b []byte
		b, err = readCapped(p, maxOSReleaseSize)
		if err == nil {
			r := parseOSRelease(b)
			if serr == nil {
				e.put(key, r, key.id.settled(c.now()))
			}
			snap.osr = &r
			return r, nil
		}
	}
	e.forget()
	snap.osrErr = fmt.Errorf("osimc: os-release: %w", err)
	return osRelease{}, snap.osrErr
}

// unameInfo returns the kernel release and machine, "" when unknown.
func (c *Collector) unameInfo(snap *snapshot) (release, machine string) {
	if !snap.unameD {
		snap.unameD = true
		r, m, err := c.uname()
		if err != nil {
			c.log.Warn("uname failed", "err", err)
		} else {
			snap.release, snap.machine = r, m
		}
	}
	return snap.release, snap.machine
}

// uname reads the kernel release and machine with uname(2).
func uname() (release, machine string, err error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", "", fmt.Errorf("osimc: uname: %w", err)
	}
	return utsString(u.Release[:]), utsString(u.Machine[:]), nil
}

// utsString converts a NUL-terminated utsname field (int8 or uint8,
// depending on the architecture) to a string.
func utsString[T int8 | uint8](f []T) string {
	b := make([]byte, 0, len(f))
	for _, c := range f {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// bootTime returns the boot time from the btime line of /proc/stat, or the
// zero time when it cannot be read.
func (c *Collector) bootTime() time.Time {
	f, err := openFile(c.files.procStat)
	if err != nil {
		c.log.Debug("no boot time", "err", err)
		return time.Time{}
	}
	defer f.Close()
	lr := newLineReader(f, maxProcNetSize)
	defer lr.release()
	for {
		line, ok := lr.next()
		if !ok {
			return time.Time{}
		}
		rest, found := bytes.CutPrefix(line, []byte("btime "))
		if !found {
			continue
		}
		sec, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
		if err != nil || sec <= 0 || sec > 1<<40 {
			return time.Time{}
		}
		return time.Unix(sec, 0).UTC()
	}
}

// installedPackages lists the dpkg packages, then the RPM ones not already
// listed. No package database at all is an error: an empty list would
// claim that nothing is installed.
//
// The returned slice may be shared with the cache: it must not be modified.
func (c *Collector) installedPackages(ctx context.Context) ([]patnc.Package, error) {
	pkgs, found, err := c.dpkgPackages()
	if err != nil {
		return nil, err
	}
	rpms, ok, err := c.rpmPackages(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		found = true
		// The dpkg list is the cache's: extend a copy.
		pkgs = slices.Clip(pkgs)
		seen := make(map[string]struct{}, len(pkgs))
		for _, p := range pkgs {
			seen[p.Name] = struct{}{}
		}
		for _, p := range rpms {
			if _, dup := seen[p.Name]; dup {
				continue
			}
			if len(pkgs) >= c.cfg.MaxPackages {
				return nil, fmt.Errorf("%w (%d)", errTooManyPackages, c.cfg.MaxPackages)
			}
			pkgs = append(pkgs, p)
		}
	}
	if !found {
		return nil, errors.New("osimc: no package database (dpkg or rpm) found")
	}
	return pkgs, nil
}

// dpkgPackages returns the packages of the dpkg status file, cached while
// the file is unchanged; found is false if there is no status file. The
// returned slice is shared with the cache and must not be modified.
func (c *Collector) dpkgPackages() (pkgs []patnc.Package, found bool, err error) {
	e := &c.cache.dpkg
	path := c.files.dpkgStatus
	id, serr := statID(path)
	switch {
	case serr == nil:
		if pkgs, ok := e.get(id); ok {
			return pkgs, true, nil
		}
	case errors.Is(serr, fs.ErrNotExist):
		e.forget()
		return nil, false, nil // open would fail the same way
	}
	e.loads.Add(1)
	f, err := openFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		e.forget()
		return nil, false, nil
	case err != nil:
		e.forget()
		return nil, false, fmt.Errorf("osimc: dpkg status: %w", err)
	}
	pkgs, err = parseDpkgStatus(f, c.cfg.MaxPackages)
	f.Close()
	if err != nil {
		e.forget()
		return nil, false, err
	}
	if serr == nil {
		e.put(id, slices.Clip(pkgs), id.settled(c.now()))
	}
	return pkgs, true, nil
}

// forwarding reads the configured sysctl files: enabled if any says 1,
// disabled if at least one was read and none says 1, unknown otherwise.
func (c *Collector) forwarding() patnc.ForwardingEnabled {
	read := false
	for _, p := range c.files.forwarding {
		// At most 64 bytes: one more tells a longer file.
		var buf [maxSysctlSize + 1]byte
		n, err := readSmall(p, buf[:])
		if err != nil || n > maxSysctlSize {
			continue
		}
		switch string(bytes.TrimSpace(buf[:n])) {
		case "1":
			return patnc.ForwardingEnabled(patnc.ForwardingIsEnabled)
		case "0":
			read = true
		}
	}
	if read {
		return patnc.ForwardingEnabled(patnc.ForwardingDisabled)
	}
	return patnc.ForwardingEnabled(patnc.ForwardingUnknown)
}

// procNetTables are the socket tables read for Port Filter.
var procNetTables = []struct {
	file  string
	proto uint8
}{
	{"tcp", protoTCP},
	{"tcp6", protoTCP},
	{"udp", protoUDP},
	{"udp6", protoUDP},
}

// portFilter lists the listening TCP and bound UDP ports, deduplicated by
// protocol and port, sorted, all reported as not blocked (RFC 5792
// §4.2.6). A missing table (no IPv6) is skipped; none readable is an error.
func (c *Collector) portFilter() (patnc.PortFilter, error) {
	type key struct {
		proto uint8
		port  uint16
	}
	seen := make(map[key]struct{})
	read := 0
	var lastErr error
	for i, t := range procNetTables {
		f, err := openFile(c.files.procNet[i])
		if err != nil {
			lastErr = err
			continue
		}
		socks, err := parseProcNet(f, t.proto, c.cfg.IncludeLoopback)
		f.Close()
		if err != nil {
			return nil, err
		}
		read++
		for _, s := range socks {
			seen[key{s.Proto, s.Port}] = struct{}{}
		}
	}
	if read == 0 {
		return nil, fmt.Errorf("osimc: no socket table readable: %w", lastErr)
	}
	pf := make(patnc.PortFilter, 0, len(seen))
	for k := range seen {
		pf = append(pf, patnc.PortFilterEntry{Protocol: k.proto, Port: k.port})
	}
	slices.SortFunc(pf, func(a, b patnc.PortFilterEntry) int {
		if a.Protocol != b.Protocol {
			return int(a.Protocol) - int(b.Protocol)
		}
		return int(a.Port) - int(b.Port)
	})
	return pf, nil
}
