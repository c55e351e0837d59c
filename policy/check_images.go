package policy

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// images: only approved images run agents.
//
// Restricted fields:
//
//	spec.{initContainers,containers,ephemeralContainers}[*].image
//	spec.volumes[*].image.reference
//
// Allowed values: a reference that parses as the kubelet parses it (images.go: distribution/reference, then
// go-containerregistry's StrictValidation on the normalised form), whose normalised registry/repository
//   - matches no images.deny pattern (deny wins over allow; a deny pattern whose host names no port matches
//     that host on every port),
//   - matches an images.allow pattern when the list is non-empty (ports compared exactly, :443 being none),
//   - has no tag listed in images.denyTags (a reference with neither tag nor digest means :latest), unless a
//     digest pins it (the runtime then ignores the tag: "runner:latest@sha256:…" passes),
//   - carries a digest when images.requireDigest is true, with one exception: in a controller's pod template
//     (Deployment, Job, …) a container image that this policy's images.pinDigests will pin when the pod is
//     created (its name admitted by allow and deny above) may be a tag. The pod itself is judged at /validate
//     after the mutating webhook ran, and is denied if the tag did not resolve; image volumes are never
//     pinned, so they need their digest in templates too.
//
// Patterns are globs over the normalised "registry/repository": "*" one path segment, "**" any depth,
// normalised as references are (docker.io, index.docker.io and registry-1.docker.io are one registry,
// hosts are lower-cased, :443 is dropped).
var checkImages = check{id: "images", run: func(p *Policy, pod *podView, r *report) {
	for _, ca := range pod.containers {
		p.judgeImage(ca.c.Image, pod.template, func() *field.Path { return pod.path(ca).Child("image") }, r)
	}
	// Image volumes (spec.volumes[*].image.reference) pull images too: the same rules apply, or the
	// allowlist could be bypassed by mounting an unapproved image's filesystem.
	for i := range pod.spec.Volumes {
		if v := pod.spec.Volumes[i].Image; v != nil {
			p.judgeImage(v.Reference, false, func() *field.Path { return pod.specPath.Child("volumes").Index(i).Child("image", "reference") }, r)
		}
	}
}}

// judgeImage applies every image rule to one reference. pinnedLater: the reference is a container image of
// a pod template, which pinDigests may pin at pod creation. at builds the field path only when something is
// reported, so a compliant pod costs no allocation here.
func (p *Policy) judgeImage(ref string, pinnedLater bool, at func() *field.Path, r *report) {
	imgs := p.Spec.Images
	img, err := parseImage(ref)
	if err != nil {
		r.add("images", at(), quote(ref), "a valid image reference", "the image reference does not parse: "+err.Error())
		return
	}
	deniedBy, denied, allowed := p.admitsImageName(img)
	switch {
	case denied:
		r.add("images", at(), quote(ref), "images not matching "+quote(deniedBy.source),
			"image "+img.name()+" is denied by pattern "+quote(deniedBy.source))
	case !allowed:
		r.add("images", at(), quote(ref), "images matching "+patternList(imgs.Allow),
			"image "+img.name()+" is not on the allowlist")
	}
	if len(p.denyTags) > 0 {
		switch {
		case img.tag != "" && img.digest == "" && p.denyTags[img.tag]:
			r.add("images", at(), quote(ref), "a tag not in "+patternList(imgs.DenyTags)+", or a digest",
				"tag "+quote(img.tag)+" is mutable and denied: pin a version or a digest")
		case img.tag == "" && img.digest == "" && p.denyTags["latest"]:
			r.add("images", at(), quote(ref), "an explicit tag not in "+patternList(imgs.DenyTags)+", or a digest",
				"an image without tag or digest means :latest, which is denied: pin a version or a digest")
		}
	}
	if imgs.RequireDigest && img.digest == "" && !(pinnedLater && p.pins(img)) {
		r.add("images", at(), quote(ref), "a reference with @sha256:… digest", "the policy requires images pinned by digest")
	}
}

func patternList(ps []string) string {
	q := make([]string, len(ps))
	for i, p := range ps {
		q[i] = quote(p)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
