package smdtls

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"

	"github.com/emmansun/gmsm/sm3"
	"github.com/pion/dtls/v2"
	"github.com/pion/dtls/v2/pkg/crypto/clientcertificate"
	"github.com/pion/dtls/v2/pkg/protocol/recordlayer"
)

// The suite's identity. 0xFF10 lies in the TLS "Reserved for Private Use"
// range 0xFF00–0xFFFF (RFC 8447 §8, IANA TLS Cipher Suites); it is
// private to trustnac and no other implementation knows it.
const (
	CipherSuiteID   dtls.CipherSuiteID = 0xFF10
	CipherSuiteName                    = "TLS_PSK_WITH_SM4_GCM_SM3"
)

// TLS content types (RFC 5246 §6.2.1).
const (
	contentChangeCipherSpec = 20
	contentAlert            = 21
	contentHandshake        = 22
	contentApplicationData  = 23
)

// session is what one DTLS association's suite learns and reports: the
// secrets of the RFC 5705 exporter, the PSK identity, and the signals
// that explain a failed handshake. One session is shared by every suite
// value the association's CustomCipherSuites factory makes, so whichever
// value pion initialises fills it in.
type session struct {
	isClient bool

	mu           sync.Mutex
	master       []byte
	clientRandom []byte
	serverRandom []byte
	identity     []byte

	// established is set once the handshake has completed.
	established atomic.Bool
	// authFailures counts records whose tag did not verify.
	authFailures atomic.Uint64
	// onHandshakeAuthFailure, if set, runs once when a handshake record
	// fails authentication before the handshake completes (wrong PSK).
	onHandshakeAuthFailure func()
	authOnce               sync.Once
	// alert is the first alert seen (plaintext or decrypted).
	alert atomic.Pointer[AlertError]
}

func newSession(isClient bool) *session { return &session{isClient: isClient} }

func (s *session) setSecrets(master, clientRandom, serverRandom []byte) {
	s.mu.Lock()
	s.master = bytes.Clone(master)
	s.clientRandom = bytes.Clone(clientRandom)
	s.serverRandom = bytes.Clone(serverRandom)
	s.mu.Unlock()
}

func (s *session) setIdentity(id []byte) {
	s.mu.Lock()
	s.identity = bytes.Clone(id)
	s.mu.Unlock()
}

func (s *session) peerIdentity() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.identity)
}

func (s *session) export(label string, context []byte, length int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return exportKeyingMaterial(s.master, s.clientRandom, s.serverRandom, label, context, length)
}

// noteAlert records the first alert a peer sent.
func (s *session) noteAlert(level, desc uint8) {
	s.alert.CompareAndSwap(nil, &AlertError{Level: level, Description: desc, Remote: true})
}

func (s *session) recordAuthFailure(contentType byte) {
	s.authFailures.Add(1)
	if contentType == contentHandshake && !s.established.Load() && s.onHandshakeAuthFailure != nil {
		s.authOnce.Do(s.onHandshakeAuthFailure)
	}
}

// suiteKeys are the two directions of an initialised suite.
type suiteKeys struct {
	seal, open *recordCipher
}

// suite implements dtls.CipherSuite for TLS_PSK_WITH_SM4_GCM_SM3.
type suite struct {
	sess *session
	keys atomic.Pointer[suiteKeys]
}

// suiteFactory returns the Config.CustomCipherSuites function for one
// association: fresh suite values sharing sess.
func suiteFactory(sess *session) func() []dtls.CipherSuite {
	return func() []dtls.CipherSuite { return []dtls.CipherSuite{&suite{sess: sess}} }
}

var errSuiteNotReady = errors.New("smdtls: cipher suite used before Init")

func (s *suite) String() string                          { return CipherSuiteName }
func (s *suite) ID() dtls.CipherSuiteID                  { return CipherSuiteID }
func (s *suite) CertificateType() clientcertificate.Type { return 0 }
func (s *suite) HashFunc() func() hash.Hash              { return sm3.New }
func (s *suite) ECC() bool                               { return false }
func (s *suite) IsInitialized() bool                     { return s.keys.Load() != nil }
func (s *suite) AuthenticationType() dtls.CipherSuiteAuthenticationType {
	return dtls.CipherSuiteAuthenticationTypePreSharedKey
}
func (s *suite) KeyExchangeAlgorithm() dtls.CipherSuiteKeyExchangeAlgorithm {
	return dtls.CipherSuiteKeyExchangeAlgorithmPsk
}

// Init derives the record keys from the master secret (RFC 5246 §6.3) and
// keeps the secrets for the exporter.
func (s *suite) Init(masterSecret, clientRandom, serverRandom []byte, isClient bool) error {
	if len(masterSecret) != masterSecretLen || len(clientRandom) != randomLen || len(serverRandom) != randomLen {
		return fmt.Errorf("smdtls: Init with a %d-byte master secret and %d/%d-byte randoms", len(masterSecret), len(clientRandom), len(serverRandom))
	}
	kb := expandKeys(masterSecret, clientRandom, serverRandom)
	defer func() { kb = keyBlock{} }()
	client, err := newSM4Cipher(kb.clientKey[:], kb.clientSalt[:])
	if err != nil {
		return err
	}
	server, err := newSM4Cipher(kb.serverKey[:], kb.serverSalt[:])
	if err != nil {
		return err
	}
	k := &suiteKeys{seal: server, open: client}
	if isClient {
		k.seal, k.open = client, server
	}
	if s.sess != nil {
		s.sess.setSecrets(masterSecret, clientRandom, serverRandom)
	}
	s.keys.Store(k)
	return nil
}

// Encrypt protects one marshalled record (header and plaintext).
func (s *suite) Encrypt(_ *recordlayer.RecordLayer, raw []byte) ([]byte, error) {
	k := s.keys.Load()
	if k == nil {
		return nil, errSuiteNotReady
	}
	return k.seal.seal(make([]byte, 0, len(raw)+explicitNonceLen+gcmTagLen), raw)
}

// Decrypt verifies and decrypts one record. Every record of an epoch > 0
// comes here, whatever its content type: unlike pion's own suites, a
// ChangeCipherSpec is not passed through unauthenticated.
func (s *suite) Decrypt(in []byte) ([]byte, error) {
	k := s.keys.Load()
	if k == nil {
		return nil, errSuiteNotReady
	}
	out, err := k.open.open(nil, in)
	if err != nil {
		if errors.Is(err, errRecordAuth) && s.sess != nil {
			s.sess.recordAuthFailure(in[0])
		}
		return nil, err
	}
	if out[0] == contentAlert && len(out) >= recordHeaderLen+2 && s.sess != nil {
		s.sess.noteAlert(out[recordHeaderLen], out[recordHeaderLen+1])
	}
	return out, nil
}
