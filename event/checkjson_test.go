package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		doc    string
		offset int64
		msg    string // "" for a valid document
	}{
		{"object", `{"issueId":"i","issueTitle":"t"}`, 0, ""},
		{"same key in two objects", `{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]}`, 0, ""},
		{"key equal to a value", `{"a":"a","b":["a","a"]}`, 0, ""},
		{"scalar", `"x"`, 0, ""},
		{"valid astral escape", `{"e":"\ud83d\ude00"}`, 0, ""},
		{"literal replacement character", `{"e":"` + "\uFFFD" + `","\ufffd":1}`, 0, ""},
		{"escaped backslash before u", `{"e":"\\ud800"}`, 0, ""},

		{"duplicate at top", `{"issueTitle":"a","issueTitle":"b"}`, 30, `duplicate key "issueTitle" at /`},
		{"duplicate riskLevel", `{"riskLevel":"LOW", "riskLevel":"HIGH"}`, 31, `duplicate key "riskLevel" at /`},
		{"duplicate nested", `{"eventData":{"affectedEntity":{"id":"1","id":"2"}}}`, 45, `duplicate key "id" at /eventData/affectedEntity`},
		{"duplicate in array element", `{"target":[{"type":"App"},{"type":"User","type":"App"}]}`, 47, `duplicate key "type" at /target/1`},
		{"duplicate after unescaping", `{"a":1,"\u0061":2}`, 15, `duplicate key "a" at /`},
		{"duplicate with null values", `{"x":null,"x":null}`, 13, `duplicate key "x" at /`},
		{"pointer escapes", `{"a/b":{"c~d":{"k":1,"k":2}}}`, 24, `duplicate key "k" at /a~1b/c~0d`},
		{"empty key twice", `{"":1,"":2}`, 8, `duplicate key "" at /`},

		{"invalid UTF-8 in value", "{\"issueTitle\":\"ab\xffcd\"}", 17, "invalid UTF-8 in string"},
		{"invalid UTF-8 in key", "{\"k\xc3\":1}", 3, "invalid UTF-8 in string"},
		{"overlong encoding", "[\"\xc0\xaf\"]", 2, "invalid UTF-8 in string"},
		{"encoded surrogate", "[\"\xed\xa0\x80\"]", 2, "invalid UTF-8 in string"},
		{"lone high surrogate escape", `{"t":"a\ud800b"}`, 7, `unpaired surrogate \ud800 in string`},
		{"lone low surrogate escape", `["\uDC00"]`, 2, `unpaired surrogate \uDC00 in string`},
		{"reversed pair", `["\udc00\ud800"]`, 2, `unpaired surrogate \udc00 in string`},
		{"surrogate in key", `{"\ud800":1}`, 2, `unpaired surrogate \ud800 in string`},

		{"syntax", `not json`, 2, "invalid character 'o' in literal null (expecting 'u')"},
		{"empty", ``, 0, "empty document"},
		{"trailing data", `{} {}`, 4, "invalid character '{' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckJSON([]byte(tt.doc))
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("CheckJSON = %v, want nil", err)
				}
				return
			}
			var je *JSONError
			if !errors.As(err, &je) {
				t.Fatalf("CheckJSON = %T %v, want *JSONError", err, err)
			}
			if je.Msg != tt.msg || je.Offset != tt.offset {
				t.Errorf("CheckJSON = offset %d %q; want %d %q", je.Offset, je.Msg, tt.offset, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "invalid JSON at byte ") {
				t.Errorf("Error() = %q", err)
			}
		})
	}
}

// TestDecodeRefusesAmbiguousJSON shows that Decode, for every shape, refuses what CheckJSON
// refuses rather than reading it one of two ways.
func TestDecodeRefusesAmbiguousJSON(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{"eventId":"e","issueId":"i","issueTitle":"Old Password","issueTitle":"Unused Admin Account"}`,
		"{\"eventId\":\"e\",\"issueId\":\"i\",\"issueTitle\":\"t\xfe\"}",
	} {
		for _, shape := range []Shape{ShapeISPMOnDemand, ShapeISPMWebhook, ShapeEntityRisk, ShapeOktaLogEventRisk} {
			_, err := Decode(shape, []byte(doc))
			var je *JSONError
			if !errors.As(err, &je) {
				t.Errorf("Decode(%s, %q) = %v, want a *JSONError", shape, doc, err)
			}
		}
	}
}

func BenchmarkCheckJSON(b *testing.B) {
	doc := readFixture(b, "ispm-webhook.json")
	big := bytes.Repeat(append(append([]byte(nil), doc...), ','), 200)
	big = append(append([]byte("["), big[:len(big)-1]...), ']')
	b.SetBytes(int64(len(big)))
	for b.Loop() {
		if err := CheckJSON(big); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCheckJSON checks CheckJSON against a separate count: a document it accepts has
// exactly as many object members once decoded as member names in its text (so none was
// lost to a duplicate), is valid JSON and valid UTF-8; one refused for a duplicate has
// fewer.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1,"a":2}`, `{"a":{"b":[{"c":1,"c":1}]}}`, `{"a":1,"\u0061":2}`,
		"{\"a\":\"\xff\"}", `["\ud800"]`, `["\ud83d\ude00"]`, `[{"":0},{"":0}]`, `{"a":[],"b":{},"c":""}`,
		`{"k":"v","K":"v"}`, `{"\"":1,"\\":2}`,
	} {
		f.Add([]byte(s))
	}
	for _, name := range []string{"ispm-ondemand-seed.json", "ispm-webhook.json", "entity-risk.json"} {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckJSON(data)
		if err != nil {
			var je *JSONError
			if !errors.As(err, &je) || je.Offset < 0 || je.Offset > int64(len(data)) || je.Msg == "" {
				t.Fatalf("CheckJSON = %T %v", err, err)
			}
			if strings.HasPrefix(je.Msg, "duplicate key") {
				if members, names := countMembers(t, data); members >= names {
					t.Fatalf("duplicate reported but %d members decoded from %d names", members, names)
				}
			}
			return
		}
		if !json.Valid(data) || !utf8.Valid(data) {
			t.Fatalf("accepted invalid JSON or UTF-8: %q", data)
		}
		if members, names := countMembers(t, data); members != names {
			t.Fatalf("accepted %q: %d members decoded from %d names", data, members, names)
		}
	})
}

// countMembers returns how many object members data decodes to and how many member names
// its text has, counted by a scan of the compacted text (a name is a string followed by ':').
func countMembers(t *testing.T, data []byte) (members, names int) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			members += len(v)
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	var c bytes.Buffer
	if err := json.Compact(&c, data); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	b := c.Bytes()
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		for i++; b[i] != '"'; i++ {
			if b[i] == '\\' {
				i++
			}
		}
		if i+1 < len(b) && b[i+1] == ':' {
			names++
		}
	}
	return members, names
}
