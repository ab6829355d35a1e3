package radius

import "sync/atomic"

// Stats counts what a Server did with the datagrams it received. The
// counters are atomic; one Stats may be shared by several servers.
type Stats struct {
	received                    atomic.Uint64
	replied                     atomic.Uint64
	unknownClient               atomic.Uint64
	malformed                   atomic.Uint64
	missingMessageAuthenticator atomic.Uint64
	badMessageAuthenticator     atomic.Uint64
	badAuthenticator            atomic.Uint64
	duplicate                   atomic.Uint64
	duplicateResent             atomic.Uint64
	inflightDropped             atomic.Uint64
	handlerDropped              atomic.Uint64
	handlerPanic                atomic.Uint64
	badReply                    atomic.Uint64
	unsupportedCode             atomic.Uint64
	statusServer                atomic.Uint64
	sendError                   atomic.Uint64
}

// Snapshot returns the counters by name:
//
//	received                       datagrams read
//	replied                        replies sent (not counting duplicate_resent)
//	unknown_client                 dropped: source address not in Clients
//	malformed                      dropped: RFC 2865 §3/§5 length or format, or several Message-Authenticators
//	missing_message_authenticator  dropped: Access-Request or Status-Server without Message-Authenticator
//	bad_message_authenticator      dropped: Message-Authenticator wrong
//	bad_authenticator              dropped: Request Authenticator wrong (accounting, CoA, Disconnect)
//	duplicate                      dropped: retransmission of a request still being handled (RFC 5080 §2.2.2)
//	duplicate_resent               retransmission answered from the reply cache
//	inflight_dropped               dropped: MaxInFlight handlers already running
//	handler_dropped                the handler returned nil or panicked
//	handler_panic                  the handler panicked (also counted in handler_dropped)
//	bad_reply                      the handler's reply had a wrong code or did not encode; dropped
//	unsupported_code               dropped: a code this server does not serve
//	status_server                  Status-Server requests answered (RFC 5997)
//	send_error                     replies the socket refused
func (s *Stats) Snapshot() map[string]uint64 {
	return map[string]uint64{
		"received":                      s.received.Load(),
		"replied":                       s.replied.Load(),
		"unknown_client":                s.unknownClient.Load(),
		"malformed":                     s.malformed.Load(),
		"missing_message_authenticator": s.missingMessageAuthenticator.Load(),
		"bad_message_authenticator":     s.badMessageAuthenticator.Load(),
		"bad_authenticator":             s.badAuthenticator.Load(),
		"duplicate":                     s.duplicate.Load(),
		"duplicate_resent":              s.duplicateResent.Load(),
		"inflight_dropped":              s.inflightDropped.Load(),
		"handler_dropped":               s.handlerDropped.Load(),
		"handler_panic":                 s.handlerPanic.Load(),
		"bad_reply":                     s.badReply.Load(),
		"unsupported_code":              s.unsupportedCode.Load(),
		"status_server":                 s.statusServer.Load(),
		"send_error":                    s.sendError.Load(),
	}
}
