package cli

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// safe makes s harmless on a terminal: control characters (C0, DEL, C1: escape sequences that
// could move the cursor, rewrite earlier lines or set the window title), Unicode bidi
// overrides (which reorder what is shown) and invalid UTF-8 are written as Go escapes (\x1b,
// \n, \u202e, \xff). Every printer passes ids, names, errors and header values it did not
// write itself through it: they come from events, that is from outside.
func safe(s string) string { return escape(s, false) }

// safeText is safe for multi-line text: it keeps newlines and tabs.
func safeText(s string) string { return escape(s, true) }

func escape(s string, keepLines bool) string {
	if !needsEscape(s, keepLines) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case keepLines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\n', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(s string, keepLines bool) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || (unsafeRune(r) && !(keepLines && (r == '\n' || r == '\t'))) {
			return true
		}
		i += n
	}
	return false
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f
}
