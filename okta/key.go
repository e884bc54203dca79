package okta

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// minRSABits is the smallest RSA key Okta accepts for private_key_jwt.
const minRSABits = 2048

// Key is the private key that signs client assertions, with the key id Okta knows it by.
// Its String, GoString, LogValue and MarshalJSON show the key id and algorithm only, so a
// Key printed or logged by mistake gives nothing away.
type Key struct {
	id      string
	alg     jose.SignatureAlgorithm
	private crypto.Signer
}

// ParseKey reads a private key in PEM (PKCS #8, PKCS #1 "RSA PRIVATE KEY" or SEC 1
// "EC PRIVATE KEY") or as a JWK (a JSON object, as Okta's admin console generates it).
//
// kid is the key id Okta shows for the public key on the app's General tab. It may be empty
// when a JWK carries its own "kid"; when both are given they must agree. RSA keys (2048 bits
// or more) sign with RS256; EC keys on P-256, P-384 and P-521 sign with ES256, ES384 and
// ES512. Errors never quote the key material.
func ParseKey(data []byte, kid string) (*Key, error) {
	trimmed := strings.TrimSpace(string(data))
	var (
		priv   any
		jwkKid string
		err    error
	)
	switch {
	case trimmed == "":
		return nil, errors.New("private key is empty")
	case strings.HasPrefix(trimmed, "{"):
		priv, jwkKid, err = parseJWK([]byte(trimmed))
	case strings.HasPrefix(trimmed, "-----BEGIN"):
		priv, err = parsePEM([]byte(trimmed))
	default:
		return nil, errors.New("private key is neither PEM (-----BEGIN …) nor a JWK (a JSON object)")
	}
	if err != nil {
		return nil, err
	}
	switch {
	case kid == "" && jwkKid == "":
		return nil, errors.New("private key has no key id: set the key id Okta shows for the app's public key (KID)")
	case kid == "":
		kid = jwkKid
	case jwkKid != "" && jwkKid != kid:
		return nil, fmt.Errorf("key id %q is configured but the JWK says %q", kid, jwkKid)
	}
	k := &Key{id: kid}
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		if bits := p.N.BitLen(); bits < minRSABits {
			return nil, fmt.Errorf("RSA key %q has %d bits; Okta needs at least %d", kid, bits, minRSABits)
		}
		k.alg, k.private = jose.RS256, p
	case *ecdsa.PrivateKey:
		switch p.Curve {
		case elliptic.P256():
			k.alg = jose.ES256
		case elliptic.P384():
			k.alg = jose.ES384
		case elliptic.P521():
			k.alg = jose.ES512
		default:
			return nil, fmt.Errorf("EC key %q is on an unsupported curve (Okta takes P-256, P-384 or P-521)", kid)
		}
		k.private = p
	default:
		return nil, fmt.Errorf("key %q is a %T; Okta's private_key_jwt takes RSA or EC keys", kid, priv)
	}
	return k, nil
}

func parseJWK(data []byte) (any, string, error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(data, &jwk); err != nil {
		// go-jose's messages name fields, not values; still, say only what kind of thing failed.
		return nil, "", errors.New("private key JWK does not parse")
	}
	if jwk.IsPublic() {
		return nil, "", errors.New("the JWK is a public key; remediator needs the private key (the public half goes to Okta)")
	}
	return jwk.Key, jwk.KeyID, nil
}

func parsePEM(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("private key PEM does not parse")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("PKCS #8 private key does not parse")
		}
		return k, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("PKCS #1 RSA private key does not parse")
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("SEC 1 EC private key does not parse")
		}
		return k, nil
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("private key PEM is encrypted; give remediator an unencrypted key (protect it as a secret instead)")
	case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
		return nil, fmt.Errorf("PEM block is a %s; remediator needs the private key", strings.ToLower(block.Type))
	}
	return nil, fmt.Errorf("PEM block type %q is not a private key", block.Type)
}

// LoadKeyFile reads the private key from a file (see [ParseKey]). Errors name the path,
// never the contents.
func LoadKeyFile(path, kid string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("private key file %s: %w", path, err)
	}
	k, err := ParseKey(data, kid)
	if err != nil {
		return nil, fmt.Errorf("private key file %s: %w", path, err)
	}
	return k, nil
}

// LoadKeyEnv reads the private key from an environment variable (see [ParseKey]).
func LoadKeyEnv(name, kid string) (*Key, error) {
	v := os.Getenv(name)
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("environment variable %s (private key) is not set", name)
	}
	k, err := ParseKey([]byte(v), kid)
	if err != nil {
		return nil, fmt.Errorf("private key in %s: %w", name, err)
	}
	return k, nil
}

// ID returns the key id sent as the assertion's "kid" header.
func (k *Key) ID() string { return k.id }

// Algorithm returns the JWS algorithm, such as "RS256" or "ES256".
func (k *Key) Algorithm() string { return string(k.alg) }

// PublicJWK returns the public half as a JWK (with kid, alg and use "sig"), the form Okta's
// admin console takes under the app's Public keys.
func (k *Key) PublicJWK() ([]byte, error) {
	return json.Marshal(jose.JSONWebKey{Key: k.private.Public(), KeyID: k.id, Algorithm: string(k.alg), Use: "sig"})
}

// String describes the key without its material.
func (k *Key) String() string {
	if k == nil {
		return "okta.Key(nil)"
	}
	return fmt.Sprintf("okta.Key{kid=%q, alg=%s}", k.id, k.alg)
}

// GoString is String, so %#v hides the material too.
func (k *Key) GoString() string { return k.String() }

// LogValue logs the key id and algorithm only.
func (k *Key) LogValue() slog.Value {
	if k == nil {
		return slog.StringValue("none")
	}
	return slog.GroupValue(slog.String("kid", k.id), slog.String("alg", string(k.alg)))
}

// MarshalJSON writes the key id and algorithm only.
func (k *Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"kid": k.id, "alg": string(k.alg)})
}

// Format makes every fmt verb print String, so %v, %+v and %x hide the material.
func (k *Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

var (
	_ slog.LogValuer = (*Key)(nil)
	_ fmt.Formatter  = (*Key)(nil)
)
