package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"agentgate.io/agentgate/internal/manifest"
	"agentgate.io/agentgate/policy"
)

// Judge reads the source's documents and judges every object in them, in order, as the webhooks would
// (policy.Set.Review): Pods as the mutating webhook would patch them and the validating webhook would then
// judge them, controllers by their pod template. The items of a List are judged one by one; kinds agentgate
// does not judge are recorded as skipped; anything that cannot be read or decoded is recorded as an error
// that names its file, line and document. A workload's namespace is its metadata.namespace, or "default".
// r.Set must be set.
func (r *Run) Judge(src *manifest.Source) {
	f := &file{name: src.Name, err: src.Err}
	r.files = append(r.files, f)
	if f.err != nil {
		return
	}
	docs, err := manifest.Split(src.Data)
	if err != nil {
		f.err = err
		return
	}
	for _, md := range docs {
		d := &document{Document: md, file: f}
		f.docs = append(f.docs, d)
		if md.Err != nil {
			d.addError("", md.Err, md.ErrLine)
			continue
		}
		r.judgeObject(d, "", md.JSON)
	}
	if len(docs) == 0 {
		f.err = errors.New("empty: no Kubernetes object in it (only blank lines or comments)")
	}
}

// objectHeader is what is read of every object before its kind is known.
type objectHeader struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
		Namespace    string `json:"namespace"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// judgeObject judges one object (at JSON pointer item inside the document), recursing into List items.
func (r *Run) judgeObject(d *document, item string, obj []byte) {
	var e *entry
	defer func() {
		// Never a crash, never a silent pass: a bug met on some input makes that object an error.
		if p := recover(); p != nil {
			err := fmt.Errorf("internal error while judging this object (please report it): %v", p)
			if e == nil {
				d.addError(item, err, 0)
				return
			}
			e.err, e.result = err, nil
			if !slices.Contains(d.entries, e) {
				d.entries = append(d.entries, e)
			}
		}
	}()
	trimmed := bytes.TrimSpace(obj)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		d.addError(item, errors.New("not a Kubernetes object: a mapping with apiVersion, kind and metadata is expected"), 0)
		return
	}
	var h objectHeader
	if err := json.Unmarshal(obj, &h); err != nil {
		d.addError(item, fmt.Errorf("cannot read apiVersion, kind and metadata: %w", err), 0)
		return
	}
	name := h.Metadata.Name
	if name == "" && h.Metadata.GenerateName != "" {
		name = h.Metadata.GenerateName + "*"
	}
	e = &entry{doc: d, item: item, apiVersion: h.APIVersion, kind: h.Kind, name: name, namespace: h.Metadata.Namespace}
	switch {
	case h.Kind == "":
		e.err = errors.New("kind: Required value: every Kubernetes object names its kind")
		d.entries = append(d.entries, e)
		return
	case h.APIVersion == "":
		e.err = errors.New("apiVersion: Required value: every Kubernetes object names its apiVersion")
		d.entries = append(d.entries, e)
		return
	}
	gv, err := schema.ParseGroupVersion(h.APIVersion)
	if err != nil {
		e.err = fmt.Errorf("apiVersion: Invalid value: %q: %w", h.APIVersion, err)
		d.entries = append(d.entries, e)
		return
	}
	if strings.HasSuffix(h.Kind, "List") && h.Items != nil {
		for i, it := range h.Items {
			r.judgeObject(d, item+"/items/"+strconv.Itoa(i), it)
		}
		return
	}
	gk := schema.GroupKind{Group: gv.Group, Kind: h.Kind}
	d.entries = append(d.entries, e)
	switch gk {
	case networkPolicyGK:
		r.judgeNetworkPolicy(e, gv.Version, obj)
		return
	case secretGK:
		r.judgeSecret(e, gv.Version, obj)
		return
	}
	var w *policy.Workload
	if tk, ok := r.PodTemplateKinds.Lookup(gv.WithKind(h.Kind)); ok {
		if w, err = tk.Decode(obj); err != nil {
			e.err = err
			var te *policy.TemplateError
			if errors.As(err, &te) {
				e.errLine = d.LineOf(item, te.Err.Field)
			}
			return
		}
	} else {
		if !policy.Supported(gk) {
			// Another version of a kind judged by its template is an error, not a skip: skipping it would
			// pass in CI what the webhook would judge (or refuse).
			if versions := r.PodTemplateKinds.Versions(gk); len(versions) > 0 {
				e.err = fmt.Errorf("agentgate judges %s in %s, not %s: declare this version with --pod-template-kind", gk, strings.Join(versions, ", "), h.APIVersion)
				return
			}
			e.skipped = (&policy.UnsupportedKindError{GroupKind: gk}).Error()
			return
		}
		if w, err = policy.DecodeWorkload(gk, obj); err != nil {
			e.err = err
			// The line of the first field the decoder refused (a duplicate, an invalid value). A field unknown
			// to agentgate's k8s.io/api is no error: DecodeWorkload decodes past it and the policy judges it.
			var de *policy.DecodeError
			if errors.As(err, &de) && len(de.Fields) > 0 {
				e.errLine = d.LineOf(item, de.Fields[0].Path)
			}
			return
		}
	}
	ns := r.namespace(w.Meta.Namespace)
	e.namespace = ns.Name
	res, ops, err := r.Set.Review(obj, w, ns, r.Requester)
	if err != nil {
		e.err = fmt.Errorf("computing the webhook's patch: %w", err)
		return
	}
	e.result, e.patches = &res, manifest.SortPatches(ops)
	if r.Fix {
		fixed := w.DeepCopy()
		if r.Set.Harden(fixed, ns, r.Requester) {
			ops, err := policy.CreatePatch(obj, w.Object, fixed.Object)
			if err != nil {
				e.err = fmt.Errorf("hardening for --fix: %w", err)
				return
			}
			for _, op := range manifest.SortPatches(ops) {
				op.Path = item + op.Path
				d.fixOps = append(d.fixOps, op)
			}
		}
	}
}

var networkPolicyGK = schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}

// judgeNetworkPolicy judges a NetworkPolicy as /validate does: against the policies with network.manage that
// select its namespace (offline, without labels, every namespace: the strict side). Never fixed.
func (r *Run) judgeNetworkPolicy(e *entry, version string, obj []byte) {
	if version != "v1" {
		e.err = fmt.Errorf("apiVersion: Unsupported value: %q: agentgate judges networking.k8s.io/v1 NetworkPolicies", e.apiVersion)
		return
	}
	np := &networkingv1.NetworkPolicy{}
	if err := policy.UnmarshalStrict(obj, np); err != nil {
		e.err = fmt.Errorf("decoding NetworkPolicy: %w", err)
		var de *policy.DecodeError
		if errors.As(err, &de) && len(de.Fields) > 0 {
			e.errLine = e.doc.LineOf(e.item, de.Fields[0].Path)
		}
		return
	}
	ns := r.namespace(np.Namespace)
	e.namespace = ns.Name
	res := r.Set.JudgeNetworkPolicy(np, ns)
	e.result = &res
}

var secretGK = schema.GroupKind{Kind: "Secret"}

// judgeSecret judges a Secret as /validate does at its CREATE: a service-account token Secret in a namespace a
// policy selects is refused (policy.Set.JudgeTokenSecret). Only its type and metadata are decoded. Never fixed.
func (r *Run) judgeSecret(e *entry, version string, obj []byte) {
	if version != "v1" {
		e.err = fmt.Errorf("apiVersion: Unsupported value: %q: Secrets are v1", e.apiVersion)
		return
	}
	secret, err := policy.DecodeSecretHeader(obj)
	if err != nil {
		e.err = fmt.Errorf("decoding Secret: %w", err)
		var de *policy.DecodeError
		if errors.As(err, &de) && len(de.Fields) > 0 {
			e.errLine = e.doc.LineOf(e.item, de.Fields[0].Path)
		}
		return
	}
	if secret.Type != corev1.SecretTypeServiceAccountToken {
		typ := strconv.Quote(string(secret.Type))
		if secret.Type == "" {
			typ = "Opaque (the default)"
		}
		e.skipped = "a Secret of type " + typ + ": agentgate judges only service-account token Secrets"
		return
	}
	ns := r.namespace(secret.Namespace)
	e.namespace = ns.Name
	res := r.Set.JudgeTokenSecret(secret, ns, r.Requester)
	e.result = &res
}

// namespace is what policies know offline of a workload's namespace: its name ("default" when unset) and
// the run's NamespaceLabels, plus kubernetes.io/metadata.name, which the API server sets on every namespace,
// so that selectors may rely on it.
func (r *Run) namespace(name string) policy.Namespace {
	ns := policy.Namespace{Name: name, Labels: r.NamespaceLabels}
	if ns.Name == "" {
		ns.Name = "default"
	}
	if live, ok := r.Namespaces[ns.Name]; ok {
		ns.Labels = live
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
	}
	if ns.Labels != nil {
		ns.Labels = maps.Clone(ns.Labels)
		if _, ok := ns.Labels["kubernetes.io/metadata.name"]; !ok {
			ns.Labels["kubernetes.io/metadata.name"] = ns.Name
		}
	}
	if names, ok := r.TokenSecrets[ns.Name]; ok {
		ns.IsTokenSecret = func(secret string) bool { return slices.Contains(names, secret) }
	}
	return ns
}
