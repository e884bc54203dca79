package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Role is one of the three kinds of NATS client of remediator. Each has its
// own credentials and only the subjects its work needs (issue 13): whoever
// holds a publisher's credentials can hand in findings but cannot forge a
// dispatch job, a status, a dead letter, an audit record or a switch.
type Role string

const (
	// RoleWorker is `remediator run`: it provisions and consumes the streams,
	// writes jobs, statuses, dead letters and the KV buckets, and hears the
	// max-deliveries advisories.
	RoleWorker Role = "worker"
	// RoleOperator is the CLI: it reads every stream, replays (publishes on
	// remediation.events.>), deletes dead letters, sets switches and writes
	// audit records. It cannot publish jobs, statuses or dead letters.
	RoleOperator Role = "operator"
	// RolePublisher publishes findings on remediation.events.ispm and
	// remediation.events.itp, and nothing else.
	RolePublisher Role = "publisher"
)

// Roles lists the three roles.
var Roles = []Role{RoleWorker, RoleOperator, RolePublisher}

// InboxPrefix is the reply-subject prefix a role's connections use. Each role
// may subscribe only to its own prefix, so that a publisher cannot listen to
// the replies an operator gets (stream contents) or a worker gets: with the
// shared _INBOX.> anyone allowed to subscribe there reads every reply.
func (r Role) InboxPrefix() string { return "_INBOX_" + string(r) }

// KVBuckets are the key-value buckets remediator keeps (packages worker and backfill name
// them; a test checks the two lists agree).
var KVBuckets = []string{"remediation_jobs", "remediation_budgets", "remediation_controls", KVBackfill}

// controlsBucket is the switches' bucket, the only one an operator writes.
const controlsBucket = "remediation_controls"

// RolePermissions are the subjects a role may publish on and subscribe to.
// Everything else is denied by the server.
type RolePermissions struct {
	Publish   []string
	Subscribe []string
}

// Permissions returns the subjects role needs, on remediator's own streams
// and buckets only. The JetStream API is reached by publishing requests on
// $JS.API.<op>.<stream>…; the list grants each operation on the streams it is
// needed for, not $JS.API.> as a whole.
func Permissions(role Role) RolePermissions {
	streams := []string{StreamEvents, StreamDispatch, StreamStatus, StreamDLQ, StreamAudit}
	var kvStreams []string
	for _, b := range KVBuckets {
		kvStreams = append(kvStreams, "KV_"+b)
	}
	all := append(slices.Clone(streams), kvStreams...)
	inbox := []string{role.InboxPrefix() + ".>"}

	// reading: stream and consumer info, single messages (direct or through
	// the API), and short-lived ordered consumers (Scan, Tail, KV watches and
	// key listings), which are created, pulled, flow-controlled and deleted.
	read := func(names []string) []string {
		var s []string
		for _, n := range names {
			s = append(s,
				"$JS.API.STREAM.INFO."+n,
				"$JS.API.STREAM.MSG.GET."+n,
				"$JS.API.DIRECT.GET."+n, "$JS.API.DIRECT.GET."+n+".>",
				"$JS.API.CONSUMER.CREATE."+n, "$JS.API.CONSUMER.CREATE."+n+".>",
				"$JS.API.CONSUMER.INFO."+n+".*",
				"$JS.API.CONSUMER.LIST."+n,
				"$JS.API.CONSUMER.MSG.NEXT."+n+".*",
				"$JS.API.CONSUMER.DELETE."+n+".*",
				"$JS.FC."+n+".>",
			)
		}
		return s
	}

	switch role {
	case RoleWorker:
		pub := []string{
			"remediation.>", // events (the ingress), jobs, statuses, dead letters, audit
			"$JS.API.INFO",
		}
		for _, b := range KVBuckets {
			pub = append(pub, "$KV."+b+".>")
		}
		pub = append(pub, read(all)...)
		for _, n := range all {
			pub = append(pub,
				"$JS.API.STREAM.CREATE."+n, "$JS.API.STREAM.UPDATE."+n,
				"$JS.API.CONSUMER.DURABLE.CREATE."+n+".*",
				"$JS.ACK."+n+".>", // ack, nak, term, in progress
			)
		}
		return RolePermissions{
			Publish: pub,
			// SubjectsDispatch: the dispatch doorbell (Broker.Doorbell), so that idle flows
			// are not polled.
			Subscribe: append(inbox, maxDeliveriesSubject, SubjectsDispatch),
		}
	case RoleOperator:
		pub := []string{
			"remediation.events.>", // dlq replay
			"remediation.audit.>",  // who replayed, purged or switched what
			"$KV." + controlsBucket + ".>",
			"$JS.API.INFO",
			"$JS.API.STREAM.MSG.DELETE." + StreamDLQ, // dlq purge
			// nats stream ls, nats kv ls: the names and states of the account's streams
			"$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST",
		}
		pub = append(pub, read(all)...)
		// remediation.>: nats sub shows what the streams store, which the operator may read
		// anyway.
		return RolePermissions{Publish: pub, Subscribe: append(inbox, "remediation.>")}
	case RolePublisher:
		// A JetStream publish is a request: the ack comes back on the
		// publisher's inbox, so that is all it subscribes to. No $JS.API
		// subject at all: publishing needs none.
		return RolePermissions{
			Publish:   []string{"remediation.events.ispm", "remediation.events.itp"},
			Subscribe: inbox,
		}
	}
	return RolePermissions{}
}

// serverPermissions converts p for nats-server.
func (p RolePermissions) serverPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: slices.Clone(p.Publish)},
		Subscribe: &server.SubjectPermission{Allow: slices.Clone(p.Subscribe)},
	}
}

// Credentials are the NKey seeds of the three roles, one file per role in a
// directory only the owner can read. The embedded server admits exactly
// their public keys, each with its role's permissions.
type Credentials struct {
	dir     string
	publics map[Role]string
}

// credential file modes: the seeds are secrets.
const (
	credentialsDirMode  fs.FileMode = 0o700
	credentialsFileMode fs.FileMode = 0o600
)

// EnsureCredentials returns the credentials kept in dir, generating the
// seeds that are missing (directory mode 0700, files 0600). Existing seeds
// are reused, so that clients keep working across restarts. A seed file that
// cannot be parsed, or that others can read, is an error rather than
// silently replaced or used.
func EnsureCredentials(dir string) (*Credentials, error) {
	if err := os.MkdirAll(dir, credentialsDirMode); err != nil {
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	// MkdirAll keeps the mode of an existing directory; tighten it.
	if err := os.Chmod(dir, credentialsDirMode); err != nil {
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	c := &Credentials{dir: dir, publics: map[Role]string{}}
	for _, r := range Roles {
		pub, err := ensureSeed(c.File(r))
		if err != nil {
			return nil, fmt.Errorf("NATS credentials of role %s: %w", r, err)
		}
		c.publics[r] = pub
	}
	return c, nil
}

// ensureSeed reads the user seed in path, or creates it, and returns its
// public key.
func ensureSeed(path string) (string, error) {
	seed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return "", err
		}
		seed, err = kp.Seed()
		if err != nil {
			return "", err
		}
		// O_EXCL: two starts racing on a fresh directory must not overwrite
		// each other's seed (the store lock normally prevents it anyway).
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, credentialsFileMode)
		if err != nil {
			return "", err
		}
		_, werr := f.Write(append(seed, '\n'))
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", werr
		}
		return kp.PublicKey()
	}
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is readable by others (mode %s); chmod 600 it", path, fi.Mode().Perm())
	}
	kp, err := nkeys.ParseDecoratedNKey(seed)
	if err != nil {
		return "", fmt.Errorf("%s holds no NKey seed: %w", path, err)
	}
	return kp.PublicKey()
}

// Dir is the directory holding the seed files.
func (c *Credentials) Dir() string { return c.dir }

// File is the NKey seed file of role, for [ConnConfig.NKeyFile].
func (c *Credentials) File(r Role) string {
	return filepath.Join(c.dir, string(r)+".nk")
}

// CredentialsFile is where [EnsureCredentials] keeps role's seed in dir; a
// client uses it without generating anything.
func CredentialsFile(dir string, r Role) string {
	return (&Credentials{dir: dir}).File(r)
}

// ConnConfigFor sets role's seed file and inbox prefix on cc, replacing any
// other credentials cc names.
func (c *Credentials) ConnConfigFor(r Role, cc ConnConfig) ConnConfig {
	cc.CredsFile, cc.User, cc.Password, cc.Token = "", "", "", ""
	cc.NKeyFile = c.File(r)
	cc.InboxPrefix = r.InboxPrefix()
	return cc
}

// nkeyUsers are the server's users: one per role, with its permissions.
func (c *Credentials) nkeyUsers() []*server.NkeyUser {
	var users []*server.NkeyUser
	for _, r := range Roles {
		users = append(users, &server.NkeyUser{Nkey: c.publics[r], Permissions: Permissions(r).serverPermissions()})
	}
	return users
}

// natsContext is the nats CLI's context file (nats context save writes the
// same fields).
type natsContext struct {
	Description string `json:"description"`
	URL         string `json:"url"`
	NKey        string `json:"nkey"`
	InboxPrefix string `json:"inbox_prefix"`
}

// WriteNATSContext writes a nats CLI context for role at url into path
// (mode 0600): `nats --context` with it connects as that role.
func (c *Credentials) WriteNATSContext(path, url string, r Role) error {
	data, err := json.MarshalIndent(natsContext{
		Description: "remediator embedded NATS, role " + string(r),
		URL:         url, NKey: c.File(r), InboxPrefix: r.InboxPrefix(),
	}, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), credentialsFileMode); err != nil {
		return fmt.Errorf("nats context: %w", err)
	}
	if err := os.Chmod(tmp, credentialsFileMode); err != nil {
		return fmt.Errorf("nats context: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("nats context: %w", err)
	}
	return nil
}
