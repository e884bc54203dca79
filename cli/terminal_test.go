package cli

import "testing"

func TestSafe(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want, wantText string }{
		{"plain text é ✓", "plain text é ✓", "plain text é ✓"},
		{"title\x1b]0;pwned\x07", `title\x1b]0;pwned\a`, `title\x1b]0;pwned\a`},
		{"clear\x1b[2J", `clear\x1b[2J`, `clear\x1b[2J`},
		{"two\nlines\tand tab", `two\nlines\tand tab`, "two\nlines\tand tab"},
		{"c1 \u009b31m", `c1 \u009b31m`, `c1 \u009b31m`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`, `bidi \u202egnp.exe`},
		{"bad utf8 \xff!", `bad utf8 \xff!`, `bad utf8 \xff!`},
		{"del\x7f", `del\x7f`, `del\x7f`},
	} {
		if got := safe(tt.in); got != tt.want {
			t.Errorf("safe(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := safeText(tt.in); got != tt.wantText {
			t.Errorf("safeText(%q) = %q, want %q", tt.in, got, tt.wantText)
		}
	}
}
