package imc

import "context"

// bindingKey is the context key of the channel binding.
type bindingKey struct{}

// WithChannelBinding returns ctx carrying the channel binding of the
// assessment: the channel's RFC 5705 exporter value with label
// patnc.ChannelBindingLabel (patnc.ChannelBindingLen bytes). Collectors
// that quote a TPM bind the verifier's nonce to it (see ChannelBinding).
func WithChannelBinding(ctx context.Context, binding []byte) context.Context {
	if len(binding) == 0 {
		return ctx
	}
	return context.WithValue(ctx, bindingKey{}, append([]byte(nil), binding...))
}

// ChannelBinding returns the channel binding ctx carries, nil for none.
// With one, a TPM collector quotes H(nonce || binding) with its AK's
// scheme hash instead of the verifier's nonce, as the verifier expects
// when the PDP set imv.Endpoint.ChannelBinding for the same channel.
func ChannelBinding(ctx context.Context) []byte {
	b, _ := ctx.Value(bindingKey{}).([]byte)
	return b
}
