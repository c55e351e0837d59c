package main

import (
	"context"
	"fmt"
	"io"
)

// runServe is written in the webhook issue.
func runServe(ctx context.Context, args []string, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agentgate serve: not built yet")
	return 2
}
