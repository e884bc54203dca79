package seal_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/remediator/remediator/seal"
)

func ring(t testing.TB, ids ...string) *seal.Keyring {
	t.Helper()
	var keys []seal.Key
	for _, id := range ids {
		keys = append(keys, seal.Key{ID: id, Secret: []byte(strings.Repeat(id, 40)[:40])})
	}
	k, err := seal.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRecordMAC(t *testing.T) {
	t.Parallel()
	k := ring(t, "a")
	subject, body := "remediation.status.failed", []byte(`{"outcome":"failed"}`)
	mac := k.SignRecord(subject, body)
	if kid, err := k.VerifyRecord(subject, body, mac); err != nil || kid != "a" {
		t.Fatalf("own record: kid %q, err %v", kid, err)
	}
	for _, tc := range []struct {
		name         string
		subject, mac string
		body         []byte
		ring         *seal.Keyring
		want         error
	}{
		{"no MAC", subject, "", body, k, seal.ErrUnsigned},
		{"moved to another subject", "remediation.status.succeeded", mac, body, k, seal.ErrBadMAC},
		{"altered body", subject, mac, []byte(`{"outcome":"succeeded"}`), k, seal.ErrBadMAC},
		{"unknown key", subject, "zz:" + strings.SplitN(mac, ":", 2)[1], body, k, seal.ErrUnknownKey},
		{"another keyring with the same id", subject, mac, body, func() *seal.Keyring {
			r, _ := seal.NewKeyring(seal.Key{ID: "a", Secret: []byte(strings.Repeat("x", 32))})
			return r
		}(), seal.ErrBadMAC},
		{"garbage", subject, "not a mac", body, k, seal.ErrBadMAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.ring.VerifyRecord(tc.subject, tc.body, tc.mac)
			if !errors.Is(err, tc.want) || !errors.Is(err, seal.ErrUnverified) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestValueEnvelope(t *testing.T) {
	t.Parallel()
	k := ring(t, "a")
	sealed, err := k.SealValue("remediation_controls", "pause.x", []byte(`{ "by": "alice" }`))
	if err != nil {
		t.Fatal(err)
	}
	v, kid, err := k.OpenValue("remediation_controls", "pause.x", sealed)
	if err != nil || kid != "a" || string(v) != `{"by":"alice"}` {
		t.Fatalf("open: %s %q %v", v, kid, err)
	}
	if _, _, err := k.OpenValue("remediation_controls", "dryrun._all", sealed); !errors.Is(err, seal.ErrBadMAC) {
		t.Fatalf("value copied to another key: %v", err)
	}
	if _, _, err := k.OpenValue("remediation_controls", "pause.x", []byte(`{"by":"mallory"}`)); !errors.Is(err, seal.ErrUnsigned) {
		t.Fatalf("bare value: %v", err)
	}
	tampered := strings.Replace(string(sealed), "alice", "mallo", 1)
	if _, _, err := k.OpenValue("remediation_controls", "pause.x", []byte(tampered)); !errors.Is(err, seal.ErrBadMAC) {
		t.Fatalf("tampered value: %v", err)
	}
}

// Rotation: a new primary signs, the old key still verifies, and once the old key is
// retired what it signed no longer does.
func TestRotation(t *testing.T) {
	t.Parallel()
	old := ring(t, "k1")
	rotated := ring(t, "k2", "k1")
	retired := ring(t, "k2")
	mac := old.SignRecord("s", []byte("b"))
	if kid, err := rotated.VerifyRecord("s", []byte("b"), mac); err != nil || kid != "k1" {
		t.Fatalf("old MAC after rotation: %q %v", kid, err)
	}
	if got := rotated.SignRecord("s", []byte("b")); !strings.HasPrefix(got, "k2:") {
		t.Fatalf("rotated keyring signs with %q", got)
	}
	if _, err := retired.VerifyRecord("s", []byte("b"), mac); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("retired key: %v", err)
	}
	h := old.Hash("e1", "flow")
	if rotated.HashedBy(h, "e1", "flow") != "k1" || retired.HashedBy(h, "e1", "flow") != "" {
		t.Fatal("HashedBy does not follow the keys held")
	}
	if rotated.Hash("e1", "flow") == h {
		t.Fatal("a new primary must hash differently")
	}
}

func TestNewKeyringRefuses(t *testing.T) {
	t.Parallel()
	long := []byte(strings.Repeat("s", 32))
	for name, keys := range map[string][]seal.Key{
		"none":         nil,
		"short secret": {{ID: "a", Secret: []byte("short")}},
		"bad id":       {{ID: "a b", Secret: long}},
		"twice":        {{ID: "a", Secret: long}, {ID: "a", Secret: long}},
	} {
		if _, err := seal.NewKeyring(keys...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEnsureFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "credentials", "record-keys")
	k1, err := seal.EnsureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	k2, err := seal.EnsureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.VerifyRecord("s", nil, k1.SignRecord("s", nil)); err != nil {
		t.Fatalf("the key is not kept across starts: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.LoadFile(path); err == nil {
		t.Fatal("a key file others can read was accepted")
	}
	if s := fmt.Sprint(k1); strings.Contains(s, "secret") || !strings.Contains(s, k1.Primary()) {
		t.Fatalf("String: %s", s)
	}
}

func FuzzOpenValue(f *testing.F) {
	k := ring(f, "a")
	good, _ := k.SealValue("b", "k", []byte(`{}`))
	f.Add(good)
	f.Add([]byte(`{"mac":"a:","value":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = k.OpenValue("b", "k", b)
		_, _ = k.VerifyRecord("s", b, string(b))
		_, _ = seal.ParseFile(b)
	})
}

func ExampleKeyring_SignRecord() {
	k, _ := seal.NewKeyring(seal.Key{ID: "k2026", Secret: []byte("0123456789abcdef0123456789abcdef")})
	mac := k.SignRecord("remediation.status.succeeded", []byte(`{}`))
	_, err := k.VerifyRecord("remediation.status.failed", []byte(`{}`), mac)
	fmt.Println(err)
	// Output: MAC does not match the content (key id "k2026")
}
