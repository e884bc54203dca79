package seal

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// Header is the stream-record header that carries the MAC.
const Header = "Remediator-Mac"

// MinSecretBytes is the shortest secret a key may have: 256 bits, HMAC-SHA256's own size.
const MinSecretBytes = 32

// Errors of verification. A record that fails verification matches [ErrUnverified] and one
// of the others.
var (
	// ErrUnverified is matched by every verification failure.
	ErrUnverified = errors.New("record not verified")
	// ErrUnsigned: the record carries no MAC at all.
	ErrUnsigned = errors.New("no MAC: the record was not written by remediator")
	// ErrUnknownKey: the MAC names a key id the keyring does not hold (a retired key, or a
	// made-up one).
	ErrUnknownKey = errors.New("MAC made with a key this keyring does not hold")
	// ErrBadMAC: the MAC does not match the content (forged, altered or moved).
	ErrBadMAC = errors.New("MAC does not match the content")
)

// VerifyError says why a record did not verify. It matches [ErrUnverified] and its cause.
type VerifyError struct {
	// KeyID is the key id the MAC names, if any.
	KeyID string
	Err   error
}

func (e *VerifyError) Error() string {
	if e.KeyID != "" {
		return fmt.Sprintf("%v (key id %q)", e.Err, e.KeyID)
	}
	return e.Err.Error()
}

func (e *VerifyError) Unwrap() []error { return []error{ErrUnverified, e.Err} }

func verifyErr(kid string, err error) error { return &VerifyError{KeyID: kid, Err: err} }

// Key is one record key: an id (named in every MAC it makes) and its secret.
type Key struct {
	ID     string
	Secret []byte
}

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Keyring holds the record keys. It is immutable and safe for concurrent use.
type Keyring struct {
	ids  []string
	keys map[string][]byte
}

// NewKeyring returns a keyring whose primary (signing) key is the first. Ids must be unique,
// 1-32 letters, digits, '-' or '_'; secrets at least [MinSecretBytes] long.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no record key")
	}
	k := &Keyring{keys: map[string][]byte{}}
	for i, key := range keys {
		switch {
		case !keyIDRE.MatchString(key.ID):
			return nil, fmt.Errorf("seal: key %d: id %q must be 1-32 letters, digits, '-' or '_'", i, key.ID)
		case k.keys[key.ID] != nil:
			return nil, fmt.Errorf("seal: key id %q is given twice", key.ID)
		case len(key.Secret) < MinSecretBytes:
			return nil, fmt.Errorf("seal: key %q: the secret is %d bytes; it must be at least %d", key.ID, len(key.Secret), MinSecretBytes)
		}
		k.ids = append(k.ids, key.ID)
		k.keys[key.ID] = append([]byte(nil), key.Secret...)
	}
	return k, nil
}

// Primary is the id of the key that signs.
func (k *Keyring) Primary() string { return k.ids[0] }

// IDs are the key ids, primary first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.ids...) }

// String shows the key ids, never a secret.
func (k *Keyring) String() string { return "keyring[" + strings.Join(k.ids, ",") + "]" }

// LogValue shows the key ids, never a secret.
func (k *Keyring) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Domains keep a MAC of one kind from verifying as another.
const (
	domainRecord = "remediator/record/v1"
	domainValue  = "remediator/kv/v1"
	domainHash   = "remediator/hash/v1"
)

// mac computes HMAC-SHA256 with key over the domain and parts, each length-prefixed so that
// no two different inputs run together the same way.
func mac(key []byte, domain string, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	var n [8]byte
	for _, p := range append([][]byte{[]byte(domain)}, parts...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}

var b64 = base64.RawURLEncoding

// format renders a MAC as "<key id>:<base64url>".
func format(kid string, sum []byte) string { return kid + ":" + b64.EncodeToString(sum) }

// check verifies a "<key id>:<base64url>" MAC over domain and parts.
func (k *Keyring) check(value, domain string, parts ...[]byte) (string, error) {
	if value == "" {
		return "", verifyErr("", ErrUnsigned)
	}
	kid, enc, ok := strings.Cut(value, ":")
	if !ok {
		return "", verifyErr("", ErrBadMAC)
	}
	key := k.keys[kid]
	if key == nil {
		return kid, verifyErr(kid, ErrUnknownKey)
	}
	got, err := b64.DecodeString(enc)
	if err != nil || !hmac.Equal(got, mac(key, domain, parts...)) {
		return kid, verifyErr(kid, ErrBadMAC)
	}
	return kid, nil
}

// SignRecord returns the [Header] value for a stream record: a MAC, with the primary key,
// over the subject and the body.
func (k *Keyring) SignRecord(subject string, body []byte) string {
	kid := k.ids[0]
	return format(kid, mac(k.keys[kid], domainRecord, []byte(subject), body))
}

// VerifyRecord checks the MAC of a stream record (the [Header] value; "" when absent) against
// its subject and body. It returns the id of the key that made it.
func (k *Keyring) VerifyRecord(subject string, body []byte, mac string) (string, error) {
	return k.check(mac, domainRecord, []byte(subject), body)
}

// VerifyHeader is [Keyring.VerifyRecord] with the MAC taken from a message header (the
// first [Header] value, matched case-insensitively).
func (k *Keyring) VerifyHeader(subject string, body []byte, header map[string][]string) (string, error) {
	return k.VerifyRecord(subject, body, HeaderValue(header))
}

// HeaderValue is the MAC a header carries ("" when none).
func HeaderValue(h map[string][]string) string {
	if v := h[Header]; len(v) > 0 {
		return v[0]
	}
	for name, v := range h {
		if strings.EqualFold(name, Header) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// envelope is a sealed KV value.
type envelope struct {
	MAC   string          `json:"mac"`
	Value json.RawMessage `json:"value"`
}

// SealValue wraps a JSON value for the KV key bucket/key: {"mac": …, "value": <value>}, the
// MAC (primary key) bound to the bucket, the key and the value.
func (k *Keyring) SealValue(bucket, key string, value []byte) ([]byte, error) {
	if !json.Valid(value) {
		return nil, fmt.Errorf("seal: the value of %s/%s is not JSON", bucket, key)
	}
	compact, err := compactJSON(value)
	if err != nil {
		return nil, err
	}
	kid := k.ids[0]
	return json.Marshal(envelope{MAC: format(kid, mac(k.keys[kid], domainValue, []byte(bucket), []byte(key), compact)), Value: compact})
}

// compactJSON is the form of a value json.Marshal stores inside the envelope, so that the
// bytes read back are the bytes sealed.
func compactJSON(v []byte) ([]byte, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// OpenValue checks a sealed KV value read from bucket/key and returns the value inside and
// the id of the key that sealed it. A value that is not an envelope is [ErrUnsigned].
func (k *Keyring) OpenValue(bucket, key string, sealed []byte) ([]byte, string, error) {
	var env envelope
	if err := json.Unmarshal(sealed, &env); err != nil || env.MAC == "" || len(env.Value) == 0 {
		return nil, "", verifyErr("", ErrUnsigned)
	}
	kid, err := k.check(env.MAC, domainValue, []byte(bucket), []byte(key), env.Value)
	if err != nil {
		return nil, kid, err
	}
	return env.Value, kid, nil
}

// Hash is a keyed hash of parts (primary key), 128 bits in hex: a name outsiders cannot
// predict, such as a job key.
func (k *Keyring) Hash(parts ...string) string {
	return k.HashWith(k.ids[0], parts...)
}

// HashWith is [Keyring.Hash] with the key kid; "" when the keyring does not hold it.
func (k *Keyring) HashWith(kid string, parts ...string) string {
	key := k.keys[kid]
	if key == nil {
		return ""
	}
	bs := make([][]byte, len(parts))
	for i, p := range parts {
		bs[i] = []byte(p)
	}
	return hex.EncodeToString(mac(key, domainHash, bs...)[:16])
}

// HashedBy returns the id of the key whose [Keyring.HashWith] of parts is h; "" when none.
func (k *Keyring) HashedBy(h string, parts ...string) string {
	for _, kid := range k.ids {
		if hmac.Equal([]byte(k.HashWith(kid, parts...)), []byte(h)) {
			return kid
		}
	}
	return ""
}
