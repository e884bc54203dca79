package seal

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A key file holds keys one a line, "<id> <secret>", primary first; blank lines and lines
// starting with # are ignored. It is what [EnsureFile] generates for the embedded default.

const (
	fileMode = 0o600
	dirMode  = 0o700
)

// ParseFile reads keys in the key-file format.
func ParseFile(b []byte) ([]Key, error) {
	var keys []Key
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, secret, ok := strings.Cut(line, " ")
		secret = strings.TrimSpace(secret)
		if !ok || secret == "" {
			return nil, fmt.Errorf("line %d: want \"<key id> <secret>\"", n)
		}
		keys = append(keys, Key{ID: id, Secret: []byte(secret)})
	}
	if len(keys) == 0 {
		return nil, errors.New("no key in it")
	}
	return keys, nil
}

// LoadFile reads a key file. A file others can read is refused: the keys are secrets.
func LoadFile(path string) (*Keyring, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("record keys: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("record keys: %s is readable by others (mode %s); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("record keys: %w", err)
	}
	keys, err := ParseFile(b)
	if err != nil {
		return nil, fmt.Errorf("record keys: %s: %w", path, err)
	}
	return NewKeyring(keys...)
}

// EnsureFile returns the keyring kept in path, generating one key there when the file does
// not exist (directory 0700, file 0600). An existing file is reused, so that records written
// before a restart still verify.
func EnsureFile(path string) (*Keyring, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
			return nil, fmt.Errorf("record keys: %w", err)
		}
		key, err := GenerateKey(time.Now())
		if err != nil {
			return nil, err
		}
		// O_EXCL: two starts racing on a fresh directory must not overwrite each other's key.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
		if err == nil {
			_, werr := fmt.Fprintf(f, "# remediator record keys: <id> <secret>, primary first (generated)\n%s %s\n", key.ID, key.Secret)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return nil, fmt.Errorf("record keys: %w", werr)
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("record keys: %w", err)
		}
	}
	return LoadFile(path)
}

// GenerateKey makes a random key (256 bits, base64url text) whose id is the date.
func GenerateKey(now time.Time) (Key, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Key{}, fmt.Errorf("record keys: %w", err)
	}
	return Key{ID: "k" + now.UTC().Format("20060102"), Secret: []byte(base64.RawURLEncoding.EncodeToString(raw))}, nil
}
