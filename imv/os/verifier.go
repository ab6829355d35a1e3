package osimv

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"trustnac/imv"
	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// DefaultMaxPackages caps the installed packages one session keeps.
const DefaultMaxPackages = 20000

// DefaultRequired are the attributes an endpoint must send when
// Config.Required is nil: Product Information, String Version, Installed
// Packages, Forwarding Enabled and Port Filter (RFC 5792 §4.2).
var DefaultRequired = []patnc.AttrID{
	{Vendor: patnc.VendorIETF, Type: patnc.AttrProductInformation},
	{Vendor: patnc.VendorIETF, Type: patnc.AttrStringVersion},
	{Vendor: patnc.VendorIETF, Type: patnc.AttrInstalledPackages},
	{Vendor: patnc.VendorIETF, Type: patnc.AttrForwardingEnabled},
	{Vendor: patnc.VendorIETF, Type: patnc.AttrPortFilter},
}

// Config sets what the verifier requires.
type Config struct {
	// Required lists the attributes the endpoint must send for an Allow
	// recommendation; nil means DefaultRequired, an empty non-nil slice
	// requires nothing. An attribute this verifier does not understand can
	// never arrive, so requiring one isolates every endpoint.
	Required []patnc.AttrID
	// MaxPackages caps the installed packages kept per session (default
	// DefaultMaxPackages); an endpoint reporting more gets no package facts
	// and Installed Packages counts as missing.
	MaxPackages int
}

// Verifier is the Operating System IMV (PA subtype IETF 1). It implements
// imv.Verifier.
type Verifier struct {
	required    []patnc.AttrID
	maxPackages int
	log         *slog.Logger
}

var _ imv.Verifier = (*Verifier)(nil)

// New returns an Operating System verifier. A nil log discards.
func New(cfg Config, log *slog.Logger) *Verifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("imv", "os")
	req := cfg.Required
	if req == nil {
		req = DefaultRequired
	}
	var required []patnc.AttrID
	for _, id := range req {
		if slices.Contains(required, id) {
			continue
		}
		if !understood(id) {
			log.Warn("required attribute is not one this verifier understands; every endpoint will be isolated", "attr", id.String())
		}
		required = append(required, id)
	}
	if cfg.MaxPackages <= 0 {
		cfg.MaxPackages = DefaultMaxPackages
	}
	return &Verifier{required: required, maxPackages: cfg.MaxPackages, log: log}
}

// understood reports whether the verifier turns attribute id into facts.
func understood(id patnc.AttrID) bool {
	if id.Vendor != patnc.VendorIETF {
		return false
	}
	switch id.Type {
	case patnc.AttrProductInformation, patnc.AttrNumericVersion, patnc.AttrStringVersion,
		patnc.AttrOperationalStatus, patnc.AttrPortFilter, patnc.AttrInstalledPackages,
		patnc.AttrForwardingEnabled, patnc.AttrFactoryDefaultPasswordEnabled:
		return true
	}
	return false
}

// Name returns "os", the policy namespace of its facts.
func (v *Verifier) Name() string { return "os" }

// Subtype returns the IETF Operating System PA subtype.
func (v *Verifier) Subtype() pbtnc.PASubtype { return pbtnc.SubtypeOS }

// NewSession starts assessing one endpoint.
func (v *Verifier) NewSession(ctx context.Context, ep imv.Endpoint) (imv.Session, error) {
	return &session{
		v:     v,
		log:   v.log.With("endpoint", ep.ID),
		got:   make(map[patnc.AttrID]bool),
		asked: make(map[patnc.AttrID]bool),
		facts: make(map[string]any),
	}, nil
}

// session is the verifier's state for one endpoint in one handshake.
type session struct {
	v   *Verifier
	log *slog.Logger

	mu       sync.Mutex
	received bool                  // a message arrived
	got      map[patnc.AttrID]bool // arrived and parsed
	asked    map[patnc.AttrID]bool // listed in an Attribute Request
	facts    map[string]any        // scalar and list facts
	packages map[string]any        // name → version
	tooMany  bool                  // more packages than the cap
	reasons  []string
}

// Receive applies one PA-TNC message from the collector. An unsupported
// attribute with NOSKIP set is answered with Attribute Type Not Supported,
// one that does not parse with Invalid Parameter (RFC 5792 §4.2, §4.2.8);
// either way nothing of that message is applied. Unknown attributes
// without NOSKIP are ignored; a PA-TNC Error from the collector becomes a
// reason.
func (s *session) Receive(ctx context.Context, msg *patnc.Message) ([]patnc.Attribute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = true

	values, rejected := msg.DecodeAll()
	if len(rejected) > 0 {
		for _, r := range rejected {
			if r.Unsupported {
				s.note("the endpoint sent an unsupported mandatory attribute " + attrName(r.Attr.ID()))
			} else {
				s.note("the endpoint sent a malformed " + attrName(r.Attr.ID()) + " attribute")
			}
			s.log.Warn("rejecting PA-TNC message", "attr", r.Attr.ID().String(), "err", r.Err)
		}
		return patnc.Answers(rejected)
	}
	for _, val := range values {
		s.apply(val)
	}
	return nil, nil
}

// apply records one decoded attribute value as facts.
func (s *session) apply(val patnc.Value) {
	id := val.AttrID()
	switch v := val.(type) {
	case *patnc.ProductInformation:
		s.facts["name"] = clean(v.Name)
	case *patnc.StringVersion:
		s.facts["version"] = clean(v.Version)
		s.facts["build"] = clean(v.Build)
		s.facts["config"] = clean(v.Config)
	case *patnc.NumericVersion:
		s.facts["version_major"] = int64(v.Major)
		s.facts["version_minor"] = int64(v.Minor)
	case *patnc.OperationalStatus:
		s.facts["status"] = statusName(v.Status)
		lastUse := ""
		if !v.LastUse.IsZero() {
			lastUse = v.LastUse.UTC().Format(time.RFC3339)
		}
		s.facts["last_use"] = lastUse
	case *patnc.InstalledPackages:
		if !s.addPackages(*v) {
			return
		}
	case *patnc.ForwardingEnabled:
		s.facts["forwarding"] = forwardingName(uint32(*v))
	case *patnc.FactoryDefaultPasswordEnabled:
		s.facts["default_password"] = *v != 0
	case *patnc.PortFilter:
		ports := make([]any, 0, len(*v))
		var listening []any
		for _, e := range *v {
			proto := protocolName(e.Protocol)
			ports = append(ports, map[string]any{"protocol": proto, "port": int64(e.Port), "blocked": e.Blocked})
			if !e.Blocked {
				listening = append(listening, map[string]any{"protocol": proto, "port": int64(e.Port)})
			}
		}
		if listening == nil {
			listening = []any{}
		}
		s.facts["ports"] = ports
		s.facts["listening"] = listening
	case *patnc.PAError:
		s.log.Warn("collector reported a PA-TNC error", "vendor", v.Vendor, "code", v.Code)
		s.note("the endpoint reported a PA-TNC error: " + paErrorName(v))
		return
	default:
		// Attribute Request, Assessment Result, Remediation
		// Instructions: not the collector's to send; ignored.
		s.log.Debug("ignoring attribute", "attr", id.String())
		return
	}
	s.got[id] = true
}

// addPackages merges an Installed Packages list into the session's; the
// first version seen for a name stays. It reports false once the session
// holds more than the cap, dropping every package fact.
func (s *session) addPackages(pkgs patnc.InstalledPackages) bool {
	if s.tooMany {
		return false
	}
	if s.packages == nil {
		s.packages = make(map[string]any, min(len(pkgs), s.v.maxPackages))
	}
	for _, p := range pkgs {
		name := clean(p.Name)
		if _, dup := s.packages[name]; dup {
			continue
		}
		if len(s.packages) >= s.v.maxPackages {
			s.tooMany = true
			s.packages = nil
			delete(s.got, patnc.AttrID{Vendor: patnc.VendorIETF, Type: patnc.AttrInstalledPackages})
			s.note(fmt.Sprintf("the endpoint reported more than %d installed packages", s.v.maxPackages))
			return false
		}
		s.packages[name] = clean(p.Version)
	}
	return true
}

// BatchEnding asks, in one Attribute Request, for the required attributes
// that have not arrived and were not asked for before; every attribute is
// asked for at most once per session, so the exchange cannot loop.
func (s *session) BatchEnding(ctx context.Context) ([]patnc.Attribute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var req patnc.AttributeRequest
	for _, id := range s.v.required {
		if s.got[id] || s.asked[id] {
			continue
		}
		s.asked[id] = true
		req = append(req, id)
	}
	if len(req) == 0 {
		return nil, nil
	}
	a, err := patnc.EncodeAttribute(&req, false)
	if err != nil {
		return nil, fmt.Errorf("osimv: encode attribute request: %w", err)
	}
	s.log.Debug("requesting attributes", "count", len(req))
	return []patnc.Attribute{a}, nil
}

// Result reports the facts so far and the recommendation: Allow
// (compliant) when every required attribute arrived and parsed, Isolate
// (error) naming what is missing otherwise, NoRecommendation (don't know)
// when the endpoint sent nothing at all.
func (s *session) Result() imv.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := imv.Result{Facts: s.factsLocked()}
	var missing []string
	for _, id := range s.v.required {
		if !s.got[id] {
			missing = append(missing, attrName(id))
		}
	}
	switch {
	case !s.received:
		r.Recommendation = imv.NoRecommendation
		r.Assessment = patnc.AssessmentDontKnow
		r.Reasons = append(r.Reasons, "the endpoint sent no operating system information")
	case len(missing) > 0:
		r.Recommendation = imv.Isolate
		r.Assessment = patnc.AssessmentError
		r.Reasons = append(r.Reasons, "the endpoint did not provide operating system "+strings.Join(missing, ", "))
	default:
		r.Recommendation = imv.Allow
		r.Assessment = patnc.AssessmentCompliant
	}
	r.Reasons = append(r.Reasons, s.reasons...)
	return r
}

// factsLocked builds a fresh facts map the caller may keep and modify.
func (s *session) factsLocked() map[string]any {
	f := make(map[string]any, len(s.facts)+3)
	for k, v := range s.facts {
		if l, ok := v.([]any); ok {
			v = cloneList(l)
		}
		f[k] = v
	}
	if name, ok := f["name"].(string); ok {
		// No IETF attribute carries os-release PRETTY_NAME; the product
		// is the name and, when known, the version.
		product := name
		if ver, ok := f["version"].(string); ok && ver != "" {
			product += " " + ver
		}
		f["product"] = product
	}
	if s.packages != nil && !s.tooMany {
		f["packages"] = maps.Clone(s.packages)
		f["package_count"] = int64(len(s.packages))
	}
	return f
}

// cloneList copies a list of port maps.
func cloneList(l []any) []any {
	out := make([]any, len(l))
	for i, e := range l {
		if m, ok := e.(map[string]any); ok {
			e = maps.Clone(m)
		}
		out[i] = e
	}
	return out
}

// note records a reason once.
func (s *session) note(reason string) {
	if !slices.Contains(s.reasons, reason) {
		s.reasons = append(s.reasons, reason)
	}
}

// clean makes an endpoint-supplied string safe for facts and logs.
func clean(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// statusName names an Operational Status (RFC 5792 §4.2.5).
func statusName(st uint8) string {
	switch st {
	case patnc.StatusNotInstalled:
		return "not installed"
	case patnc.StatusNotOperational:
		return "not operational"
	case patnc.StatusOperational:
		return "operational"
	}
	return "unknown"
}

// forwardingName names a Forwarding Enabled value (RFC 5792 §4.2.11).
func forwardingName(f uint32) string {
	switch f {
	case patnc.ForwardingDisabled:
		return "disabled"
	case patnc.ForwardingIsEnabled:
		return "enabled"
	}
	return "unknown"
}

// protocolName names an IANA protocol number as the facts do.
func protocolName(p uint8) string {
	switch p {
	case 6: // IANA protocol number of TCP
		return "tcp"
	case 17: // UDP
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// attrName names an attribute for reasons.
func attrName(id patnc.AttrID) string {
	if id.Vendor == patnc.VendorIETF {
		switch id.Type {
		case patnc.AttrAttributeRequest:
			return "attribute request"
		case patnc.AttrProductInformation:
			return "product information"
		case patnc.AttrNumericVersion:
			return "numeric version"
		case patnc.AttrStringVersion:
			return "string version"
		case patnc.AttrOperationalStatus:
			return "operational status"
		case patnc.AttrPortFilter:
			return "port filter"
		case patnc.AttrInstalledPackages:
			return "installed packages"
		case patnc.AttrPATNCError:
			return "PA-TNC error"
		case patnc.AttrForwardingEnabled:
			return "forwarding enabled"
		case patnc.AttrFactoryDefaultPasswordEnabled:
			return "factory default password enabled"
		}
	}
	return "attribute " + id.String()
}

// paErrorName describes a PA-TNC Error for a reason (RFC 5792 §4.2.8).
func paErrorName(e *patnc.PAError) string {
	if e.Vendor == patnc.VendorIETF {
		switch e.Code {
		case patnc.ErrInvalidParameter:
			return "invalid parameter"
		case patnc.ErrVersionNotSupported:
			return "version not supported"
		case patnc.ErrAttributeTypeNotSupported:
			if a, ok := e.UnsupportedAttribute(); ok {
				return "attribute type not supported (" + attrName(a.ID()) + ")"
			}
			return "attribute type not supported"
		}
	}
	return fmt.Sprintf("code %d/%d", e.Vendor, e.Code)
}
