package tpmimc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"trustnac/internal/atomicfile"
)

// maxBlob caps an AK blob file: a TPM2B is at most 65,535 bytes.
const maxBlob = 2 + 0xffff

// errBadBlob is wrapped by the errors for AK blob files whose contents are
// not a usable AK; such blobs are replaced.
var errBadBlob = errors.New("tpmimc: bad AK blob")

// AK is an attestation key: a restricted ECC signing key under the storage
// root key (TCG TPM v2.0 Provisioning Guidance; a restricted signing key,
// TPM 2.0 Part 2 §8.3 TPMA_OBJECT).
type AK struct {
	// Public is the public area as go-tpm's structure. For an SM2 AK
	// go-tpm has no place for the scheme's hash (TPMU_ASYM_SCHEME lacks
	// SM2): Scheme says TPM_ALG_SM2 without details, and Public must not
	// be marshalled. PublicBytes is the authority.
	Public tpm2.TPMTPublic
	// PublicBytes is the TPMT_PUBLIC as the TPM returned it (the contents
	// of a TPM2B_PUBLIC).
	PublicBytes []byte
	// Name is the AK's Name: the SHA-256 nameAlg and the digest of
	// PublicBytes (Part 1 §16).
	Name tpm2.TPM2BName
	// Alg is AKAlgECCP256 or AKAlgSM2.
	Alg string
	// SchemeHash is the hash of the AK's signing scheme, which is also
	// the hash of the PCR digest in its quotes: SHA-256 for ECDSA, SM3-256
	// for SM2, or SHA-256 for SM2 on a TPM without SM3 (swtpm).
	SchemeHash tpm2.TPMAlgID
}

// PublicKey returns the AK's public key (on sm2.P256() for an SM2 AK).
func (a *AK) PublicKey() (*ecdsa.PublicKey, error) {
	p, err := ParseECCPublic(a.PublicBytes)
	if err != nil {
		return nil, err
	}
	return p.PublicKey()
}

func (a *AK) clone() *AK {
	c := *a
	c.PublicBytes = clone(a.PublicBytes)
	c.Name = tpm2.TPM2BName{Buffer: clone(a.Name.Buffer)}
	if p, err := ParseECCPublic(a.PublicBytes); err == nil {
		c.Public = goTPMPublic(p)
	}
	return &c
}

// akFiles returns the paths of the AK's public and private blobs.
func (c *Collector) akFiles() (pub, priv string) {
	base := filepath.Join(c.cfg.StateDir, "ak-"+c.kind.alg)
	return base + ".pub", base + ".priv"
}

// AK makes sure the attestation key exists and loads in the TPM: it loads
// the blobs kept in StateDir, or creates the key under the SRK and saves
// them, and returns it.
func (c *Collector) AK(ctx context.Context) (*AK, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ak == nil {
		h, err := c.loadAK(ctx)
		if err != nil {
			return nil, err
		}
		c.flush(h)
	}
	return c.ak.clone(), nil
}

// newAK builds the AK value from a TPMT_PUBLIC, checking that it is the key
// this collector's template makes.
func (c *Collector) newAK(public []byte) (*AK, error) {
	p, err := ParseECCPublic(public)
	if err != nil {
		return nil, err
	}
	if p.NameAlg != tpm2.TPMAlgSHA256 || p.Attributes != akAttributes || len(p.AuthPolicy) != 0 ||
		p.Symmetric != tpm2.TPMAlgNull || p.Scheme != c.kind.scheme || !slices.Contains(c.kind.hashes, p.SchemeHash) ||
		p.Curve != c.kind.curve || p.KDF != tpm2.TPMAlgNull {
		return nil, fmt.Errorf("%w: not an %s AK made by this collector", ErrBadPublic, c.kind.alg)
	}
	if _, err := p.PublicKey(); err != nil {
		return nil, err
	}
	name, err := objectName(public)
	if err != nil {
		return nil, err
	}
	return &AK{Public: goTPMPublic(p), PublicBytes: clone(public), Name: name, Alg: c.kind.alg, SchemeHash: p.SchemeHash}, nil
}

// srk creates the storage root key: the TCG ECC P-256 SRK template in the
// owner hierarchy. It is deterministic, so the same key returns every
// time; the caller flushes it.
func (c *Collector) srk() (*tpm2.CreatePrimaryResponse, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(c.tpm)
	if err != nil {
		return nil, fmt.Errorf("tpmimc: create SRK: %w", err)
	}
	return rsp, nil
}

// loadAK loads the AK into the TPM and returns its handle, which the
// caller flushes. The first call reads the blobs from StateDir; blobs that
// are missing, do not parse or that the TPM rejects (a cleared TPM has a
// new SRK) are replaced by a new AK. Callers hold c.mu.
func (c *Collector) loadAK(ctx context.Context) (tpm2.TPMHandle, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("tpmimc: %w", err)
	}
	if c.ak == nil {
		ak, priv, err := c.readAK()
		switch {
		case err == nil:
			c.ak, c.akPriv = ak, priv
		case errors.Is(err, fs.ErrNotExist):
			c.log.Info("no AK yet; creating one", "alg", c.kind.alg)
		case errors.Is(err, errBadBlob):
			c.log.Warn("stored AK unusable; creating a new one", "alg", c.kind.alg, "err", err)
		default:
			return 0, err
		}
	}
	srk, err := c.srk()
	if err != nil {
		return 0, err
	}
	defer c.flush(srk.ObjectHandle)
	parent := tpm2.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name}
	if c.ak != nil {
		h, err := c.load(parent, c.ak, c.akPriv)
		if err == nil {
			return h, nil
		}
		var fmt1 tpm2.TPMFmt1Error
		if !errors.As(err, &fmt1) {
			return 0, err
		}
		c.log.Warn("TPM rejects the stored AK; creating a new one", "alg", c.kind.alg, "err", err)
		c.ak, c.akPriv = nil, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("tpmimc: %w", err)
	}
	hash, err := c.schemeHash()
	if err != nil {
		return 0, err
	}
	rsp, err := tpm2.Create{
		ParentHandle: parent,
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](akTemplate(c.kind.curve, c.kind.scheme, hash)),
	}.Execute(c.tpm)
	if err != nil {
		return 0, fmt.Errorf("tpmimc: create %s AK: %w", c.kind.alg, err)
	}
	ak, err := c.newAK(rsp.OutPublic.Bytes())
	if err != nil {
		return 0, fmt.Errorf("%w: created AK: %w", ErrBadResponse, err)
	}
	priv := clone(rsp.OutPrivate.Buffer)
	h, err := c.load(parent, ak, priv)
	if err != nil {
		return 0, err
	}
	if err := c.writeAK(ak, priv); err != nil {
		c.flush(h)
		return 0, err
	}
	c.ak, c.akPriv = ak, priv
	c.log.Info("created AK", "alg", ak.Alg, "name", fmt.Sprintf("%x", ak.Name.Buffer))
	return h, nil
}

// schemeHash picks the first of the AK kind's hashes that the TPM
// implements (TPM_CAP_ALGS, Part 2 §6.12).
func (c *Collector) schemeHash() (tpm2.TPMAlgID, error) {
	for _, h := range c.kind.hashes {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapAlgs, Property: uint32(h), PropertyCount: 1}.Execute(c.tpm)
		if err != nil {
			return 0, fmt.Errorf("tpmimc: get algorithms: %w", err)
		}
		algs, err := rsp.CapabilityData.Data.Algorithms()
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrBadResponse, err)
		}
		if len(algs.AlgProperties) > 0 && algs.AlgProperties[0].Alg == h {
			return h, nil
		}
		c.log.Info("TPM lacks the preferred AK scheme hash", "alg", c.kind.alg, "hash", fmt.Sprintf("%#04x", uint16(h)))
	}
	return 0, fmt.Errorf("tpmimc: TPM implements none of the %s AK's scheme hashes", c.kind.alg)
}

// load loads an AK under the SRK and checks the TPM computed the same Name.
func (c *Collector) load(parent tpm2.NamedHandle, ak *AK, priv []byte) (tpm2.TPMHandle, error) {
	rsp, err := tpm2.Load{
		ParentHandle: parent,
		InPrivate:    tpm2.TPM2BPrivate{Buffer: priv},
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](ak.PublicBytes),
	}.Execute(c.tpm)
	if err != nil {
		return 0, fmt.Errorf("tpmimc: load AK: %w", err)
	}
	if !bytes.Equal(rsp.Name.Buffer, ak.Name.Buffer) {
		c.flush(rsp.ObjectHandle)
		return 0, fmt.Errorf("%w: loaded AK has name %x, want %x", ErrBadResponse, rsp.Name.Buffer, ak.Name.Buffer)
	}
	return rsp.ObjectHandle, nil
}

// readAK reads the AK blobs: TPM2B_PUBLIC and TPM2B_PRIVATE, as
// tpm2_create -u and -r write them.
func (c *Collector) readAK() (*AK, []byte, error) {
	pubPath, privPath := c.akFiles()
	pub, err := readTPM2B(pubPath)
	if err != nil {
		return nil, nil, err
	}
	priv, err := readTPM2B(privPath)
	if err != nil {
		return nil, nil, err
	}
	ak, err := c.newAK(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", errBadBlob, pubPath, err)
	}
	return ak, priv, nil
}

// readTPM2B reads a file holding exactly one TPM2B and returns its
// contents.
func readTPM2B(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBlob+1))
	if err != nil {
		return nil, fmt.Errorf("tpmimc: %s: %w", path, err)
	}
	if len(b) > maxBlob {
		return nil, fmt.Errorf("%w: %s: longer than %d bytes", errBadBlob, path, maxBlob)
	}
	r := &reader{b: b}
	v := r.tpm2b("blob")
	if err := r.done("blob"); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errBadBlob, path, err)
	}
	return clone(v), nil
}

// writeAK saves the AK blobs, each written to a temporary file and renamed
// into place, the private blob last.
func (c *Collector) writeAK(ak *AK, priv []byte) error {
	pubPath, privPath := c.akFiles()
	if err := writeFileAtomic(pubPath, append2B(nil, ak.PublicBytes)); err != nil {
		return err
	}
	return writeFileAtomic(privPath, append2B(nil, priv))
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("tpmimc: %w", err)
	}
	return nil
}
