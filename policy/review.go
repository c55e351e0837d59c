package policy

import "gomodules.xyz/jsonpatch/v2"

// Review is what the two admission webhooks together decide about one object as sent (raw, decoded as w):
//   - a Pod is hardened as the mutating webhook would harden it (Mutate), and the validating webhook then
//     judges the hardened pod (Judge); ops is the patch the mutating webhook would return (CreatePatch
//     against raw), nil when it would not patch;
//   - a controller is never mutated: its pod template is judged as sent (Judge, which judges the template as
//     it will be after hardening), and ops is nil.
//
// The error is CreatePatch's; the Result is then empty. w is not changed.
func (s *Set) Review(raw []byte, w *Workload, ns Namespace, rq Requester) (Result, []jsonpatch.Operation, error) {
	if !w.IsPod() {
		return s.Judge(w, ns, rq), nil, nil
	}
	hardened, mutated := s.Mutate(w, ns, rq)
	res := s.Judge(hardened, ns, rq)
	if !mutated {
		return res, nil, nil
	}
	ops, err := CreatePatch(raw, w.Object, hardened.Object)
	if err != nil {
		return Result{}, nil, err
	}
	return res, ops, nil
}
