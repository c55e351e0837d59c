package certs

import (
	"os"
	"testing"

	"agentgate.io/agentgate/internal/testutil"
)

// The package's tests share one real API server (testutil.APIServer), started by the first test that needs
// it; every test works in its own namespace and webhook configurations.
func TestMain(m *testing.M) { os.Exit(testutil.RunWithAPIServer(m)) }
