package pdp

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"trustnac/transport/eap/mschapv2"
)

// Password hashes in a users file: "pbkdf2-sha256$<iterations>$<salt>$<key>"
// with salt and key in unpadded standard base64. `nac passwd` makes them.
const (
	hashScheme        = "pbkdf2-sha256"
	DefaultIterations = 210_000
	maxIterations     = 10_000_000
	maxUsersFile      = 4 << 20
)

// Users are the accounts the PDP authenticates (SASL PLAIN over PT-TLS).
type Users struct {
	hashes map[string]passwordHash
	dummy  passwordHash // checked for unknown names, so they cost the same
}

type passwordHash struct {
	iter      int
	salt, key []byte
	nt        []byte // NT hash (MD4 of the UTF-16LE password) for ntScheme entries
}

// ntScheme marks an NT-hash entry, "nthash$<32 hex>": MD4 of the UTF-16LE
// password, unsalted. It is what EAP-MSCHAPv2 needs and is much weaker than
// pbkdf2-sha256 if the file leaks; use it only for accounts that must do
// MSCHAPv2. `nac passwd --nthash` makes it.
const ntScheme = "nthash"

// LoadUsers reads a users file:
//
//	users:
//	  alice: "pbkdf2-sha256$210000$...$..."
//
// Unknown fields and malformed hashes are errors naming the user.
func LoadUsers(path string) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pdp: users: %w", err)
	}
	if len(data) > maxUsersFile {
		return nil, fmt.Errorf("pdp: users %s: larger than %d bytes", path, maxUsersFile)
	}
	var f struct {
		Users map[string]string `yaml:"users"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("pdp: users %s: %w", path, err)
	}
	u := &Users{hashes: make(map[string]passwordHash, len(f.Users))}
	for name, h := range f.Users {
		ph, err := parseHash(h)
		if err != nil {
			return nil, fmt.Errorf("pdp: users %s: user %q: %w", path, name, err)
		}
		u.hashes[name] = ph
		if ph.nt == nil {
			u.dummy = passwordHash{iter: ph.iter, salt: make([]byte, len(ph.salt)), key: make([]byte, len(ph.key))}
		}
	}
	return u, nil
}

func parseHash(s string) (passwordHash, error) {
	if hexs, ok := strings.CutPrefix(s, ntScheme+"$"); ok {
		nt, err := hex.DecodeString(hexs)
		if err != nil || len(nt) != 16 {
			return passwordHash{}, fmt.Errorf("want %s$<32 hex digits>", ntScheme)
		}
		return passwordHash{nt: nt}, nil
	}
	parts := strings.Split(s, "$")
	if len(parts) != 4 || parts[0] != hashScheme {
		return passwordHash{}, fmt.Errorf("want %s$<iterations>$<salt>$<key>", hashScheme)
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1000 || iter > maxIterations {
		return passwordHash{}, fmt.Errorf("iterations %q: want 1000 to %d", parts[1], maxIterations)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil || len(salt) < 8 {
		return passwordHash{}, errors.New("salt: want at least 8 bytes in base64")
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[3])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return passwordHash{}, errors.New("key: want 16 to 64 bytes in base64")
	}
	return passwordHash{iter: iter, salt: salt, key: key}, nil
}

// Verify reports whether password is name's.
func (u *Users) Verify(name, password string) bool {
	ph, ok := u.hashes[name]
	if !ok {
		ph = u.dummy
	}
	if ph.nt != nil {
		return subtle.ConstantTimeCompare(mschapv2.NTHash(password), ph.nt) == 1 && ok
	}
	if ph.iter == 0 {
		return false
	}
	key, err := pbkdf2.Key(sha256.New, password, ph.salt, ph.iter, len(ph.key))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(key, ph.key) == 1 && ok
}

// NTHash returns name's NT hash for EAP-MSCHAPv2; false when the user is
// unknown or has no NT-hash entry.
func (u *Users) NTHash(name string) ([]byte, bool) {
	ph, ok := u.hashes[name]
	if !ok || ph.nt == nil {
		return nil, false
	}
	return ph.nt, true
}

// HashNT returns the users-file NT-hash form of password.
func HashNT(password string) string {
	return ntScheme + "$" + hex.EncodeToString(mschapv2.NTHash(password))
}

// Len is the number of users.
func (u *Users) Len() int { return len(u.hashes) }

// HashPassword returns the users-file form of password.
func HashPassword(password string, iterations int) (string, error) {
	if iterations < 1000 || iterations > maxIterations {
		return "", fmt.Errorf("pdp: iterations: want 1000 to %d", maxIterations)
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, 32)
	if err != nil {
		return "", fmt.Errorf("pdp: %w", err)
	}
	return fmt.Sprintf("%s$%d$%s$%s", hashScheme, iterations,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}
