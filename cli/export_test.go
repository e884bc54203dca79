package cli

import (
	"context"
	"io"
)

// MainWithStdin is Main with stdin given: terminal says whether to treat it as a terminal a
// person types into (prompts are answered from it) or as a pipe (prompts refuse without --yes).
func MainWithStdin(ctx context.Context, args []string, stdin io.Reader, terminal bool, stdout, stderr io.Writer) int {
	return run(ctx, &globals{stdout: stdout, stderr: stderr, stdin: stdin, stdinTerminal: terminal}, args)
}
