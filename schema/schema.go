package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/remediator/remediator/event"
)

// MaxDocumentBytes is the largest document Validate and ValidateShape accept. A larger one
// is refused unread with a *SyntaxError that matches ErrTooLarge: past the limit the
// validator does not know whether the bytes are JSON at all. ISPM's and ITP's documents are
// a few kilobytes; JetStream's default maximum message size is 1 MiB as well.
const MaxDocumentBytes = 1 << 20

//go:embed *.json
var files embed.FS

// shapeFiles names the schema file of each shape.
var shapeFiles = map[event.Shape]string{
	event.ShapeISPMOnDemand: "ispm-issue-ondemand.v1.json",
	event.ShapeISPMWebhook:  "ispm-issue-webhook.v1.json",
	event.ShapeEntityRisk:   "entity-risk-trigger.v1.json",
	// Okta's own risk events, beside remediator's trigger on remediation.events.itp.
	event.ShapeOktaLogEventRisk: "okta-logevent-risk.v1.json",
}

// Files returns the embedded schema documents by file name (e.g.
// "ispm-issue-ondemand.v1.json"), for docs and the `remediator schema` commands. The map
// and slices are the caller's own copies.
func Files() map[string][]byte {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return map[string][]byte{}
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		if data, err := files.ReadFile(e.Name()); err == nil {
			out[e.Name()] = data
		}
	}
	return out
}

type compiled struct {
	id     string
	schema *jsonschema.Schema
}

// Validator checks documents against the compiled schemas. It is safe for concurrent use.
type Validator struct {
	schemas map[event.Shape]compiled
}

// New compiles the embedded schemas. It fails only if an embedded schema is broken.
func New() (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	// date-time is what event.Decode can read: RFC 3339, checked by the same parser, so that
	// a valid entity-risk trigger always has an event time. (jsonschema's own check admits a
	// few strings Go's parser rejects, such as "+9" for an hour.)
	c.Formats["date-time"] = func(v any) bool {
		s, ok := v.(string)
		if !ok {
			return true
		}
		_, ok = event.ParseTime(s)
		return ok
	}
	// risk-level is remediator's format for an entity-risk level: NONE, LOW, MEDIUM or HIGH
	// in any case, exactly what event.NormalizeRiskLevel reads (a pattern would say the same
	// in a message no reader could use).
	c.Formats["risk-level"] = func(v any) bool {
		s, ok := v.(string)
		if !ok {
			return true
		}
		_, ok = event.NormalizeRiskLevel(s)
		return ok && s == strings.TrimSpace(s)
	}
	c.LoadURL = func(s string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("schema: will not load %s: only embedded schemas are used", s)
	}
	ids := make(map[event.Shape]string, len(shapeFiles))
	for shape, name := range shapeFiles {
		data, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("schema: read %s: %w", name, err)
		}
		var head struct {
			ID string `json:"$id"`
		}
		if err := json.Unmarshal(data, &head); err != nil || head.ID == "" {
			return nil, fmt.Errorf("schema: %s has no $id", name)
		}
		if err := c.AddResource(head.ID, bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("schema: add %s: %v", name, err)
		}
		ids[shape] = head.ID
	}
	v := &Validator{schemas: make(map[event.Shape]compiled, len(ids))}
	for shape, id := range ids {
		s, err := c.Compile(id)
		if err != nil {
			// %v, not %w: jsonschema's error types stay inside this package.
			return nil, fmt.Errorf("schema: compile %s: %v", shapeFiles[shape], err)
		}
		v.schemas[shape] = compiled{id: id, schema: s}
	}
	return v, nil
}

// SchemaID returns the $id of the schema for shape, or "" for an unknown shape.
func (v *Validator) SchemaID(shape event.Shape) string {
	return v.schemas[shape].id
}

// Validate checks data as an event of the given kind and returns the shape it validated as.
//
// For [event.KindISPMIssue], a document with a top-level "eventData" or "type" member is
// the webhook shape, anything else the on-demand shape. For [event.KindEntityRisk], a
// document with a top-level "uuid", "published" or "cloudEventsVersion" member is an Okta
// System Log LogEvent ([event.ShapeOktaLogEventRisk]; cloudEventsVersion marks a whole
// event-hook delivery, which is refused with the LogEvent's violations since a delivery
// must be split first), anything else remediator's entity-risk trigger.
//
// It returns a *SyntaxError when data is not a single JSON value (also for empty input and
// trailing data), holds a duplicate object key or a string that is not valid Unicode (see
// [event.CheckJSON]), or is larger than MaxDocumentBytes; and a *ViolationError when it is
// JSON but breaks the schema (also when the top level is not an object). For a LogEvent the
// schema check is followed by the checks the schema cannot express, on the risk string
// (a readable level): they are violations with the keyword "decode". On error the returned
// shape is still the one the document was checked as; it is empty when that is unknown (an
// unknown kind, or a document that is not JSON).
func (v *Validator) Validate(kind event.Kind, data []byte) (event.Shape, error) {
	shape, _, err := v.ValidateDocument(kind, data)
	return shape, err
}

// ValidateDocument is [Validator.Validate] that also returns the parsed document (numbers as
// json.Number, nil on a syntax error), for [event.DecodeDocument]: the caller then parses
// the event once.
func (v *Validator) ValidateDocument(kind event.Kind, data []byte) (event.Shape, any, error) {
	switch kind {
	case event.KindISPMIssue, event.KindEntityRisk:
	default:
		return "", nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
	}
	doc, err := parse(data)
	if err != nil {
		return "", nil, err
	}
	var shape event.Shape
	if kind == event.KindISPMIssue {
		shape = ispmShape(doc)
	} else {
		shape = riskShape(doc)
	}
	return shape, doc, v.check(shape, doc, data)
}

// ValidateShape checks data against the schema of one shape, with the errors of Validate.
func (v *Validator) ValidateShape(shape event.Shape, data []byte) error {
	if _, ok := v.schemas[shape]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownShape, shape)
	}
	doc, err := parse(data)
	if err != nil {
		return err
	}
	return v.check(shape, doc, data)
}

// ispmShape tells the webhook envelope from the on-demand input set.
func ispmShape(doc any) event.Shape {
	if m, ok := doc.(map[string]any); ok {
		_, hasData := m["eventData"]
		_, hasType := m["type"]
		if hasData || hasType {
			return event.ShapeISPMWebhook
		}
	}
	return event.ShapeISPMOnDemand
}

// riskShape tells an Okta LogEvent from remediator's entity-risk trigger.
func riskShape(doc any) event.Shape {
	if m, ok := doc.(map[string]any); ok {
		for _, k := range []string{"uuid", "published", "cloudEventsVersion"} {
			if _, has := m[k]; has {
				return event.ShapeOktaLogEventRisk
			}
		}
	}
	return event.ShapeEntityRisk
}

// parse decodes exactly one JSON value, numbers as json.Number as jsonschema expects.
func parse(data []byte) (any, error) {
	if len(data) > MaxDocumentBytes {
		return nil, &SyntaxError{
			Offset: MaxDocumentBytes,
			Msg:    fmt.Sprintf("%d bytes, limit is %d", len(data), MaxDocumentBytes),
			cause:  ErrTooLarge,
		}
	}
	// RFC 8259 syntax, and I-JSON's one meaning: no duplicate keys, no invalid strings.
	if err := event.CheckJSON(data); err != nil {
		var je *event.JSONError
		if errors.As(err, &je) {
			return nil, &SyntaxError{Offset: je.Offset, Msg: je.Msg}
		}
		return nil, &SyntaxError{Msg: err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &SyntaxError{Offset: dec.InputOffset(), Msg: err.Error()}
	}
	return doc, nil
}

func (v *Validator) check(shape event.Shape, doc any, data []byte) error {
	c, ok := v.schemas[shape]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownShape, shape)
	}
	err := c.schema.Validate(doc)
	if err == nil && shape == event.ShapeOktaLogEventRisk {
		// The risk string is free text: what the schema cannot say, decoding finds, and a
		// document that validates always decodes.
		if _, derr := event.Decode(shape, data); derr != nil {
			vi := Violation{Keyword: "decode", Message: derr.Error()}
			var fe *event.FieldError
			if errors.As(derr, &fe) {
				vi.Pointer, vi.Message = fe.Pointer, fe.Msg
			}
			vi.Message = truncate(vi.Message, maxMessageBytes)
			return &ViolationError{Schema: c.id, Shape: shape, Violations: []Violation{vi}}
		}
	}
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("schema: validate as %s: %v", shape, err)
	}
	return &ViolationError{Schema: c.id, Shape: shape, Violations: flatten(ve)}
}

// flatten turns jsonschema's error tree into its sorted, de-duplicated leaves. The inner
// nodes ("doesn't validate with ...", empty wrapper messages) carry no information of
// their own.
func flatten(root *jsonschema.ValidationError) []Violation {
	var out []Violation
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		// A failed "contains" explains itself item by item ("/target/0/type: value must be
		// User", one per item), which reads as if every item were wrong: say it once, at
		// the array.
		switch kw := e.KeywordLocation[strings.LastIndexByte(e.KeywordLocation, '/')+1:]; kw {
		case "contains", "minContains", "maxContains":
			out = append(out, Violation{Pointer: pointer(e.InstanceLocation), Keyword: kw, Message: containsMessage(e.InstanceLocation, kw)})
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		if e.Message != "" {
			out = append(out, leaf(e)...)
		}
	}
	walk(root)
	if len(out) == 0 {
		out = []Violation{{Pointer: pointer(root.InstanceLocation), Message: "does not match the schema"}}
	}
	slices.SortFunc(out, func(a, b Violation) int {
		if c := strings.Compare(a.Pointer, b.Pointer); c != 0 {
			return c
		}
		if c := strings.Compare(a.Keyword, b.Keyword); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return slices.Compact(out)
}

// maxMessageBytes bounds a violation message, which may quote a document value (the
// longest message from our own schemas, the detectionType enum, is under 300 bytes).
const maxMessageBytes = 512

func leaf(e *jsonschema.ValidationError) []Violation {
	ptr := pointer(e.InstanceLocation)
	kw := e.KeywordLocation[strings.LastIndexByte(e.KeywordLocation, '/')+1:]
	msg := e.Message
	switch kw {
	case "required":
		names, ok := parseQuotedList(strings.TrimPrefix(msg, "missing properties: "))
		if !ok {
			break
		}
		vs := make([]Violation, len(names))
		for i, n := range names {
			vs[i] = Violation{Pointer: ptr + "/" + escapeToken(n), Keyword: kw, Message: "missing required property"}
		}
		return vs
	case "format":
		// "'<value>' is not valid '<format>'": drop the value, which may be long.
		const sep = " is not valid '"
		if i := strings.LastIndex(msg, sep); i >= 0 {
			msg = "not a valid " + strings.TrimSuffix(msg[i+len(sep):], "'")
		}
		if msg == "not a valid risk-level" {
			msg = "not a risk level: NONE, LOW, MEDIUM or HIGH, in any case"
		}
	}
	return []Violation{{Pointer: ptr, Keyword: kw, Message: truncate(msg, maxMessageBytes)}}
}

// containsMessage words a failed contains, minContains or maxContains. The only arrays our
// schemas constrain so are a LogEvent's targets.
func containsMessage(loc, keyword string) string {
	if pointer(loc) == "/target" {
		if keyword == "maxContains" {
			return "more than one target of type User: the at-risk user is ambiguous"
		}
		return "no target of type User: the at-risk user is unknown"
	}
	if keyword == "maxContains" {
		return "too many items match the schema's contains"
	}
	return "no item matches the schema's contains"
}

// pointer turns jsonschema's instance location, whose tokens are JSON-pointer escaped and
// then URL-path escaped, into a plain RFC 6901 pointer.
func pointer(loc string) string {
	if loc == "" {
		return ""
	}
	toks := strings.Split(loc, "/")
	for i, t := range toks {
		if u, err := url.PathUnescape(t); err == nil {
			toks[i] = u
		}
	}
	return strings.Join(toks, "/")
}

// escapeToken escapes one RFC 6901 reference token.
func escapeToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// parseQuotedList parses jsonschema's "'a', 'b'" lists, whose items are Go-quoted strings
// with the double and single quotes swapped in role.
func parseQuotedList(s string) ([]string, bool) {
	var names []string
	for s != "" {
		if s[0] != '\'' {
			return nil, false
		}
		i := 1
		for i < len(s) && s[i] != '\'' {
			if s[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(s) {
			return nil, false
		}
		inner := strings.ReplaceAll(s[1:i], `"`, `\"`)
		inner = strings.ReplaceAll(inner, `\'`, `'`)
		name, err := strconv.Unquote(`"` + inner + `"`)
		if err != nil {
			return nil, false
		}
		names = append(names, name)
		s = strings.TrimPrefix(s[i+1:], ", ")
	}
	return names, len(names) > 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
