package tpmimv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/google/go-tpm/tpm2"

	"trustnac/imv"
	"trustnac/transport/patnc"
)

// testAK is an attestation key held in software that signs TPMS_ATTEST
// the way a TPM does.
type testAK struct {
	alg    string
	hash   uint16 // scheme hash
	ecdsa  *ecdsa.PrivateKey
	sm2    *sm2.PrivateKey
	area   publicArea
	public []byte
	key    *akKey
}

const akAttrs = attrFixedTPM | attrFixedParent | attrRestricted | attrSign | 1<<5 | 1<<6 // + sensitiveDataOrigin, userWithAuth

// newTestAK makes an AK: alg AKAlgECDSAP256 or AKAlgSM2, hash its scheme
// hash (0 for the usual: SHA-256 for ECDSA, SM3 for SM2).
func newTestAK(t testing.TB, alg string, hash uint16) *testAK {
	t.Helper()
	k := &testAK{alg: alg, hash: hash}
	var pub *ecdsa.PublicKey
	k.area = publicArea{Type: algECC, NameAlg: algSHA256, Attributes: akAttrs, SymAlg: algNull, KDF: algNull}
	switch alg {
	case AKAlgECDSAP256:
		if k.hash == 0 {
			k.hash = algSHA256
		}
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.ecdsa, pub = priv, &priv.PublicKey
		k.area.Scheme, k.area.CurveID = algECDSA, curveNISTP256
	case AKAlgSM2:
		if k.hash == 0 {
			k.hash = algSM3256
		}
		priv, err := sm2.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.sm2, pub = priv, &priv.PublicKey
		k.area.Scheme, k.area.CurveID = algSM2, curveSM2P256
	default:
		t.Fatalf("unknown alg %q", alg)
	}
	k.area.SchemeHash = k.hash
	k.area.X, k.area.Y = pub.X.FillBytes(make([]byte, 32)), pub.Y.FillBytes(make([]byte, 32))
	k.public = k.area.appendBinary(nil)
	var err error
	if k.key, err = parseAK(k.public); err != nil {
		t.Fatal(err)
	}
	return k
}

// withAttributes returns a copy of the key with other object attributes.
func (k *testAK) withAttributes(t testing.TB, attrs uint32) *testAK {
	c := *k
	c.area.Attributes = attrs
	c.public = c.area.appendBinary(nil)
	var err error
	if c.key, err = parseAK(c.public); err != nil {
		t.Fatal(err)
	}
	return &c
}

// sign returns the TPMT_SIGNATURE of msg: the scheme hash signed raw.
func (k *testAK) sign(t testing.TB, msg []byte) []byte {
	t.Helper()
	digest := sum(k.hash, nil, msg)
	var der []byte
	var err error
	alg := algECDSA
	if k.sm2 != nil {
		alg = algSM2
		der, err = sm2.SignASN1(rand.Reader, k.sm2, digest, nil)
	} else {
		der, err = ecdsa.SignASN1(rand.Reader, k.ecdsa, digest)
	}
	if err != nil {
		t.Fatal(err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		t.Fatal(err)
	}
	s := signature{Alg: alg, Hash: k.hash, R: rs.R.FillBytes(make([]byte, 32)), S: rs.S.FillBytes(make([]byte, 32))}
	return s.appendBinary(nil)
}

// testTPM is an endpoint's TPM state in software: PCR banks, counters.
type testTPM struct {
	ak      *testAK
	pcrs    map[uint16]map[int][]byte // the banks it has, all 24 PCRs
	clock   uint64
	reset   uint32
	restart uint32
}

func newTestTPM(t testing.TB, ak *testAK, banks ...uint16) *testTPM {
	if len(banks) == 0 {
		banks = []uint16{algSHA1, algSHA256}
	}
	tp := &testTPM{ak: ak, pcrs: map[uint16]map[int][]byte{}, clock: 1000, reset: 3, restart: 1}
	for _, b := range banks {
		tp.pcrs[b] = map[int][]byte{}
		for i := 0; i < 24; i++ {
			tp.pcrs[b][i] = make([]byte, digestSize(b))
		}
	}
	return tp
}

// extend extends PCR i of every bank with data (its hash in each bank).
func (tp *testTPM) extend(i int, data []byte) {
	for b, vals := range tp.pcrs {
		d := sum(b, nil, data)
		vals[i] = sum(b, nil, append(slices.Clone(vals[i]), d...))
	}
}

// quote answers a quote request: the requested banks the TPM has, the
// requested PCRs, the AK's scheme hash over the values.
func (tp *testTPM) quote(t testing.TB, req *patnc.TPMQuoteRequest) *patnc.TPMQuote {
	t.Helper()
	var sels []pcrSelection
	for _, s := range req.Selections {
		if tp.pcrs[s.Hash] == nil {
			continue
		}
		sel := pcrSelection{Hash: s.Hash, Select: make([]byte, 3)}
		for _, i := range s.PCRs {
			sel.Select[i/8] |= 1 << (i % 8)
		}
		sels = append(sels, sel)
	}
	return tp.quoteSelection(t, req.Nonce, sels)
}

// quoteSelection quotes the given selection over nonce.
func (tp *testTPM) quoteSelection(t testing.TB, nonce []byte, sels []pcrSelection) *patnc.TPMQuote {
	t.Helper()
	tp.clock += 100
	q := &patnc.TPMQuote{}
	var concat []byte
	for _, s := range sels {
		for _, i := range s.indexes() {
			v := tp.pcrs[s.Hash][i]
			concat = append(concat, v...)
			q.PCRs = append(q.PCRs, patnc.PCRValue{Hash: s.Hash, Index: uint8(i), Digest: slices.Clone(v)})
		}
	}
	a := attest{
		Magic: tpmGeneratedValue, Type: tpmSTAttestQuote,
		QualifiedSigner: append([]byte{0, 0x0b}, make([]byte, 32)...),
		ExtraData:       slices.Clone(nonce),
		Clock:           tp.clock, ResetCount: tp.reset, RestartCount: tp.restart, Safe: 1,
		FirmwareVersion: 0x2023,
		PCRSelect:       sels,
		PCRDigest:       sum(tp.ak.hash, nil, concat),
	}
	q.Attest = a.appendBinary(nil)
	q.Signature = tp.ak.sign(t, q.Attest)
	return q
}

// sel is a selection of PCRs in a bank.
func sel(bank uint16, pcrs ...int) pcrSelection {
	s := pcrSelection{Hash: bank, Select: make([]byte, 3)}
	for _, i := range pcrs {
		s.Select[i/8] |= 1 << (i % 8)
	}
	return s
}

// testEK is an ECC endorsement key in software with a certificate from a
// test CA.
type testEK struct {
	priv   *ecdsa.PrivateKey
	public []byte // TPMT_PUBLIC
	cert   []byte
	roots  *x509.CertPool
}

type asn1OID = asn1.ObjectIdentifier

var oidTPMManufacturer = asn1.ObjectIdentifier{2, 23, 133, 2, 1}

func newTestEK(t testing.TB) *testEK {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := tpm2.ECCEKTemplate
	tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: priv.X.FillBytes(make([]byte, 32))},
		Y: tpm2.TPM2BECCParameter{Buffer: priv.Y.FillBytes(make([]byte, 32))},
	})
	ek := &testEK{priv: priv, public: tpm2.Marshal(tmpl)}
	caKey, caCert := newTestCA(t, "test EK CA")
	ek.roots = x509.NewCertPool()
	ek.roots.AddCert(caCert)
	ek.cert = issueEKCert(t, caKey, caCert, &priv.PublicKey, []asn1.ObjectIdentifier{oidTCGKPEKCertificate})
	return ek
}

func x509Pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func hexName(b []byte) string { return hex.EncodeToString(b[2:]) }

func newTestCA(t testing.TB, name string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// issueEKCert issues an EK certificate the way TPM makers do: an empty
// subject and a critical subject alternative name holding the TPM's
// manufacturer in a directoryName.
func issueEKCert(t testing.TB, caKey *ecdsa.PrivateKey, ca *x509.Certificate, pub any, eku []asn1.ObjectIdentifier) []byte {
	t.Helper()
	dirName, err := asn1.Marshal(pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidTPMManufacturer, Value: "id:54534D00"}}}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	san, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: dirName}})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(2),
		NotBefore:          time.Now().Add(-time.Hour),
		NotAfter:           time.Now().Add(24 * time.Hour),
		KeyUsage:           x509.KeyUsageKeyAgreement,
		UnknownExtKeyUsage: eku,
		ExtraExtensions:    []pkix.Extension{{Id: oidSubjectAltName, Critical: true, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// ---- driving a session ----

// exchange delivers the attributes as one PA-TNC message, ends the batch
// and returns the decoded attributes the session answered with.
func exchange(t testing.TB, s imv.Session, vals ...patnc.Value) []patnc.Value {
	t.Helper()
	ctx := context.Background()
	var out []patnc.Value
	if len(vals) > 0 {
		m := &patnc.Message{ID: 1}
		for _, v := range vals {
			if err := m.Add(v, false); err != nil {
				t.Fatalf("encode %T: %v", v, err)
			}
		}
		ans, err := s.Receive(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, decodeAll(t, ans)...)
	}
	ans, err := s.BatchEnding(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, decodeAll(t, ans)...)
}

func decodeAll(t testing.TB, attrs []patnc.Attribute) []patnc.Value {
	t.Helper()
	var out []patnc.Value
	for _, a := range attrs {
		v, err := patnc.DecodeAttribute(a)
		if err != nil {
			t.Fatalf("the session sent an attribute that does not decode: %v", err)
		}
		out = append(out, v)
	}
	return out
}

// find returns the first value of type T.
func find[T patnc.Value](vals []patnc.Value) T {
	for _, v := range vals {
		if x, ok := v.(T); ok {
			return x
		}
	}
	var zero T
	return zero
}

// approve records an AK as approved in a store.
func approve(t testing.TB, store AKStore, ak *testAK, method string) {
	t.Helper()
	if err := store.PutAK(&AKRecord{Name: ak.key.id, Public: ak.public, Status: StatusApproved, Method: method}); err != nil {
		t.Fatal(err)
	}
}

// emptyLogs are the pieces of an endpoint without logs.
func emptyLogs() []patnc.Value {
	return []patnc.Value{
		&patnc.MeasurementLog{Kind: patnc.LogBoot},
		&patnc.MeasurementLog{Kind: patnc.LogIMA},
	}
}
