// Package cluster holds what agentgate reads and keeps in a live cluster beyond one admission: the agent-pod
// cache that /validate-exec and the policy-change preview read, and leader election for the work that one
// replica at a time must do (owning NetworkPolicies, the background audit). It uses package policy and
// client-go and knows nothing of AdmissionReviews; webhook/ and cmd/ use it.
package cluster
