package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/remediator/remediator/seal"
)

// Only switch values sealed with a record key for their own key count; one that is not keeps
// the switch as it was and says why; a delete turns it off (issue 13).
func TestControlsObeyOnlySealedValues(t *testing.T) {
	t.Parallel()
	keys := keysForTests()
	c := newControls(keys)
	pause := PauseKey("f")
	sealed, err := EncodeControl(keys, pause, Control{By: "alice", At: time.Unix(1700000000, 0).UTC(), Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	if ch := c.apply(pause, sealed, false); ch.Err != nil || ch.New == nil || ch.New.By != "alice" || ch.Old != nil {
		t.Fatalf("sealed value: %+v", ch)
	}
	if by, ok := c.paused("f"); !ok || by.By != "alice" {
		t.Fatal("a sealed pause is not in force")
	}
	// Forged over it: ignored, the pause stays, the change says why.
	ch := c.apply(pause, []byte(`{"by":"mallory"}`), false)
	if !errors.Is(ch.Err, seal.ErrUnsigned) || ch.New == nil || ch.New.By != "alice" || string(ch.Raw) != `{"by":"mallory"}` {
		t.Fatalf("forged value over a pause: %+v", ch)
	}
	if _, ok := c.paused("f"); !ok {
		t.Fatal("a forged value lifted the pause")
	}
	// A sealed value copied to another key (dry-run everything) does not verify there.
	if ch := c.apply(DryRunKey(AllFlows), sealed, false); !errors.Is(ch.Err, seal.ErrBadMAC) {
		t.Fatalf("a value moved to another key: %+v", ch)
	}
	if c.dryRun("f") {
		t.Fatal("a moved value turned dry-run on")
	}
	// Signed with a key the workers do not hold: ignored.
	other, _ := seal.NewKeyring(seal.Key{ID: "test1", Secret: []byte("not-the-deployment-record-key-0123456789")})
	guessed, _ := EncodeControl(other, DryRunKey("f"), Control{By: "mallory"})
	if ch := c.apply(DryRunKey("f"), guessed, false); !errors.Is(ch.Err, seal.ErrBadMAC) || c.dryRun("f") {
		t.Fatalf("a value sealed with another key: %+v", ch)
	}
	// A delete turns the switch off.
	if ch := c.apply(pause, nil, true); ch.Err != nil || ch.Old == nil || !ch.Deleted {
		t.Fatalf("delete: %+v", ch)
	}
	if _, ok := c.paused("f"); ok {
		t.Fatal("the pause survived its delete")
	}
}
