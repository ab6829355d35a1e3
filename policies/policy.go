package policies

import (
	"errors"
	"time"
)

// The five access roles a decision can carry. Their order of restriction is
// admit < remediate < assess < isolate < deny (see [RoleRank]).
const (
	RoleAdmit     = "admit"     // full access in the role's VLAN / filter
	RoleRemediate = "remediate" // limited access plus remediation instructions
	RoleAssess    = "assess"    // DHCP, DNS and the PDP only, for posture assessment (MAB default)
	RoleIsolate   = "isolate"   // the PDP and the remediation servers only
	RoleDeny      = "deny"      // no access (RADIUS Access-Reject)
)

// Roles lists the five role names from least to most restrictive.
var Roles = []string{RoleAdmit, RoleRemediate, RoleAssess, RoleIsolate, RoleDeny}

// Fact namespaces: the CEL variables a rule condition can read. Each is a map from fact name to
// value; a namespace the endpoint did not report is an empty map, so has(os.name) tells whether a
// fact is present.
const (
	NamespaceEndpoint = "endpoint" // filled by Decide from Endpoint and group membership
	NamespaceOS       = "os"       // IETF PA-TNC Operating System attributes (RFC 5792 §4.2)
	NamespaceTPM      = "tpm"      // TPM attestation results
	NamespaceIMA      = "ima"      // IMA measurement list results
	NamespaceVM       = "vm"       // trusted VM launch results
)

// Namespaces lists every fact namespace a policy can read, in a fixed order.
var Namespaces = []string{NamespaceEndpoint, NamespaceOS, NamespaceTPM, NamespaceIMA, NamespaceVM}

// Version is the only policy file format version this package reads.
const Version = 1

// Limits that keep a hostile or mistaken policy file from exhausting the loader.
const (
	MaxFileSize     = 4 << 20 // bytes of one policy file
	MaxGroups       = 4096    // groups in one file
	MaxRules        = 4096    // rules in one file
	MaxPatterns     = 65536   // MAC, identity and AK patterns in one group
	MaxExprLength   = 16384   // code points of one CEL expression
	MaxNameLength   = 64      // bytes of a group or rule name
	MaxFilterID     = 253     // bytes of a RADIUS Filter-Id (RFC 2865 §5.11)
	MaxTextLength   = 65535   // bytes of a reason or remediation text
	maxYAMLNodes    = 1 << 20 // YAML nodes visited, counting alias expansion
	maxCELRecursion = 64      // CEL parser nesting depth
)

// EvalTimeLimit bounds the evaluation of one CEL condition that contains a comprehension (exists,
// all, map, filter, …): the evaluation is interrupted when the limit passes, with an error that
// makes the rule not match. Conditions without comprehensions run in time linear in their size and
// are not timed.
//
// Why time and not cel-go's runtime cost limit: in cel-go v0.31 the runtime cost tracker itself
// grows quadratically with the number of comprehension steps (measured here: 0.8 s to reach a cost
// of 100,000 over a long list and over 2 minutes to reach 1,000,000), so it would be the stall it is
// meant to prevent, and it slows every normal evaluation too.
const EvalTimeLimit = 50 * time.Millisecond

// interruptCheckFrequency is how many comprehension steps pass between checks for interruption.
const interruptCheckFrequency = 100

// ErrInvalidPolicy is matched (errors.Is) by every error that Parse and LoadFile return for a policy
// file that is not valid.
var ErrInvalidPolicy = errors.New("policies: invalid policy")

// Policy is a loaded, validated policy file. Build it with Parse or LoadFile; it is immutable
// afterwards and safe for concurrent use.
type Policy struct {
	Version    int             // file format version, always 1
	Roles      map[string]Role // enforcement parameters by role name; roles not listed have none
	Groups     []Group         // endpoint groups in file order
	Rules      []Rule          // rules in file order; the first that matches decides
	Default    Default         // what applies when no rule matches
	MABDefault Default         // what DecideMAB returns for a MAC in no group with a mab_role
	// AuthDefault is what DecideAuth returns for a user in no group with an auth_role.
	AuthDefault Default
	// UserAuth says whether EAP-TTLS needs a user password (PAP or EAP-MSCHAPv2) before the
	// posture assessment: UserAuthRequired, UserAuthOptional (default) or UserAuthNone.
	UserAuth   string
	File       string         // the file name given to Parse, used in messages
	Digest     string         // "sha256:<hex>" of the file's bytes, for audit records
	References []ReferenceSet // known-good PCR values (`reference_values:`), file order

	groupIndex map[string]int
}

// Role holds the enforcement parameters of one role (`roles:` in the file).
type Role struct {
	Name           string       // one of the five role names
	VLAN           int          // 802.1Q VLAN ID 1..4094, 0 for none (RADIUS Tunnel-Private-Group-Id, RFC 3580 §3.31)
	FilterID       string       // RADIUS Filter-Id (RFC 2865 §5.11), "" for none
	SessionTimeout int          // seconds, RADIUS Session-Timeout (RFC 2865 §5.27), 0 for none
	Remediation    *Remediation // instructions for endpoints put in this role, nil for none
	Line           int          // line of the role in the file, 0 if not from a file
}

// Remediation is what an endpoint is told to do to get admitted: a text and a URI, sent as PA-TNC
// Remediation Instructions (RFC 5792 §4.2.10) and PB-TNC Remediation-Parameters (RFC 5793 §4.8).
type Remediation struct {
	Text string // human-readable instructions
	URI  string // absolute http or https URI of a remediation page or server
}

// Group is a named set of endpoints (`groups:` in the file). An endpoint is in the group when it
// matches any of the listed MACs, identities or AKs, and, if Match is set, the Match condition
// holds too. A group with only Match contains every endpoint for which Match holds.
type Group struct {
	Name       string
	MACs       []string // MAC patterns as written: full MACs in any usual format or prefixes ending in "*"
	Identities []string // SASL/EAP identities; "*" matches any run of characters
	AKs        []string // attestation key identifiers, e.g. "sha256:…"; "*" as for identities
	Match      string   // optional CEL bool expression over `endpoint`
	MABRole    string   // role DecideMAB gives a MAC in this group, "" for none
	// AuthRole is the role DecideAuth gives a member authenticated by password (RADIUS PAP or
	// inside EAP-TTLS) when no posture assessment follows, "" for none.
	AuthRole string
	// Enrollment is how a new attestation key of a member may be enrolled:
	// EnrollCredential, EnrollTOFU or EnrollNone; "" leaves it to other groups.
	Enrollment string
	// RequireChannel is the channel an assessment of a member must come over
	// (ChannelSMDTLS, ChannelPTTLS or ChannelEAP); an assessment over any
	// other channel isolates the endpoint. "" accepts every channel.
	RequireChannel string
	// AllowSM2Key lets members without a TPM enroll for the SM channel with
	// a registered SM2 key pair (GB/T 32918) instead of TPM credential
	// activation, and be assessed over it.
	AllowSM2Key bool
	Line        int

	macs  []macPattern // parsed MACs
	aks   []string     // AKs in lower case
	match *condition
}

// Rule is one entry of `rules:`. A rule matches an endpoint when the endpoint is in one of Groups
// (or Groups is empty) and When evaluates to true (or When is empty).
type Rule struct {
	Name        string
	Groups      []string     // rule applies only to endpoints in one of these groups; empty for all
	When        string       // CEL bool expression over the fact namespaces; empty for always
	Role        string       // role given when the rule matches
	Reason      string       // admin-readable, endpoint-facing reason
	Remediation *Remediation // overrides the role's remediation, nil to use the role's
	Line        int

	when *condition
}

// Default is what applies when no rule matches (`default:`), or, for MAB, when the MAC is in no
// group with a mab_role (`mab_default:`).
type Default struct {
	Role        string
	Reason      string
	Remediation *Remediation // overrides the role's remediation, nil to use the role's
	Line        int
}

// Values of Policy.UserAuth.
const (
	UserAuthRequired = "required" // a password must be verified before posture
	UserAuthOptional = "optional" // verified when the endpoint offers one; posture alone otherwise
	UserAuthNone     = "none"     // passwords are not asked for; a PAP attempt is refused
)

// Endpoint identifies the endpoint being decided on. The PDP fills it; Decide exposes it to the
// policy as the `endpoint` namespace.
type Endpoint struct {
	ID       string // PDP's endpoint identifier
	MAC      string // MAC address in any usual format, "" if unknown
	Identity string // SASL/EAP identity, "" if none
	AK       string // attestation key identifier, "" if none
	Channel  string // "pt-tls", "eap", "sm-dtls" (or "mab")
}

// The channels an assessment can come over (Endpoint.Channel). ChannelMAB
// is not an assessment: MAB proves only a MAC address.
const (
	ChannelPTTLS  = "pt-tls"  // PT-TLS over TLS 1.3 (RFC 6876)
	ChannelEAP    = "eap"     // PT-EAP inside EAP-TTLS over RADIUS (RFC 7171)
	ChannelSMDTLS = "sm-dtls" // PT-TLS framing over SM4-GCM/SM3 DTLS 1.2 with a per-endpoint PSK
	ChannelMAB    = "mab"     // MAC Authentication Bypass (RADIUS), no assessment
)

// Channels lists the channels require_channel accepts.
var Channels = []string{ChannelSMDTLS, ChannelPTTLS, ChannelEAP}

// Facts holds an endpoint's facts by namespace (see [Namespaces]). Values must be CEL-friendly:
// string, int64 (or int), bool, float64, []any, map[string]any or map[string]string, nested
// likewise. The "endpoint" namespace is filled by Decide from the Endpoint and its groups; any
// "endpoint" entry in Facts is ignored.
type Facts map[string]map[string]any

// RoleRank returns the position of role in the order of restriction
// admit (0) < remediate (1) < assess (2) < isolate (3) < deny (4). An unknown role ranks as deny,
// so that comparisons fail closed.
func RoleRank(role string) int {
	switch role {
	case RoleAdmit:
		return 0
	case RoleRemediate:
		return 1
	case RoleAssess:
		return 2
	case RoleIsolate:
		return 3
	default:
		return 4
	}
}

// Stricter returns the more restrictive of two roles (see [RoleRank]). An unknown role counts as
// deny and is returned as "deny".
func Stricter(a, b string) string {
	if !IsRole(a) || !IsRole(b) {
		return RoleDeny
	}
	if RoleRank(b) > RoleRank(a) {
		return b
	}
	return a
}

// IsRole reports whether s is one of the five role names.
func IsRole(s string) bool {
	switch s {
	case RoleAdmit, RoleRemediate, RoleAssess, RoleIsolate, RoleDeny:
		return true
	}
	return false
}

// RoleParams returns the parameters of a role: those under `roles:` in the file, or a Role with
// only its Name when the file lists none.
func (p *Policy) RoleParams(role string) Role {
	if r, ok := p.Roles[role]; ok {
		r.Remediation = r.Remediation.clone()
		return r
	}
	return Role{Name: role}
}

func (r *Remediation) clone() *Remediation {
	if r == nil {
		return nil
	}
	c := *r
	return &c
}
