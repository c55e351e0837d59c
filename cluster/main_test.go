package cluster

import (
	"os"
	"testing"

	"agentgate.io/agentgate/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.RunWithAPIServer(m)) }
