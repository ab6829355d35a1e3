package policies

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// Limits on facts files.
const (
	MaxFactsSize  = 16 << 20 // bytes of one facts file
	maxFactsDepth = 32       // nesting of objects and arrays inside a namespace
)

// ErrBadFacts is matched (errors.Is) by every error ParseFacts and LoadFacts return for malformed
// facts.
var ErrBadFacts = errors.New("policies: bad facts")

// LoadFacts reads a facts file: a JSON object with one member per namespace,
// {"endpoint": {"id": …, "mac": …, "identity": …, "ak": …, "channel": …}, "os": {…}, …}.
// `nac policy explain --facts` reads it. See ParseFacts.
func LoadFacts(path string) (Endpoint, Facts, error) {
	f, err := os.Open(path)
	if err != nil {
		return Endpoint{}, nil, fmt.Errorf("policies: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFactsSize+1))
	if err != nil {
		return Endpoint{}, nil, fmt.Errorf("policies: read %s: %w", path, err)
	}
	ep, facts, err := ParseFacts(data)
	if err != nil {
		return Endpoint{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	return ep, facts, nil
}

// ParseFacts decodes facts JSON (see LoadFacts). The "endpoint" member fills the Endpoint (its
// "groups" member, which Decide computes, is ignored); every other member must be a known namespace
// holding an object. JSON numbers become int64 where integral and within range, float64
// otherwise, so that CEL comparisons like `p.port == 23` work.
func ParseFacts(data []byte) (Endpoint, Facts, error) {
	var ep Endpoint
	if len(data) > MaxFactsSize {
		return ep, nil, fmt.Errorf("%w: larger than %d bytes", ErrBadFacts, MaxFactsSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return ep, nil, fmt.Errorf("%w: %w", ErrBadFacts, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ep, nil, fmt.Errorf("%w: data after the JSON object", ErrBadFacts)
	}
	if raw == nil {
		return ep, nil, fmt.Errorf("%w: want a JSON object", ErrBadFacts)
	}
	facts := Facts{}
	for ns, v := range raw {
		if !slices.Contains(Namespaces, ns) {
			return ep, nil, fmt.Errorf("%w: unknown namespace %q (namespaces: %s)", ErrBadFacts, ns, strings.Join(Namespaces, ", "))
		}
		if v == nil {
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return ep, nil, fmt.Errorf("%w: %s must be an object", ErrBadFacts, ns)
		}
		if ns == NamespaceEndpoint {
			var err error
			if ep, err = endpointFromJSON(obj); err != nil {
				return Endpoint{}, nil, err
			}
			continue
		}
		conv, err := convertJSON(obj, ns, 0)
		if err != nil {
			return Endpoint{}, nil, err
		}
		facts[ns] = conv.(map[string]any)
	}
	return ep, facts, nil
}

func endpointFromJSON(obj map[string]any) (Endpoint, error) {
	var ep Endpoint
	for k, v := range obj {
		var dst *string
		switch k {
		case "id":
			dst = &ep.ID
		case "mac":
			dst = &ep.MAC
		case "identity":
			dst = &ep.Identity
		case "ak":
			dst = &ep.AK
		case "channel":
			dst = &ep.Channel
		case "groups":
			continue // computed by Decide from the policy's groups
		default:
			return Endpoint{}, fmt.Errorf("%w: unknown endpoint field %q", ErrBadFacts, k)
		}
		if v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return Endpoint{}, fmt.Errorf("%w: endpoint.%s must be a string", ErrBadFacts, k)
		}
		*dst = s
	}
	if ep.MAC != "" {
		mac, err := NormalizeMAC(ep.MAC)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%w: endpoint.mac: %w", ErrBadFacts, err)
		}
		ep.MAC = mac
	}
	return ep, nil
}

// convertJSON turns decoded JSON (with json.Number) into CEL-friendly values.
func convertJSON(v any, path string, depth int) (any, error) {
	if depth > maxFactsDepth {
		return nil, fmt.Errorf("%w: %s: nested deeper than %d levels", ErrBadFacts, path, maxFactsDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := convertJSON(e, path+"."+k, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := convertJSON(e, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case json.Number:
		return convertNumber(x, path)
	case string, bool, nil:
		return x, nil
	}
	return nil, fmt.Errorf("%w: %s: unexpected JSON value %T", ErrBadFacts, path, v)
}

func convertNumber(n json.Number, path string) (any, error) {
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("%w: %s: number %s out of range", ErrBadFacts, path, n)
	}
	// 1e3 and 23.0 are integral: make them int64 where that is exact.
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return int64(f), nil
	}
	return f, nil
}
