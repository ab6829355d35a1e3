// Package pbtnc implements PB-TNC, the TNC posture broker protocol of
// RFC 5793 (identical to TCG IF-TNCCS 2.0): the batch and message codecs
// (RFC 5793 §4) and the PB-TNC Client (TNCC) and PB-TNC Server (TNCS) state
// machines (RFC 5793 §3.2).
//
// The codecs are pure: Batch, Message and the typed message bodies (PA,
// AssessmentResult, AccessRecommendation, RemediationParameters, Error,
// LanguagePreference, ReasonString) encode with AppendBinary and decode with
// UnmarshalBinary, check every length before allocating and copy bytes out
// of the input. ParseBatch adds the receiver's checks of §4 (size bound,
// NOSKIP rules, which messages may appear in which batch type) and reports
// violations as *Error carrying the PB-Error code and offset to send back.
//
// Client and Server drive one PB-TNC session each. They perform no I/O:
// the transport (PT-TLS, PT-EAP, EAP-TNC) hands every received batch to Step
// and sends whatever bytes Step returns. The IMC and IMV layers plug in as
// ClientHandler and ServerHandler.
package pbtnc
