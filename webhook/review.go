package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
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
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return nil, &badRequest{http.StatusUnsupportedMediaType, "content_type", fmt.Sprintf("agentgate: content type %q not supported: send application/json", ct)}
	}
	limit := s.opts.MaxBodyBytes
	tooLarge := &badRequest{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("agentgate: request body larger than %d bytes (--max-body-bytes)", limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, &badRequest{http.StatusBadRequest, "read", "agentgate: reading request body: " + err.Error()}
	}
	if len(body) == 0 {
		return nil, &badRequest{http.StatusBadRequest, "empty_body", "agentgate: empty request body: POST an AdmissionReview"}
	}
	return body, nil
}

// decodeReview decodes an AdmissionReview strictly: a duplicated or unknown field anywhere in the review
// (request.object is decoded, as strictly, by its kind) makes it ambiguous, and ambiguous input is refused.
func decodeReview(body []byte) (string, *admissionv1.AdmissionRequest, *badRequest) {
	if !utf8.Valid(body) {
		return "", nil, &badRequest{http.StatusBadRequest, "invalid_utf8", "agentgate: request body is not valid UTF-8"}
	}
	var rev admissionv1.AdmissionReview
	strict, err := kjson.UnmarshalStrict(body, &rev, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return "", nil, &badRequest{http.StatusBadRequest, "decode", "agentgate: cannot decode AdmissionReview: " + err.Error()}
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return "", nil, &badRequest{http.StatusBadRequest, "strict", "agentgate: ambiguous AdmissionReview refused: " + strings.Join(msgs, "; ")}
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
