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
// Allowed values: a reference that go-containerregistry parses, whose normalised registry/repository
//   - matches no images.deny pattern (deny wins over allow),
//   - matches an images.allow pattern when the list is non-empty,
//   - has no tag listed in images.denyTags (a reference with neither tag nor digest means :latest), unless a
//     digest pins it (the runtime then ignores the tag: "runner:latest@sha256:…" passes),
//   - carries a digest when images.requireDigest is true.
//
// Patterns are globs over the normalised "registry/repository": "*" one path segment, "**" any depth;
// docker.io and index.docker.io are one registry.
var checkImages = check{id: "images", run: func(p *Policy, pod *podView, r *report) {
	for _, ca := range pod.containers {
		p.judgeImage(ca.c.Image, func() *field.Path { return pod.path(ca).Child("image") }, r)
	}
	// Image volumes (spec.volumes[*].image.reference) pull images too: the same rules apply, or the
	// allowlist could be bypassed by mounting an unapproved image's filesystem.
	for i := range pod.spec.Volumes {
		if v := pod.spec.Volumes[i].Image; v != nil {
			p.judgeImage(v.Reference, func() *field.Path { return pod.specPath.Child("volumes").Index(i).Child("image", "reference") }, r)
		}
	}
}}

// judgeImage applies every image rule to one reference. at builds the field path only when something is
// reported, so a compliant pod costs no allocation here.
func (p *Policy) judgeImage(ref string, at func() *field.Path, r *report) {
	imgs := p.Spec.Images
	img, err := parseImage(ref)
	if err != nil {
		r.add("images", at(), quote(ref), "a valid image reference", "the image reference does not parse: "+err.Error())
		return
	}
	segs := img.repoSegments()
	if g, ok := firstMatch(p.deny, segs); ok {
		r.add("images", at(), quote(ref), "images not matching "+quote(g.source),
			"image "+img.registry+"/"+img.repository+" is denied by pattern "+quote(g.source))
	} else if len(p.allow) > 0 {
		if _, ok := firstMatch(p.allow, segs); !ok {
			r.add("images", at(), quote(ref), "images matching "+patternList(imgs.Allow),
				"image "+img.registry+"/"+img.repository+" is not on the allowlist")
		}
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
	if imgs.RequireDigest && img.digest == "" {
		r.add("images", at(), quote(ref), "a reference with @sha256:… digest", "the policy requires images pinned by digest")
	}
}

func firstMatch(globs []glob, segs []string) (glob, bool) {
	for _, g := range globs {
		if g.match(segs) {
			return g, true
		}
	}
	return glob{}, false
}

func patternList(ps []string) string {
	q := make([]string, len(ps))
	for i, p := range ps {
		q[i] = quote(p)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
