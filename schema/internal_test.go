package schema

import (
	"strings"
	"testing"
)

func TestParseQuotedList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{`'issueId'`, []string{"issueId"}, true},
		{`'eventId', 'issueId'`, []string{"eventId", "issueId"}, true},
		{`'it\'s', 'a"b', 'c\\d', 'tab\there', 'é'`, []string{"it's", `a"b`, `c\d`, "tab\there", "é"}, true},
		{``, nil, false},
		{`issueId`, nil, false},
		{`'unterminated`, nil, false},
	}
	for _, tt := range tests {
		got, ok := parseQuotedList(tt.in)
		if ok != tt.ok || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("parseQuotedList(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPointer(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"/issueId", "/issueId"},
		{"/a~1b/c~0d", "/a~1b/c~0d"},
		{"/a%20b/%C3%A9", "/a b/é"},
		{"/groups/3", "/groups/3"},
	}
	for _, tt := range tests {
		if got := pointer(tt.in); got != tt.want {
			t.Errorf("pointer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDisplayAndLabel(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{displayPointer(""), "(root)"},
		{displayPointer("/issueId"), "/issueId"},
		{displayPointer("/a\nb"), `"/a\nb"`},
		{schemaLabel("https://github.com/remediator/remediator/schema/ispm-issue-webhook.v1.json", "x"), "ispm-issue-webhook v1"},
		{schemaLabel("", "entity-risk-trigger"), "entity-risk-trigger"},
		{truncate(strings.Repeat("é", 150), 5), "éé..."},
		{truncate("short", 200), "short"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
