package policy

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Match selects agent pods. An empty Match selects every pod the webhook is asked about.
type Match struct {
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	PodSelector       *metav1.LabelSelector `json:"podSelector,omitempty"`
}

// compileMatch compiles the selectors; an empty one selects everything.
func compileMatch(p *Policy, m Match, fp *field.Path) field.ErrorList {
	var errs, e field.ErrorList
	p.nsSelector, e = compileSelector(m.NamespaceSelector, fp.Child("namespaceSelector"))
	errs = append(errs, e...)
	p.podSelector, e = compileSelector(m.PodSelector, fp.Child("podSelector"))
	return append(errs, e...)
}

func compileSelector(sel *metav1.LabelSelector, fp *field.Path) (labels.Selector, field.ErrorList) {
	if sel == nil {
		return nil, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(fp, sel, err.Error())}
	}
	if s.Empty() {
		return nil, nil
	}
	return s, nil
}
