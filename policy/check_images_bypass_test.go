package policy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestImagesBypassAttempts: other spellings of a denied or unlisted image, each with the verdict and the field
// path it must give. A deny list must catch every spelling the kubelet pulls from the same registry; a
// reference the runtime would refuse, or that agentgate cannot compare, is denied with the parse error.
func TestImagesBypassAttempts(t *testing.T) {
	const (
		d        = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		path     = "spec.containers[0].image"
		denyList = `images: {deny: ["docker.io/**", "evil.example/**"]}`
		allowed  = `images: {allow: ["registry.corp.example/agents/**"]}`
		loopback = `images: {deny: ["[::1]/**", "127.0.0.1/**", "localhost/**"]}`
		upper    = `images: {deny: ["EVIL.EXAMPLE:443/**", "Registry-1.Docker.IO/library/nginx"]}`
		tags     = `images: {denyTags: [latest]}`
	)
	hub := `images not matching "docker.io/**"`
	evil := `images not matching "evil.example/**"`
	unlisted := `images matching ["registry.corp.example/agents/**"]`
	const invalid = "a valid image reference"
	for _, tc := range []struct {
		name, policy, ref string
		allowed           string // the verdict's "allowed" value; "" when admitted
		why               string // a substring of the message, for parse errors
	}{
		// Docker Hub aliases and spellings (issue class 6).
		{"hub: registry-1.docker.io", denyList, "registry-1.docker.io/library/nginx:1.27", hub, ""},
		{"hub: upper case DOCKER.IO", denyList, "DOCKER.IO/library/nginx:1.27", hub, ""},
		{"hub: mixed case Docker.io", denyList, "Docker.io/library/nginx:1.27", hub, ""},
		{"hub: library/nginx", denyList, "library/nginx:1.27", hub, ""},
		{"hub: nginx", denyList, "nginx:1.27", hub, ""},
		{"hub: index.docker.io without library", denyList, "index.docker.io/nginx:1.27", hub, ""},
		{"hub: docker.io:443", denyList, "docker.io:443/library/nginx:1.27", hub, ""},
		{"hub: registry-1.docker.io:443 without library", denyList, "registry-1.docker.io:443/nginx:1.27", hub, ""},
		{"hub: another port of docker.io", denyList, "docker.io:5000/x:1", hub, ""},
		{"hub: digest only", denyList, "nginx@" + d, hub, ""},
		// Case and ports.
		{"host upper case", denyList, "EVIL.EXAMPLE/x:1", evil, ""},
		{"default port 443", denyList, "evil.example:443/x:1", evil, ""},
		{"port 443 with a leading zero", denyList, "evil.example:0443/x:1", evil, ""},
		{"another port of a denied host", denyList, "evil.example:8443/x:1", evil, ""},
		{"port 80 of a denied host", denyList, "evil.example:80/x:1", evil, ""},
		{"mixed case, port and digest", denyList, "Evil.Example:443/x@" + d, evil, ""},
		{"upper-case pattern, lower-case reference", upper, "evil.example/x:1", `images not matching "EVIL.EXAMPLE:443/**"`, ""},
		{"upper-case hub alias pattern, short reference", upper, "nginx:1.27", `images not matching "Registry-1.Docker.IO/library/nginx"`, ""},
		{"allowlist: :443 is the allowed registry", allowed, "registry.corp.example:443/agents/x:1", "", ""},
		{"allowlist: upper-case host is the allowed registry", allowed, "REGISTRY.CORP.EXAMPLE/agents/x:1", "", ""},
		{"allowlist: another port is another registry", allowed, "registry.corp.example:5000/agents/x:1", unlisted, ""},
		{"allowlist: port 80 is another registry", allowed, "registry.corp.example:80/agents/x:1", unlisted, ""},
		{"allowlist: a longer host", allowed, "registry.corp.example.evil.io/agents/x:1", unlisted, ""},
		{"allowlist: the allowed host as a path", allowed, "evil.io/registry.corp.example/agents/x:1", unlisted, ""},
		{"allowlist: a prefix that is not a segment", allowed, "registry.corp.example/agents-evil/x:1", unlisted, ""},
		// Path tricks the runtime refuses.
		{"dot-dot segment", allowed, "registry.corp.example/agents/../evil:1", invalid, `path segment ".."`},
		{"dot segment", allowed, "registry.corp.example/agents/./x:1", invalid, `path segment "."`},
		{"empty segment", allowed, "registry.corp.example/agents//x:1", invalid, "an empty path segment"},
		{"trailing slash", allowed, "registry.corp.example/agents/x/:1", invalid, "an empty path segment"},
		{"upper case in the repository", allowed, "registry.corp.example/Agents/x:1", invalid, "must be lowercase"},
		{"leading underscore", allowed, "registry.corp.example/agents/_x:1", invalid, `path segment "_x"`},
		{"leading space", allowed, " registry.corp.example/agents/x:1", invalid, "it contains ' '"},
		{"trailing newline", allowed, "registry.corp.example/agents/x:1\n", invalid, `it contains '\n'`},
		{"homoglyph host", denyList, "evil.exampl\u0435/x:1", invalid, "it contains"},
		{"fully qualified host with a trailing dot", denyList, "evil.example./x:1", invalid, "is not a host name"},
		{"user info in the host", allowed, "registry.corp.example@evil.io/agents/x:1", invalid, "digest"},
		{"one-label upper-case host", denyList, "EVIL/x:1", invalid, "must be localhost"},
		{"empty port", allowed, "registry.corp.example:/agents/x:1", invalid, `port ""`},
		{"port out of range", denyList, "evil.example:65979/x:1", invalid, "not a number from 1 to 65535"},
		{"signed port", denyList, "evil.example:+443/x:1", invalid, `port "+443"`},
		{"a 64-hex repository", denyList, strings.Repeat("ab", 32), invalid, "64-byte hexadecimal"},
		// Tags and digests.
		{"empty tag", allowed, "registry.corp.example/agents/x:", invalid, `tag ""`},
		{"tag starting with a dot", allowed, "registry.corp.example/agents/x:.1", invalid, `tag ".1"`},
		{"digest too short", allowed, "registry.corp.example/agents/x@sha256:abc", invalid, "invalid checksum digest length"},
		{"digest in upper-case hex", allowed, "registry.corp.example/agents/x@sha256:" + strings.ToUpper(d[7:]), invalid, "invalid checksum digest format"},
		{"empty digest", allowed, "registry.corp.example/agents/x:1@", invalid, "digest"},
		{"two digests", allowed, "registry.corp.example/agents/x@" + d + "@" + d, invalid, "digest"},
		{"tags are case-sensitive: LATEST is another tag", tags, "registry.corp.example/agents/x:LATEST", "", ""},
		{"a denied tag pinned by a digest", tags, "registry.corp.example/agents/x:latest@" + d, "", ""},
		// IPv6, loopback, numeric hosts.
		{"IPv6 long form", loopback, "[0:0:0:0:0:0:0:1]:5000/x:1", `images not matching "[::1]/**"`, ""},
		{"IPv4-mapped IPv6 loopback", loopback, "[::ffff:7f00:1]/x:1", `images not matching "127.0.0.1/**"`, ""},
		{"localhost in upper case with a port", loopback, "LOCALHOST:5000/x:1", `images not matching "localhost/**"`, ""},
		{"IPv6 with a zone", loopback, "[::1%25lo]/x:1", invalid, "not an IPv6 address"},
		{"short IPv4", loopback, "127.1/x:1", invalid, "not an IPv4 address"},
		{"hexadecimal IPv4", loopback, "0x7f.0.0.1/x:1", invalid, "not an IPv4 address"},
		{"IPv4 with a leading zero", loopback, "127.0.0.01/x:1", invalid, "not an IPv4 address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := validPod()
			pod.Spec.Containers[0].Image = tc.ref
			vs := runCheck(t, testPolicy(t, tc.policy), checkImages, pod)
			if tc.allowed == "" {
				if len(vs) != 0 {
					t.Fatalf("%q: want admitted, got %q", tc.ref, vs[0].Message)
				}
				return
			}
			if len(vs) != 1 {
				t.Fatalf("%q: want one violation, got %+v", tc.ref, vs)
			}
			v := vs[0]
			if v.Field != path || v.Found != quote(tc.ref) || v.Allowed != tc.allowed || !strings.Contains(v.Message, tc.why) {
				t.Errorf("%q:\n got %s | %s | %s: %s\nwant %s | %q | %s, message containing %q", tc.ref, v.Field, v.Found, v.Allowed, v.Message, path, tc.ref, tc.allowed, tc.why)
			}
		})
	}
}

// TestImagePatternsNormalised: patterns are spelt as references are, so upper case, :443 and the Docker Hub
// aliases in a policy mean what they mean in a pod; a pattern that could never match is refused with its path.
func TestImagePatternsNormalised(t *testing.T) {
	for _, tc := range []struct {
		spec, path, detail string // path "" means valid
	}{
		{`images: {deny: ["DOCKER.IO/**", "Evil.Example:443/x/*", "[0:0::1]:5000/**", "registry-1.docker.io/nginx"]}`, "", ""},
		{`images: {allow: ["*.Corp.Example:443/**"]}`, "", ""},
		{`images: {allow: ["registry.corp.example/Agents/**"]}`, "spec.images.allow[0]", "can never match"},
		{`images: {allow: ["registry.corp.example/agents/Run*"]}`, "spec.images.allow[0]", "repository paths are lower case"},
		{`images: {deny: ["registry.corp.example/agents/../x"]}`, "spec.images.deny[0]", "can never match"},
		{`images: {deny: ["registry.corp.example/agents/x:1"]}`, "spec.images.deny[0]", "can never match"},
		{`images: {deny: ["evil.example:99999/**"]}`, "spec.images.deny[0]", "not a number from 1 to 65535"},
		{`images: {deny: ["127.1/**"]}`, "spec.images.deny[0]", "not an IPv4 address"},
		{`images: {denyTags: [".hidden"]}`, "spec.images.denyTags[0]", "not a valid image tag"},
		{`exempt: {containers: [{name: mesh, image: "docker.io/istio/Proxyv2:*", checks: [images], usernames: [mesh-operator]}]}`, "spec.exempt.containers[0].image", "can never match"},
		{`exempt: {containers: [{name: mesh, image: "docker.io/istio/proxyv2", checks: [images], usernames: [mesh-operator]}]}`, "spec.exempt.containers[0].image", "names no tag or digest"},
		{`exempt: {containers: [{name: mesh, image: "DOCKER.IO/istio/proxyv2:1.20-DISTROLESS", checks: [images], usernames: [mesh-operator]}]}`, "", ""},
	} {
		_, errs := Parse([]byte(policyHead + "spec:\n  " + tc.spec + "\n"))
		if tc.path == "" {
			if len(errs) > 0 {
				t.Errorf("%s: %v", tc.spec, errs.ToAggregate())
			}
			continue
		}
		if len(errs) != 1 || errs[0].Field != tc.path || errs[0].Type != field.ErrorTypeInvalid || !strings.Contains(errs[0].Detail, tc.detail) {
			t.Errorf("%s: got %v, want one Invalid at %s containing %q", tc.spec, errs.ToAggregate(), tc.path, tc.detail)
		}
	}

	// What the normalised patterns match.
	p := testPolicy(t, `images: {deny: ["DOCKER.IO/**", "[0:0::1]:5000/**"], allow: ["*.Corp.Example:443/**", "[::1]:5000/**"]}
exempt: {containers: [{name: mesh, image: "DOCKER.IO/istio/proxyv2:1.20-DISTROLESS", checks: [images], usernames: [mesh-operator]}]}`)
	for ref, want := range map[string]string{
		"a.corp.example/x:1":     "",
		"a.corp.example:443/x:1": "",
		"a.corp.example:444/x:1": "not on the allowlist",
		"[::1]:5000/x:1":         "denied by pattern",
		"nginx:1":                "denied by pattern",
	} {
		pod := validPod()
		pod.Spec.Containers[0].Image = ref
		vs := runCheck(t, p, checkImages, pod)
		if (want == "") != (len(vs) == 0) || (want != "" && !strings.Contains(vs[0].Message, want)) {
			t.Errorf("%s: got %v, want %q", ref, vs, want)
		}
	}
	mesh := &corev1.Container{Name: "mesh", Image: "istio/proxyv2:1.20-DISTROLESS"}
	meshOperator := Requester{Username: "mesh-operator"}
	if len(p.containerRelaxations(mesh, meshOperator)) == 0 {
		t.Error("the exemption does not match the short spelling of its image")
	}
	if mesh.Image = "istio/proxyv2:1.20-distroless"; len(p.containerRelaxations(mesh, meshOperator)) > 0 {
		t.Error("tags are case-sensitive, yet the exemption matches another tag")
	}
}

func TestPinRegistriesParse(t *testing.T) {
	for _, tc := range []struct {
		spec, path string
		typ        field.ErrorType
	}{
		{`images: {pinDigests: true, pinRegistries: [{registry: "LOCALHOST:5000", localAddresses: true}, {registry: "[::1]:5000", plainHTTP: true}]}`, "", ""},
		{`images: {pinRegistries: [{localAddresses: true}]}`, "spec.images.pinRegistries[0].registry", field.ErrorTypeRequired},
		{`images: {pinRegistries: [{registry: "localhost:5000"}]}`, "spec.images.pinRegistries[0]", field.ErrorTypeInvalid},
		{`images: {pinRegistries: [{registry: "localhost:5000/agents", localAddresses: true}]}`, "spec.images.pinRegistries[0].registry", field.ErrorTypeInvalid},
		{`images: {pinRegistries: [{registry: "*.local", localAddresses: true}]}`, "spec.images.pinRegistries[0].registry", field.ErrorTypeInvalid},
		{`images: {pinRegistries: [{registry: "localhost:5000", plainHTTP: true}, {registry: "LOCALHOST:5000", localAddresses: true}]}`, "spec.images.pinRegistries[1].registry", field.ErrorTypeDuplicate},
		{`images: {pinRegistries: [{registry: "localhost:5000", localAdresses: true}]}`, "spec.images.pinRegistries[0].localAdresses", field.ErrorTypeForbidden},
	} {
		_, errs := Parse([]byte(policyHead + "spec:\n  " + tc.spec + "\n"))
		if tc.path == "" {
			if len(errs) > 0 {
				t.Errorf("%s: %v", tc.spec, errs.ToAggregate())
			}
			continue
		}
		if len(errs) == 0 || errs[0].Field != tc.path || errs[0].Type != tc.typ {
			t.Errorf("%s: got %v, want %s at %s", tc.spec, errs.ToAggregate(), tc.typ, tc.path)
		}
	}
}
