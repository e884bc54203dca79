package schema

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/remediator/remediator/event"
)

// Sentinel errors.
var (
	// ErrTooLarge is matched (errors.Is) by the *SyntaxError returned for a document larger
	// than MaxDocumentBytes.
	ErrTooLarge = errors.New("schema: document too large")
	// ErrUnknownKind is returned by Validate for an event kind without a schema.
	ErrUnknownKind = errors.New("schema: unknown event kind")
	// ErrUnknownShape is returned by ValidateShape for a shape without a schema.
	ErrUnknownShape = errors.New("schema: unknown shape")
)

// SyntaxError reports a document that is not a single JSON value with one meaning:
// malformed JSON, empty input, data after the top-level value, a duplicate object key, a
// string that is not valid Unicode (see event.CheckJSON), or a document over
// MaxDocumentBytes.
type SyntaxError struct {
	// Offset is how many bytes had been read when the error was found, as encoding/json
	// counts them: for a bad character, its 1-based position.
	Offset int64
	// Msg describes the problem, e.g. "invalid character 'o' in literal null (expecting 'u')".
	Msg string

	cause error // ErrTooLarge, or nil
}

// Error returns e.g. "invalid JSON at byte 2: invalid character 'o' in literal null (expecting 'u')",
// or "document too large: 2000000 bytes, limit is 1048576".
func (e *SyntaxError) Error() string {
	if errors.Is(e.cause, ErrTooLarge) {
		return "document too large: " + e.Msg
	}
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// Unwrap returns ErrTooLarge for an oversized document, nil otherwise.
func (e *SyntaxError) Unwrap() error { return e.cause }

// Violation is one way a document breaks its schema.
type Violation struct {
	// Pointer is the RFC 6901 JSON pointer of the offending value in the document, "" for
	// the document itself. For a missing required property it points at the missing
	// property (e.g. "/issueId"), not at its parent.
	Pointer string
	// Keyword is the JSON Schema keyword that failed: "required", "type", "enum", "format",
	// "minLength", ...
	Keyword string
	// Message says what is wrong, e.g. "missing required property",
	// "expected string, but got number".
	Message string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s (%s)", displayPointer(v.Pointer), v.Message, v.Keyword)
}

// maxErrorViolations bounds how many violations ViolationError.Error spells out.
const maxErrorViolations = 10

// ViolationError reports a JSON document that does not satisfy its schema.
type ViolationError struct {
	// Schema is the $id of the schema the document was checked against.
	Schema string
	// Shape is the shape the document was checked as.
	Shape event.Shape
	// Violations are the leaf failures, sorted by pointer, keyword and message; never empty.
	Violations []Violation
}

// Error returns e.g. "ispm-issue-ondemand v1: /issueId: missing required property (required)",
// violations joined with "; ". Past 10 violations it ends with "; ... and N more"; the full
// list is in Violations.
func (e *ViolationError) Error() string {
	var b strings.Builder
	b.WriteString(schemaLabel(e.Schema, e.Shape))
	b.WriteString(": ")
	for i, v := range e.Violations {
		if i == maxErrorViolations {
			fmt.Fprintf(&b, "; ... and %d more", len(e.Violations)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.String())
	}
	if len(e.Violations) == 0 {
		b.WriteString("invalid")
	}
	return b.String()
}

// schemaLabel turns ".../ispm-issue-ondemand.v1.json" into "ispm-issue-ondemand v1".
func schemaLabel(id string, shape event.Shape) string {
	base := strings.TrimSuffix(path.Base(id), ".json")
	if id == "" || base == "" || base == "." || base == "/" {
		return string(shape)
	}
	if i := strings.LastIndex(base, ".v"); i > 0 {
		return base[:i] + " " + base[i+1:]
	}
	return base
}

// displayPointer renders a pointer for a message: "(root)" for the document itself, and
// a Go-quoted string when the pointer holds characters that would garble a log line.
func displayPointer(p string) string {
	if p == "" {
		return "(root)"
	}
	for _, r := range p {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return strconv.Quote(p)
		}
	}
	return p
}
