package imc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"trustnac/transport/patnc"
	"trustnac/transport/pbtnc"
)

// maxAttributes caps the attributes of one PA-TNC message from a verifier.
const maxAttributes = 4096

// Client is the TNC client (TNCC) of an endpoint: it owns the collectors and
// starts one Handshake per PB-TNC assessment.
type Client struct {
	collectors []Collector
	log        *slog.Logger
}

// NewClient returns a TNC client over the given collectors. A collector's
// position in the list is its posture collector ID on the wire.
func NewClient(collectors []Collector, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{collectors: collectors, log: log}
}

// Handshake returns the PB-TNC client handler for one assessment.
func (c *Client) Handshake() *Handshake {
	return &Handshake{client: c}
}

// Handshake is the IMC side of one PB-TNC assessment; it implements
// pbtnc.ClientHandler. Not safe for concurrent use: PB-TNC is half duplex.
type Handshake struct {
	// ChannelBinding, when set before the handshake starts, is the
	// channel's RFC 5705 exporter value (label
	// patnc.ChannelBindingLabel); the collectors see it through
	// ChannelBinding(ctx). Leave it nil on channels without one.
	ChannelBinding []byte

	client   *Client
	sessions []Session
	nextID   uint32
	result   *pbtnc.Result
}

var _ pbtnc.ClientHandler = (*Handshake)(nil)

// Begin opens a session on every collector and returns their first messages.
func (h *Handshake) Begin(ctx context.Context) ([]pbtnc.PA, error) {
	ctx = h.bind(ctx)
	h.sessions = make([]Session, len(h.client.collectors))
	h.result = nil
	var out []pbtnc.PA
	for i, col := range h.client.collectors {
		s, err := col.NewSession(ctx)
		if err != nil {
			return nil, fmt.Errorf("imc: %s: %w", col.Name(), err)
		}
		h.sessions[i] = s
		attrs, err := s.Begin(ctx)
		if err != nil {
			return nil, fmt.Errorf("imc: %s: %w", col.Name(), err)
		}
		pa, err := h.message(i, pbtnc.AnyID, false, attrs)
		if err != nil {
			return nil, err
		}
		if pa != nil {
			out = append(out, *pa)
		}
	}
	return out, nil
}

// Receive delivers the verifiers' messages to the collectors of their
// subtype and gathers the answers.
func (h *Handshake) Receive(ctx context.Context, msgs []pbtnc.PA) ([]pbtnc.PA, error) {
	ctx = h.bind(ctx)
	var out []pbtnc.PA
	for _, m := range msgs {
		for i, col := range h.client.collectors {
			if col.Subtype() != m.Subtype || h.sessions[i] == nil {
				continue
			}
			if m.Exclusive && m.CollectorID != uint16(i) {
				continue
			}
			attrs := h.deliver(ctx, i, m.Body)
			pa, err := h.message(i, m.ValidatorID, m.ValidatorID != pbtnc.AnyID, attrs)
			if err != nil {
				return nil, err
			}
			if pa != nil {
				out = append(out, *pa)
			}
		}
	}
	return out, nil
}

// deliver hands one PA-TNC message to collector i and returns its answer.
// A message that does not parse is answered with a PA-TNC Error attribute,
// as RFC 5792 §4.2.8 asks; a collector failure is logged and answered with
// nothing, so one broken collector does not end the whole handshake.
func (h *Handshake) deliver(ctx context.Context, i int, body []byte) []patnc.Attribute {
	col := h.client.collectors[i]
	msg, err := patnc.ParseMessage(body, maxAttributes)
	if err != nil {
		h.client.log.Warn("malformed PA-TNC message from verifier", "collector", col.Name(), "err", err)
		var pe *patnc.ParseError
		if errors.As(err, &pe) {
			if a, err := patnc.EncodeAttribute(pe.PAError(header(body)), false); err == nil {
				return []patnc.Attribute{a}
			}
		}
		return nil
	}
	attrs, err := h.sessions[i].Receive(ctx, msg)
	if err != nil {
		h.client.log.Warn("collector failed", "collector", col.Name(), "err", err)
		return nil
	}
	return attrs
}

// bind adds the handshake's channel binding to ctx, unless ctx already
// carries one.
func (h *Handshake) bind(ctx context.Context) context.Context {
	if len(h.ChannelBinding) == 0 || ChannelBinding(ctx) != nil {
		return ctx
	}
	return WithChannelBinding(ctx, h.ChannelBinding)
}

// header returns the PA-TNC message header of body, as much of it as there is.
func header(body []byte) []byte {
	return body[:min(len(body), patnc.HeaderLen)]
}

// message wraps attrs from collector i in a PB-PA message; nil when there is
// nothing to send.
func (h *Handshake) message(i int, validator uint16, exclusive bool, attrs []patnc.Attribute) (*pbtnc.PA, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	h.nextID++
	m := patnc.Message{ID: h.nextID, Attributes: attrs}
	body, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("imc: %s: %w", h.client.collectors[i].Name(), err)
	}
	return &pbtnc.PA{
		Exclusive:   exclusive,
		Subtype:     h.client.collectors[i].Subtype(),
		CollectorID: uint16(i),
		ValidatorID: validator,
		Body:        body,
	}, nil
}

// Result records the PDP's decision.
func (h *Handshake) Result(ctx context.Context, r pbtnc.Result) error {
	h.result = &r
	return nil
}

// Outcome is the decision as the endpoint sees it.
func (h *Handshake) Outcome() (Outcome, bool) {
	if h.result == nil {
		return Outcome{}, false
	}
	return OutcomeOf(*h.result), true
}
