// Package floorsrv is the decode-only "floor" admission webhook: HTTPS, a
// typed encoding/json decode of the AdmissionReview and of the object inside
// it, and an unconditional allow. It is the least any webhook written against
// k8s.io/api must do, so every agentgate benchmark is reported against it.
package floorsrv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// maxBody matches the API server's own limit on a request body (3 MiB), so a
// runaway client cannot make the floor buffer without bound.
const maxBody = 3 << 20

// Handler answers AdmissionReview v1 requests on any path with allowed=true.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

// NullHandler answers like Handler but reads only request.uid (a shallow scan of the body, no typed
// decode): what HTTPS, HTTP and the load tool cost on the machine, the least any webhook can take.
func NullHandler() http.Handler {
	return http.HandlerFunc(serveNull)
}

func serveNull(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var review struct {
		Request *struct {
			UID types.UID `json:"uid"`
		} `json:"request"`
	}
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "an AdmissionReview with a request, please", http.StatusBadRequest)
		return
	}
	allow(w, review.Request.UID)
}

// readBody answers a wrong method or an unreadable body itself.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

func serve(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		http.Error(w, "decoding AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	if review.Request == nil {
		http.Error(w, "AdmissionReview has no request", http.StatusBadRequest)
		return
	}
	if err := decodeObject(review.Request); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	allow(w, review.Request.UID)
}

func allow(w http.ResponseWriter, uid types.UID) {
	resp, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: &admissionv1.AdmissionResponse{UID: uid, Allowed: true},
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(resp)
}

// decodeObject decodes request.object into its typed kind: that second decode
// is the cost a real webhook cannot avoid, and the one the floor measures.
func decodeObject(req *admissionv1.AdmissionRequest) error {
	var obj any
	switch req.Kind.Kind {
	case "Pod":
		obj = &corev1.Pod{}
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "ReplicaSet":
		obj = &appsv1.ReplicaSet{}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{}
	default:
		return fmt.Errorf("floor does not decode kind %q", req.Kind.Kind)
	}
	if err := json.Unmarshal(req.Object.Raw, obj); err != nil {
		return fmt.Errorf("decoding %s: %w", req.Kind.Kind, err)
	}
	return nil
}

// SelfSigned returns a TLS 1.3-only server config with a fresh in-memory
// ECDSA P-256 certificate for 127.0.0.1, ::1 and localhost, and that
// certificate in PEM for clients to trust.
func SelfSigned() (*tls.Config, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "agentgate-floor"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so a client can trust it directly as its own root
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	}
	return cfg, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// Server is a running floor server.
type Server struct {
	URL     string // https://host:port, without a path: the handler serves every path
	Addr    net.Addr
	CertPEM []byte
	srv     *http.Server
	done    chan struct{} // closed when Serve has returned, with its error in err
	err     error
}

// Options choose what a started server offers and does.
type Options struct {
	HTTP2 bool // offer HTTP/2 as well as HTTP/1.1, as `agentgate serve --http2`
	Null  bool // NullHandler instead of Handler
}

// Start listens on addr, which must be a loopback address (port 0 picks a
// free port), and serves the floor over HTTPS.
func Start(addr string, opts Options) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("floor listens on loopback only, not %q", host)
	}
	tlsCfg, certPEM, err := SelfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(opts.HTTP2)
	handler := Handler()
	if opts.Null {
		handler = NullHandler()
	}
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsCfg,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		// The API server keeps webhook connections open; a short idle timeout
		// would only add TLS handshakes to the measurement.
		IdleTimeout: 5 * time.Minute,
	}
	s := &Server{
		URL:     "https://" + ln.Addr().String(),
		Addr:    ln.Addr(),
		CertPEM: certPEM,
		srv:     srv,
		done:    make(chan struct{}),
	}
	go func() {
		s.err = srv.ServeTLS(ln, "", "")
		close(s.done)
	}()
	return s, nil
}

// Close stops the server at once, dropping open connections.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	if err == nil && !errors.Is(s.err, http.ErrServerClosed) {
		err = s.err
	}
	return err
}

// Done is closed when the server has stopped, by Close or a listener error.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is why the server stopped; valid once Done is closed.
func (s *Server) Err() error { return s.err }
