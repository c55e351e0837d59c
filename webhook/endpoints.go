package webhook

// Endpoint names: the URL path without its slash, and the endpoint label of every metric. Public: the webhook
// configurations in manifests/ name these paths.
const (
	EndpointMutate         = "mutate"
	EndpointValidate       = "validate"
	EndpointValidatePolicy = "validate-policy"
	EndpointValidateGuard  = "validate-guard"
	EndpointValidateExec   = "validate-exec"
)

// endpoint is one admission endpoint. The table below is the only list: the mux serves it, the metrics label
// by it (anything else is "other"), and TestEndpointTable checks that every entry is routed by the manifests'
// webhook configurations and described in the package doc. A new endpoint is one line here plus its decider.
type endpoint struct {
	name   string
	decide func(*Server) decider
}

var endpoints = []endpoint{
	{EndpointMutate, func(s *Server) decider { return s.mutate }},
	{EndpointValidate, func(s *Server) decider { return s.validate }},
	{EndpointValidatePolicy, func(s *Server) decider { return s.validatePolicy }},
	{EndpointValidateGuard, func(s *Server) decider { return s.validateGuard }},
	{EndpointValidateExec, func(s *Server) decider { return s.validateExec }},
}

// endpointLabels maps a request path to its metric label; a fixed set, so a scanner's paths cannot grow the
// label's cardinality.
var endpointLabels = func() map[string]string {
	m := make(map[string]string, len(endpoints))
	for _, e := range endpoints {
		m["/"+e.name] = e.name
	}
	return m
}()

func endpointLabel(path string) string {
	if l, ok := endpointLabels[path]; ok {
		return l
	}
	return "other"
}
