package policy

import (
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckImages(t *testing.T) {
	const (
		digest       = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		allowDefault = `images matching ["registry.corp.example/agents/**"]`
		noLatest     = `an explicit tag not in ["latest"], or a digest`
	)
	image := func(ref string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.Containers[0].Image = ref }
	}
	const path = "spec.containers[0].image | "
	cases := []checkCase{
		{name: "valid", allKinds: true},
		{name: "any depth under **", tweak: image("registry.corp.example/agents/team/a/runner:2.1")},
		{name: "** also matches no segment", tweak: image("registry.corp.example/agents:1.0")},
		{name: "digest only", tweak: image("registry.corp.example/agents/runner@" + digest)},
		{
			// A digest pins the image; the runtime ignores the tag beside it.
			name: "denied tag pinned by a digest", tweak: image("registry.corp.example/agents/runner:latest@" + digest),
		},
		{
			name:  "not on the allowlist",
			tweak: image("registry.corp.example/other/runner:1.0"),
			want:  []string{path + `"registry.corp.example/other/runner:1.0" | ` + allowDefault},
			msgs: []string{`[images] image registry.corp.example/other/runner is not on the allowlist ` +
				`(found "registry.corp.example/other/runner:1.0"; allowed: ` + allowDefault + `)`},
		},
		{
			name:  "a prefix that is not a path segment",
			tweak: image("registry.corp.example/agents-evil/runner:1.0"),
			want:  []string{path + `"registry.corp.example/agents-evil/runner:1.0" | ` + allowDefault},
		},
		{
			name:  "a registry that merely starts like the allowed one",
			tweak: image("registry.corp.example.evil.io/agents/runner:1.0"),
			want:  []string{path + `"registry.corp.example.evil.io/agents/runner:1.0" | ` + allowDefault},
		},
		{
			name:  "no tag means latest",
			tweak: image("registry.corp.example/agents/runner"),
			want:  []string{path + `"registry.corp.example/agents/runner" | ` + noLatest},
			msgs: []string{`[images] an image without tag or digest means :latest, which is denied: pin a version or a digest ` +
				`(found "registry.corp.example/agents/runner"; allowed: ` + noLatest + `)`},
		},
		{
			name:  "explicit latest",
			tweak: image("registry.corp.example/agents/runner:latest"),
			want:  []string{path + `"registry.corp.example/agents/runner:latest" | a tag not in ["latest"], or a digest`},
			msgs: []string{`[images] tag "latest" is mutable and denied: pin a version or a digest ` +
				`(found "registry.corp.example/agents/runner:latest"; allowed: a tag not in ["latest"], or a digest)`},
		},
		{
			name:  "off the allowlist and latest: both",
			tweak: image("busybox"),
			want:  []string{path + `"busybox" | ` + allowDefault, path + `"busybox" | ` + noLatest},
			msgs: []string{
				`[images] image index.docker.io/library/busybox is not on the allowlist (found "busybox"; allowed: ` + allowDefault + `)`,
				`[images] an image without tag or digest means :latest, which is denied: pin a version or a digest (found "busybox"; allowed: ` + noLatest + `)`,
			},
		},
		{
			name:  "unparseable: upper case",
			tweak: image("UPPER/case:tag"),
			want:  []string{path + `"UPPER/case:tag" | a valid image reference`},
			msgs: []string{`[images] the image reference does not parse: registry "UPPER": a registry host without "." or a port must be localhost ` +
				`(found "UPPER/case:tag"; allowed: a valid image reference)`},
		},
		{
			name:  "unparseable: a space",
			tweak: image("a b"),
			want:  []string{path + `"a b" | a valid image reference`},
			msgs:  []string{`[images] the image reference does not parse: invalid reference format: it contains ' ' (found "a b"; allowed: a valid image reference)`},
		},
		{
			name:  "a registry with a port, default policy",
			tweak: image("localhost:5000/x:1"),
			want:  []string{path + `"localhost:5000/x:1" | ` + allowDefault},
			msgs:  []string{`[images] image localhost:5000/x is not on the allowlist (found "localhost:5000/x:1"; allowed: ` + allowDefault + `)`},
		},
		{name: "a registry with a port, allowed", policy: `images: {allow: ["localhost:5000/**"]}`, tweak: image("localhost:5000/x:1")},
		{
			name: "a registry with a port, another port", policy: `images: {allow: ["localhost:5000/**"]}`, tweak: image("localhost:5001/x:1"),
			want: []string{path + `"localhost:5001/x:1" | images matching ["localhost:5000/**"]`},
		},
	}
	// * is one segment, ** any depth.
	star := `images: {allow: ["registry.corp.example/agents/*"]}`
	cases = append(cases,
		checkCase{name: "* one segment", policy: star, tweak: image("registry.corp.example/agents/runner:1.0")},
		checkCase{
			name: "* not two segments", policy: star, tweak: image("registry.corp.example/agents/team/runner:1.0"),
			want: []string{path + `"registry.corp.example/agents/team/runner:1.0" | images matching ["registry.corp.example/agents/*"]`},
		},
		checkCase{
			name: "* not zero segments", policy: star, tweak: image("registry.corp.example/agents:1.0"),
			want: []string{path + `"registry.corp.example/agents:1.0" | images matching ["registry.corp.example/agents/*"]`},
		},
		checkCase{name: "* within a segment", policy: `images: {allow: ["registry.corp.example/agents/run*"]}`, tweak: image("registry.corp.example/agents/runner:1.0")},
	)
	// docker.io and index.docker.io are one registry, whichever side names which; "busybox" is docker.io/library/busybox.
	for _, pat := range []string{"docker.io/library/*", "index.docker.io/library/*"} {
		for _, ref := range []string{"busybox:1.36", "library/busybox:1.36", "docker.io/library/busybox:1.36", "index.docker.io/library/busybox:1.36", "docker.io/busybox:1.36"} {
			cases = append(cases, checkCase{name: "docker hub " + pat + " " + ref, policy: `images: {allow: ["` + pat + `"]}`, tweak: image(ref)})
		}
		cases = append(cases, checkCase{
			name: "docker hub " + pat + " other namespace", policy: `images: {allow: ["` + pat + `"]}`, tweak: image("docker.io/evil/busybox:1.36"),
			want: []string{path + `"docker.io/evil/busybox:1.36" | images matching ["` + pat + `"]`},
			msgs: []string{`[images] image index.docker.io/evil/busybox is not on the allowlist (found "docker.io/evil/busybox:1.36"; allowed: images matching ["` + pat + `"])`},
		})
	}
	// deny wins over allow.
	deny := `images: {allow: ["registry.corp.example/agents/**"], deny: ["registry.corp.example/agents/untrusted/**", "docker.io/**"]}`
	cases = append(cases,
		checkCase{name: "allowed, not denied", policy: deny, tweak: image("registry.corp.example/agents/runner:1.0")},
		checkCase{
			name: "allowed and denied", policy: deny, tweak: image("registry.corp.example/agents/untrusted/tool:1.0"),
			want: []string{path + `"registry.corp.example/agents/untrusted/tool:1.0" | images not matching "registry.corp.example/agents/untrusted/**"`},
			msgs: []string{`[images] image registry.corp.example/agents/untrusted/tool is denied by pattern "registry.corp.example/agents/untrusted/**" ` +
				`(found "registry.corp.example/agents/untrusted/tool:1.0"; allowed: images not matching "registry.corp.example/agents/untrusted/**")`},
		},
		checkCase{
			name: "denied without an allowlist", policy: `images: {deny: ["docker.io/**"]}`, tweak: image("nginx:1.27"),
			want: []string{path + `"nginx:1.27" | images not matching "docker.io/**"`},
		},
		checkCase{name: "no allowlist: anything parseable", policy: `images: {}`, tweak: image("ghcr.io/anyone/anything")},
	)
	// requireDigest.
	digests := `images: {allow: ["registry.corp.example/**"], requireDigest: true}`
	cases = append(cases,
		checkCase{name: "digest required and present", policy: digests, tweak: image("registry.corp.example/agents/runner@" + digest)},
		checkCase{name: "digest required, tag and digest", policy: digests, tweak: image("registry.corp.example/agents/runner:1.0@" + digest)},
		checkCase{
			name: "digest required, tag only", policy: digests,
			want: []string{path + `"` + testImage + `" | a reference with @sha256:… digest`},
			msgs: []string{`[images] the policy requires images pinned by digest (found "` + testImage + `"; allowed: a reference with @sha256:… digest)`},
		},
	)
	// Every container kind.
	cases = append(cases, kindCases("off the allowlist", "", func(c *corev1.Container) { c.Image = "ghcr.io/x/y:1" },
		func(path string) []string { return []string{path + `.image | "ghcr.io/x/y:1" | ` + allowDefault} })...)
	cases = append(cases, checkCase{
		name: "every kind at once", allKinds: true,
		tweak: func(p *corev1.Pod) {
			for _, k := range containerKinds {
				k.get(p).Image = "a b"
			}
		},
		want: []string{
			`spec.initContainers[0].image | "a b" | a valid image reference`,
			`spec.containers[0].image | "a b" | a valid image reference`,
			`spec.ephemeralContainers[0].image | "a b" | a valid image reference`,
		},
	})
	runCheckCases(t, checkImages, cases)
}

func TestImagesJudgesImageVolumes(t *testing.T) {
	pod := validPod()
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "tools", VolumeSource: corev1.VolumeSource{
		Image: &corev1.ImageVolumeSource{Reference: "docker.io/library/busybox:1.36"}}})
	vs := runCheck(t, Default(), checkImages, pod)
	if len(vs) != 1 {
		t.Fatalf("want one violation for the image volume, got %+v", vs)
	}
	want := "spec.volumes[" + strconv.Itoa(len(pod.Spec.Volumes)-1) + "].image.reference"
	if vs[0].Field != want || vs[0].Found != `"docker.io/library/busybox:1.36"` {
		t.Errorf("got %s %s, want %s", vs[0].Field, vs[0].Found, want)
	}
}
