package tpmimc

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"trustnac/transport/patnc"
)

// NV indexes of EK certificates (TCG EK Credential Profile for TPM 2.0,
// low-range NV indexes):
// RSA 2048 at 0x01C00002, ECC NIST P-256 at 0x01C0000A.
const (
	NVIndexRSAEKCert     = 0x01C00002
	NVIndexECCP256EKCert = 0x01C0000A
)

// maxEKCert caps the EK certificate read from NV.
const maxEKCert = 16 << 10

// ekTemplate returns the TCG default EK template for the configured
// algorithm and the NV index of its certificate.
func (c *Collector) ekTemplate() (tpm2.TPMTPublic, tpm2.TPMHandle) {
	if c.cfg.EKAlg == EKAlgECC {
		return tpm2.ECCEKTemplate, NVIndexECCP256EKCert
	}
	return tpm2.RSAEKTemplate, NVIndexRSAEKCert
}

// createEK creates the EK in the endorsement hierarchy from the default
// template; the caller flushes it.
func (c *Collector) createEK() (*tpm2.CreatePrimaryResponse, error) {
	tmpl, _ := c.ekTemplate()
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(tmpl),
	}.Execute(c.tpm)
	if err != nil {
		return nil, fmt.Errorf("tpmimc: create %s EK: %w", c.cfg.EKAlg, err)
	}
	return rsp, nil
}

// EK returns the endorsement key's public area (TPMT_PUBLIC) made from the
// TCG default template of Config.EKAlg, and its certificate (DER) from the
// TCG NV index, or a nil certificate when the TPM holds none for that
// template. Both are read once and kept; a certificate that cannot be
// read now is left out and read again next time.
func (c *Collector) EK(ctx context.Context) (public []byte, cert []byte, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ekPub == nil {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("tpmimc: %w", err)
		}
		rsp, err := c.createEK()
		if err != nil {
			return nil, nil, err
		}
		c.flush(rsp.ObjectHandle)
		pub := clone(rsp.OutPublic.Bytes())
		cert, err := c.ekCertificate(pub)
		if err != nil {
			// The EK is still worth reporting (enrollment by credential
			// activation or trust on first use needs no certificate);
			// the certificate is tried again next time.
			c.log.Warn("cannot read the EK certificate", "err", err)
			return pub, nil, nil
		}
		c.ekPub, c.ekCert = pub, cert
	}
	return clone(c.ekPub), clone(c.ekCert), nil
}

// ekCertificate reads the EK certificate for the configured template and
// checks that it certifies ekPub. No certificate, or one for another key
// (a TPM provisioned with a non-default template), gives nil.
func (c *Collector) ekCertificate(ekPub []byte) ([]byte, error) {
	_, index := c.ekTemplate()
	der, err := c.readNV(index, maxEKCert)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCHandle) {
			c.log.Debug("no EK certificate in NV", "index", fmt.Sprintf("%#08x", uint32(index)))
			return nil, nil
		}
		return nil, err
	}
	der = trimDER(der)
	if len(der) > patnc.MaxCertLen {
		c.log.Warn("EK certificate too long to send; sending none", "bytes", len(der), "max", patnc.MaxCertLen)
		return nil, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		// Some EK certificates do not parse in crypto/x509; the verifier
		// decides what it makes of them.
		c.log.Debug("EK certificate does not parse here; sending it as is", "err", err)
		return der, nil
	}
	pt, err := tpm2.Unmarshal[tpm2.TPMTPublic](ekPub)
	if err != nil {
		return nil, fmt.Errorf("%w: EK public: %w", ErrBadResponse, err)
	}
	key, err := tpm2.Pub(*pt)
	if err != nil {
		return nil, fmt.Errorf("%w: EK public: %w", ErrBadResponse, err)
	}
	eq, ok := key.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(cert.PublicKey) {
		c.log.Warn("EK certificate in NV is for another key; sending none",
			"index", fmt.Sprintf("%#08x", uint32(index)))
		return nil, nil
	}
	return der, nil
}

// readNV reads a whole NV index, at most limit bytes, in chunks no larger
// than the TPM's TPM_PT_NV_BUFFER_MAX. It authorizes with the index itself
// (TPMA_NV_AUTHREAD, empty auth value) or else the owner hierarchy.
func (c *Collector) readNV(index tpm2.TPMHandle, limit int) ([]byte, error) {
	pub, err := tpm2.NVReadPublic{NVIndex: index}.Execute(c.tpm)
	if err != nil {
		return nil, fmt.Errorf("tpmimc: NV %#08x: %w", uint32(index), err)
	}
	nvp, err := pub.NVPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("%w: NV public: %w", ErrBadResponse, err)
	}
	size := int(nvp.DataSize)
	if size > limit {
		return nil, fmt.Errorf("%w: NV %#08x holds %d bytes, more than %d", ErrBadResponse, uint32(index), size, limit)
	}
	chunk, err := c.property(tpm2.TPMPTNVBufferMax)
	if err != nil {
		return nil, err
	}
	if chunk == 0 || chunk > 0xffff {
		chunk = 512
	}
	nv := tpm2.NamedHandle{Handle: index, Name: pub.NVName}
	auth := tpm2.AuthHandle{Handle: index, Name: pub.NVName, Auth: tpm2.PasswordAuth(nil)}
	if !nvp.Attributes.AuthRead && nvp.Attributes.OwnerRead {
		auth = tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Name: tpm2.HandleName(tpm2.TPMRHOwner), Auth: tpm2.PasswordAuth(nil)}
	}
	out := make([]byte, 0, size)
	for len(out) < size {
		n := min(size-len(out), int(chunk))
		rsp, err := tpm2.NVRead{AuthHandle: auth, NVIndex: nv, Size: uint16(n), Offset: uint16(len(out))}.Execute(c.tpm)
		if err != nil {
			return nil, fmt.Errorf("tpmimc: read NV %#08x: %w", uint32(index), err)
		}
		if len(rsp.Data.Buffer) != n {
			return nil, fmt.Errorf("%w: NV read gave %d bytes, asked %d", ErrBadResponse, len(rsp.Data.Buffer), n)
		}
		out = append(out, rsp.Data.Buffer...)
	}
	return out, nil
}

// property reads one TPM_CAP_TPM_PROPERTIES value (Part 2 §6.12, §6.13).
func (c *Collector) property(p tpm2.TPMPT) (uint32, error) {
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(p), PropertyCount: 1}.Execute(c.tpm)
	if err != nil {
		return 0, fmt.Errorf("tpmimc: get capability: %w", err)
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	for _, tp := range props.TPMProperty {
		if tp.Property == p {
			return tp.Value, nil
		}
	}
	return 0, fmt.Errorf("%w: TPM does not report property %#x", ErrBadResponse, uint32(p))
}

// trimDER cuts b to the length of the DER SEQUENCE it starts with: NV
// indexes are often larger than the certificate and padded.
func trimDER(b []byte) []byte {
	if len(b) < 2 || b[0] != 0x30 {
		return b
	}
	n, hdr := int(b[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k {
			return b
		}
		n = 0
		for _, d := range b[2 : 2+k] {
			n = n<<8 | int(d)
		}
		hdr += k
	}
	if hdr+n > len(b) {
		return b
	}
	return b[:hdr+n]
}
