package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/worker"
)

// Switch kinds: the brakes an operator pulls.
const (
	Pause  = "pause"  // hold dispatching; events wait in JetStream
	DryRun = "dryrun" // record would-be invocations instead of making them
)

// AllFlows is the flow name that stands for every flow.
const AllFlows = worker.AllFlows

// Switch is one change of a brake.
type Switch struct {
	Kind string // Pause or DryRun
	Flow string // a flow name, or AllFlows
	On   bool
	// Reason is recorded with the switch and in the audit.
	Reason string
}

// Action names the change as its audit record does: flows.pause, flows.resume,
// flows.dry-run.on, flows.dry-run.off.
func (s Switch) Action() string {
	switch {
	case s.Kind == Pause && s.On:
		return "flows.pause"
	case s.Kind == Pause:
		return "flows.resume"
	case s.On:
		return "flows.dry-run.on"
	}
	return "flows.dry-run.off"
}

func (s Switch) key() (string, error) {
	if s.Flow == "" {
		return "", errors.New("name one flow, or every flow")
	}
	switch s.Kind {
	case Pause:
		return worker.PauseKey(s.Flow), nil
	case DryRun:
		return worker.DryRunKey(s.Flow), nil
	}
	return "", fmt.Errorf("unknown switch %q: want %s or %s", s.Kind, Pause, DryRun)
}

// Operator is who changes something, for the audit.
type Operator struct {
	User string // login, token name or OS user
	// Via is the front end: "cli" or "console". Optional.
	Via string
}

// SwitchAudit is the audit record of a switch, on remediation.audit.<action>.
type SwitchAudit struct {
	Action string    `json:"action"` // flows.pause, flows.resume, flows.dry-run.on, flows.dry-run.off
	Flow   string    `json:"flow"`   // a flow name, or _all
	User   string    `json:"user"`
	Via    string    `json:"via,omitempty"`
	Host   string    `json:"host,omitempty"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// AuditSubjectPrefix starts every audit subject (stream REMEDIATION_AUDIT).
const AuditSubjectPrefix = "remediation.audit."

// SetSwitch turns a brake on or off on every replica (through the controls bucket) and
// records who did it on the audit stream. A switch that is set but whose audit record could
// not be stored is reported as an error saying so.
func (o *Ops) SetSwitch(ctx context.Context, s Switch, by Operator) error {
	key, err := s.key()
	if err != nil {
		return err
	}
	kv, err := o.b.OpenKeyValue(ctx, worker.ControlsBucket)
	if err != nil {
		return err
	}
	var ctl *worker.Control
	if s.On {
		ctl = &worker.Control{By: by.User, At: time.Now().UTC(), Reason: s.Reason}
	}
	if err := o.writeSwitch(ctx, kv, key, ctl); err != nil {
		return fmt.Errorf("%s %s: %w", s.Action(), s.Flow, err)
	}
	rec, _ := json.Marshal(SwitchAudit{Action: s.Action(), Flow: s.Flow, User: by.User, Via: by.Via, Host: o.host, At: time.Now().UTC(), Reason: s.Reason})
	if _, err := o.b.Publish(ctx, AuditSubjectPrefix+s.Action(), rec, broker.PublishOptions{}); err != nil {
		return fmt.Errorf("the switch is set, but its audit record could not be stored: %w", o.explain(err, broker.StreamAudit))
	}
	return nil
}

// writeSwitch is the one place a switch value is written: sealed with the primary record key,
// as workers obey no other (a nil value switches off).
func (o *Ops) writeSwitch(ctx context.Context, kv *broker.KV, key string, value *worker.Control) error {
	if o.keys == nil && value != nil {
		return errors.New("no record keys to seal the switch with: workers ignore an unsealed switch")
	}
	return worker.SetSignedControl(ctx, kv, o.keys, key, value)
}

// readSwitch is the one place a switch value is read, the counterpart of writeSwitch. A value
// that does not verify is reported with why: workers ignore it (and audit it as written by an
// unknown writer), so it is shown, never taken for a switch in force.
func (o *Ops) readSwitch(key string, value []byte) (ctl worker.Control, unverified string) {
	ctl, err := worker.DecodeControl(o.keys, key, value)
	if err != nil {
		var raw worker.Control
		_ = json.Unmarshal(value, &raw)
		return raw, err.Error()
	}
	return ctl, ""
}

// SwitchState is a brake that is on.
type SwitchState struct {
	Kind           string `json:"kind"` // Pause or DryRun
	Flow           string `json:"flow"` // a flow name, or AllFlows
	worker.Control        // who set it, when and why
	// Unverified says why the value does not verify with the record keys: workers ignore it.
	Unverified string `json:"unverified,omitempty"`
}

// Switches lists the brakes that are on, by key order.
func (o *Ops) Switches(ctx context.Context) ([]SwitchState, error) {
	kv, err := o.b.OpenKeyValue(ctx, worker.ControlsBucket)
	if errors.Is(err, broker.ErrStreamNotFound) {
		return nil, nil // no worker has started yet: nothing is switched
	}
	if err != nil {
		return nil, err
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		return nil, err
	}
	var out []SwitchState
	for _, k := range keys {
		kind, flow, ok := strings.Cut(k, ".")
		if !ok || (kind != Pause && kind != DryRun) {
			continue
		}
		v, _, err := kv.Get(ctx, k)
		if errors.Is(err, broker.ErrKeyNotFound) {
			continue // switched off meanwhile
		}
		if err != nil {
			return nil, err
		}
		ctl, why := o.readSwitch(k, v)
		out = append(out, SwitchState{Kind: kind, Flow: flow, Control: ctl, Unverified: why})
	}
	return out, nil
}
