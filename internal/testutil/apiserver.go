package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// One real API server (and etcd) per test process, started by the first test that needs it: starting costs
// seconds, and tests work in namespaces of their own anyway. A package that uses it stops it in TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testutil.RunWithAPIServer(m)) }
var (
	envOnce sync.Once
	env     *envtest.Environment
	envCfg  *rest.Config
	envErr  error
)

// APIServer returns a config for the process's real API server, starting it on first use. It fails the test,
// never skips it: a test that silently does not run proves nothing. The config allows 500 requests/s, so that
// tests measure the code, not client-go's rate limiter.
func APIServer(t testing.TB) *rest.Config {
	t.Helper()
	envOnce.Do(func() {
		dir, err := AssetsDir()
		if err != nil {
			envErr = err
			return
		}
		e := &envtest.Environment{BinaryAssetsDirectory: dir}
		envCfg, envErr = e.Start()
		if envErr == nil {
			env = e
		}
	})
	if envErr != nil {
		t.Fatalf("real API server (envtest) unavailable: %v", envErr)
	}
	cfg := rest.CopyConfig(envCfg)
	cfg.QPS, cfg.Burst = 500, 1000
	return cfg
}

// Kube is a clientset of APIServer.
func Kube(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(APIServer(t))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return cs
}

// StopAPIServer stops the process's API server if one was started.
func StopAPIServer() {
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}
}

// AssetsDir finds kube-apiserver and etcd: KUBEBUILDER_ASSETS if set, else the project's bin/ (or e2e/bin/,
// where e2e/controlplane/build.sh puts them by default), found relative to this file so that `go test` works
// from any directory.
func AssetsDir() (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, checkAssets(d)
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the test source to find bin/")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	var tried []string
	for _, d := range []string{filepath.Join(root, "bin"), filepath.Join(root, "e2e", "bin")} {
		if checkAssets(d) == nil {
			return d, nil
		}
		tried = append(tried, d)
	}
	return "", fmt.Errorf("no kube-apiserver and etcd in %v: run `make test` (or e2e/controlplane/build.sh) to build them, or set KUBEBUILDER_ASSETS", tried)
}

func checkAssets(dir string) error {
	for _, b := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil {
			return fmt.Errorf("control-plane binary missing: %w", err)
		}
		if fi.Mode()&0o111 == 0 {
			return fmt.Errorf("control-plane binary %s is not executable", filepath.Join(dir, b))
		}
	}
	return nil
}

// RunWithAPIServer is a TestMain body for packages whose tests use APIServer: it runs them and stops the API
// server after, returning the exit code: func TestMain(m *testing.M) { os.Exit(testutil.RunWithAPIServer(m)) }
func RunWithAPIServer(m *testing.M) int {
	code := m.Run()
	StopAPIServer()
	return code
}
