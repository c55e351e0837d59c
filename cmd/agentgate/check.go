package main

import (
	"fmt"
	"io"
)

// runCheck is written in the policy issue.
func runCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agentgate check: not built yet")
	return 2
}
