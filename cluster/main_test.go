package cluster

import (
	"os"
	"testing"

	"agentgate.io/agentgate/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.StopAPIServer()
	os.Exit(code)
}
