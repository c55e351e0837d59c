package policy

import (
	corev1 "k8s.io/api/core/v1"
)

// DigestTarget is a container whose image a selecting policy wants pinned to a digest (images.pinDigests).
// Resolving a tag asks a registry, which policy/ never does: the webhook resolves, then calls Pin.
type DigestTarget struct {
	Container *corev1.Container
	Field     string // spec.containers[0].image
}

// DigestTargets lists, in container order, the containers (but those exempt from the images check) of w whose image has no digest yet and
// that some selecting policy asks to pin. Image volumes are left alone: their reference is pinned by whoever
// writes it, and requireDigest judges them like any image.
func (s *Set) DigestTargets(w *Workload, ns Namespace, rq Requester) []DigestTarget {
	var out []DigestTarget
	seen := map[*corev1.Container]bool{}
	for _, p := range s.Policies {
		if !p.Spec.Images.PinDigests {
			continue
		}
		if ok, _ := p.selects(w, ns, rq); !ok {
			continue
		}
		pod := newPodView(p, w, rq, nil).judgedBy("images")
		for _, ca := range pod.containers {
			if seen[ca.c] {
				continue
			}
			img, err := parseImage(ca.c.Image)
			if err != nil || img.digest != "" {
				continue // an unparseable image is denied by the images check; a pinned one needs nothing
			}
			seen[ca.c] = true
			out = append(out, DigestTarget{Container: ca.c, Field: pod.path(ca).Child("image").String()})
		}
	}
	return out
}

// PinnedReference is the reference as written with the digest appended ("runner:1.4@sha256:…"): the tag stays
// readable for people, the digest is what the runtime pulls.
func PinnedReference(ref, digest string) string { return ref + "@" + digest }
