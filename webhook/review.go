package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"agentgate.io/agentgate/policy"
)

// The AdmissionReview versions served. Both have the same JSON shape: a review is decoded once into the v1
// types and answered in the version it was asked in.
const (
	reviewV1      = "admission.k8s.io/v1"
	reviewV1beta1 = "admission.k8s.io/v1beta1"
)

// badRequest is a refusal at the HTTP level: the request cannot be answered as an AdmissionReview (no review,
// no UID to echo, wrong method, size or content type). The API server treats it as a failed call, so with
// failurePolicy: Fail nothing is admitted.
type badRequest struct {
	code   int
	reason string // agentgate_bad_requests_total{reason}
	msg    string
}

func (b *badRequest) Error() string { return b.msg }

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *badRequest) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &badRequest{http.StatusMethodNotAllowed, "method", fmt.Sprintf("agentgate: method %s not allowed: POST an AdmissionReview", r.Method)}
	}
	ct := r.Header.Get("Content-Type")
	if ct != "application/json" { // what the API server sends; anything else is parsed
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, &badRequest{http.StatusUnsupportedMediaType, "content_type", fmt.Sprintf("agentgate: content type %q not supported: send application/json", ct)}
		}
	}
	limit := s.opts.MaxBodyBytes
	tooLarge := func() *badRequest {
		return &badRequest{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("agentgate: request body larger than %d bytes (--max-body-bytes)", limit)}
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, &badRequest{http.StatusBadRequest, "read", "agentgate: reading request body: " + err.Error()}
	}
	if len(body) == 0 {
		return nil, &badRequest{http.StatusBadRequest, "empty_body", "agentgate: empty request body: POST an AdmissionReview"}
	}
	return body, nil
}

// readAll reads a body whose size is usually announced: one allocation of the right size instead of
// io.ReadAll's doubling (a 42 KB review took seven), and at most the limit that r enforces.
func readAll(r io.Reader, contentLength int64) ([]byte, error) {
	if contentLength <= 0 || contentLength > 1<<20 {
		return io.ReadAll(r)
	}
	// One byte more than announced, so that a body longer than its Content-Length is still read to EOF
	// (net/http stops it there anyway) without a second allocation.
	buf := make([]byte, 0, contentLength+1)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow
		}
	}
}

// singlePass turns the single-pass object decode on (a benchmark turns it off to measure it).
var singlePass = true

// errDecodeLater aborts a single-pass decode whose object did not decode by its kind strictly: the review
// is decoded again with the object kept raw, so that decodeWorkload decodes it past its unknown fields (the
// policy judges them), or reports its problem in an AdmissionReview refusal, exactly as it would without
// the single pass.
var errDecodeLater = errors.New("object decoded later")

// reviewOptions decode runtime.RawExtension (request.object, oldObject, options) as a slice of the body
// itself, with no copy. With single set, request.object and request.oldObject of a kind agentgate judges
// are also decoded by that kind in the same pass, into RawExtension.Object (decodeWorkload uses it): the
// API server writes request.kind before them, so a big pod is scanned once instead of twice. The strict
// options of the review (policy.UnmarshalStrict) apply inside the object too.
func reviewOptions(body []byte, rev *admissionv1.AdmissionReview, single bool) jsonv2.Options {
	return jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, re *runtime.RawExtension) error {
		if dec.PeekKind() == 'n' { // null, as RawExtension.UnmarshalJSON leaves it
			_, err := dec.ReadValue()
			re.Raw = nil
			return err
		}
		start := valueStart(body, dec.InputOffset())
		if obj := singlePassObject(dec, rev, single); obj != nil {
			// No custom unmarshalers inside the object: they are per request, and their type cache would
			// be rebuilt for every type of a Pod (about 90 allocations).
			if err := jsonv2.UnmarshalDecode(dec, obj, jsonv2.WithUnmarshalers(nil)); err != nil {
				return errDecodeLater
			}
			end := dec.InputOffset()
			if end > int64(len(body)) || start > end {
				return errDecodeLater // unreachable with an in-memory decoder; never guess
			}
			re.Raw, re.Object = body[start:end:end], obj
			return nil
		}
		val, err := dec.ReadValue()
		if err != nil {
			return err
		}
		end := dec.InputOffset()
		if s := end - int64(len(val)); s != start || end > int64(len(body)) {
			re.Raw = bytes.Clone(val) // unreachable with an in-memory decoder; never guess
			return nil
		}
		re.Raw = body[start:end:end]
		return nil
	}))
}

// singlePassObject returns the typed object to decode request.object or request.oldObject into, when the
// request's kind, already decoded, is one agentgate judges (the same conditions as decodeWorkload's).
func singlePassObject(dec *jsontext.Decoder, rev *admissionv1.AdmissionReview, single bool) runtime.Object {
	if !single || rev.Request == nil || rev.Request.Kind.Version != "v1" {
		return nil
	}
	switch dec.StackPointer() {
	case "/request/object", "/request/oldObject":
	default:
		return nil
	}
	obj, ok := policy.NewObject(schema.GroupKind{Group: rev.Request.Kind.Group, Kind: rev.Request.Kind.Kind})
	if !ok {
		return nil
	}
	return obj
}

// valueStart skips from the end of a member name (the decoder's offset before a value) over the colon and
// whitespace to the value's first byte.
func valueStart(body []byte, off int64) int64 {
	for off < int64(len(body)) && (isSpace(body[off]) || body[off] == ':') {
		off++
	}
	return off
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// decodeReview decodes an AdmissionReview strictly: a duplicated or unknown field in the review, or a
// duplicated one anywhere in it, makes it ambiguous, and ambiguous input is refused. request.object and
// request.oldObject are raw, and point into body; decodeWorkload decodes them by their kind, where a field
// unknown to agentgate's k8s.io/api is the policy's to judge (README "Cluster upgrades").
func decodeReview(body []byte) (string, *admissionv1.AdmissionRequest, *badRequest) {
	v, req, bad := decodeReviewObjects(body)
	if req != nil {
		req.Object.Object, req.OldObject.Object = nil, nil
	}
	return v, req, bad
}

// decodeReviewObjects is decodeReview that also leaves in RawExtension.Object the objects it could decode by
// their kind in the same pass (reviewOptions); decodeWorkload and decodeOldWorkload use them.
func decodeReviewObjects(body []byte) (string, *admissionv1.AdmissionRequest, *badRequest) {
	if !utf8.Valid(body) {
		return "", nil, &badRequest{http.StatusBadRequest, "invalid_utf8", "agentgate: request body is not valid UTF-8"}
	}
	var rev admissionv1.AdmissionReview
	err := policy.UnmarshalStrict(body, &rev, reviewOptions(body, &rev, singlePass))
	if errors.Is(err, errDecodeLater) {
		rev = admissionv1.AdmissionReview{}
		err = policy.UnmarshalStrict(body, &rev, reviewOptions(body, &rev, false))
	}
	if err != nil {
		var de *policy.DecodeError
		if errors.As(err, &de) && (de.Has(policy.ProblemUnknown) || de.Has(policy.ProblemDuplicate)) {
			return "", nil, &badRequest{http.StatusBadRequest, "strict", "agentgate: ambiguous AdmissionReview refused: " + err.Error()}
		}
		return "", nil, &badRequest{http.StatusBadRequest, "decode", "agentgate: cannot decode AdmissionReview: " + err.Error()}
	}
	switch {
	case rev.APIVersion != reviewV1 && rev.APIVersion != reviewV1beta1:
		return "", nil, &badRequest{http.StatusBadRequest, "version", fmt.Sprintf("agentgate: unsupported apiVersion %q: send an AdmissionReview of %s or %s", rev.APIVersion, reviewV1, reviewV1beta1)}
	case rev.Kind != "AdmissionReview":
		return "", nil, &badRequest{http.StatusBadRequest, "version", fmt.Sprintf("agentgate: kind %q is not AdmissionReview", rev.Kind)}
	case rev.Request == nil:
		return "", nil, &badRequest{http.StatusBadRequest, "no_request", "agentgate: AdmissionReview has no request"}
	case rev.Response != nil:
		return "", nil, &badRequest{http.StatusBadRequest, "has_response", "agentgate: AdmissionReview to answer already carries a response"}
	case rev.Request.UID == "":
		return "", nil, &badRequest{http.StatusBadRequest, "no_uid", "agentgate: AdmissionReview request has no uid"}
	}
	return rev.APIVersion, rev.Request, nil
}

// writeStatus answers a bad request with a metav1.Status, the API server's own error shape.
func writeStatus(w http.ResponseWriter, code int, msg string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   metav1.StatusFailure,
		Code:     int32(code),
		Reason:   reasonFor(code),
		Message:  msg,
	}
	body, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

func reasonFor(code int) metav1.StatusReason {
	switch code {
	case http.StatusMethodNotAllowed:
		return metav1.StatusReasonMethodNotAllowed
	case http.StatusUnsupportedMediaType:
		return metav1.StatusReasonUnsupportedMediaType
	case http.StatusRequestEntityTooLarge:
		return metav1.StatusReasonRequestEntityTooLarge
	case http.StatusInternalServerError:
		return metav1.StatusReasonInternalError
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	}
	return metav1.StatusReasonBadRequest
}

// encodeReview encodes the answer in the AdmissionReview version asked.
func encodeReview(apiVersion string, resp *admissionv1.AdmissionResponse) ([]byte, error) {
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "AdmissionReview"},
		Response: resp,
	}
	body, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding AdmissionReview response: %w", err)
	}
	return body, nil
}

func writeJSON(w http.ResponseWriter, body []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err := w.Write(body)
	return err
}

// refusal answers a review that was understood but whose object cannot be judged (malformed, mismatched,
// a kind or operation the webhook configuration should not send): not allowed, with the reason.
func refusal(code int32, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    code,
			Reason:  reasonFor(int(code)),
			Message: msg,
		},
	}
}
