package policy

import (
	corev1 "k8s.io/api/core/v1"
)

// DigestTarget is a container whose image a selecting policy wants pinned to a digest (images.pinDigests).
// Resolving a tag asks a registry, which policy/ never does: the webhook resolves, then calls Pin.
type DigestTarget struct {
	Container *corev1.Container
	Field     string // spec.containers[0].image
	// Reference is the image normalised ("evil.example/x:1" for "EVIL.EXAMPLE:443/x:1"): what the resolver
	// asks for, the name the policies judged.
	Reference string
	// Registry is Reference's normalised registry, and Access what every pinning policy lets the resolver do
	// to reach it (images.pinRegistries; the zero value: HTTPS to ordinary addresses only).
	Registry string
	Access   PinAccess
}

// pins reports whether the policy's images.pinDigests will pin this image at pod creation: it has no digest
// and its name is admitted (a registry is never asked about an image the policy denies). The images check
// relies on the same answer to let a template's tags pass requireDigest.
func (p *Policy) pins(img *image) bool {
	return p.Spec.Images.PinDigests && img.digest == "" && p.admitsName(img)
}

func (p *Policy) admitsName(img *image) bool {
	_, denied, allowed := p.admitsImageName(img)
	return !denied && allowed
}

// DigestTargets lists, in container order, the containers of w whose image has no digest yet and that some
// selecting policy pins (pins), unless any selecting policy that judges the container denies the image's
// name: it will be denied anyway, and its registry is not to be asked. A registry's Access is what every
// pinning policy grants (the strictest wins). Exempt containers are not pinned by the policy that exempts
// them. Image volumes are left alone: their reference is pinned by whoever writes it, and requireDigest
// judges them like any image.
func (s *Set) DigestTargets(w *Workload, ns Namespace, rq Requester) []DigestTarget {
	var out []DigestTarget
	index := map[*corev1.Container]int{}
	var vetoed map[*corev1.Container]bool
	for _, p := range s.Policies {
		if ok, _ := p.selects(w, ns, rq); !ok {
			continue
		}
		pod := newPodView(p, w, rq, nil).judgedBy("images")
		for _, ca := range pod.containers {
			img, err := parseImage(ca.c.Image)
			if err != nil || img.digest != "" {
				continue // an unparseable image is denied by the images check; a pinned one needs nothing
			}
			if !p.admitsName(img) {
				if vetoed == nil {
					vetoed = map[*corev1.Container]bool{}
				}
				vetoed[ca.c] = true
				continue
			}
			if !p.pins(img) {
				continue
			}
			access := p.pinAccess[img.registry]
			if i, seen := index[ca.c]; seen {
				out[i].Access.LocalAddresses = out[i].Access.LocalAddresses && access.LocalAddresses
				out[i].Access.PlainHTTP = out[i].Access.PlainHTTP && access.PlainHTTP
				continue
			}
			index[ca.c] = len(out)
			out = append(out, DigestTarget{Container: ca.c, Field: pod.path(ca).Child("image").String(),
				Reference: img.String(), Registry: img.registry, Access: access})
		}
	}
	if len(vetoed) == 0 {
		return out
	}
	kept := out[:0]
	for _, t := range out {
		if !vetoed[t.Container] {
			kept = append(kept, t)
		}
	}
	return kept
}

// PinnedReference is the reference as written with the digest appended ("runner:1.4@sha256:…"): the tag stays
// readable for people, the digest is what the runtime pulls.
func PinnedReference(ref, digest string) string { return ref + "@" + digest }
