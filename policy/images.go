package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Image references are compared the way the kubelet pulls them, so that a second spelling of one image is
// judged as the first: images.allow, images.deny, images.denyTags, requireDigest, the image globs of container
// exemptions and digest pinning all go through parseImage (references) and compileImagePattern (patterns).
//
//   - The reference is parsed as the kubelet parses it (github.com/distribution/reference,
//     ParseNormalizedNamed: "nginx" is docker.io/library/nginx), and must also parse, in its normalised form,
//     with go-containerregistry's StrictValidation (what digest pinning resolves). Anything either refuses is
//     denied with the parse error: "a/../b", "a//b", a trailing "/", upper case in the repository path, spaces,
//     an empty tag, a digest of the wrong length.
//   - The registry host is lower-cased (DNS names are case-insensitive: EVIL.EXAMPLE is evil.example), the
//     default port :443 is dropped (the runtime speaks HTTPS to 443 either way; :0443 is 443 too), IPv6 hosts
//     are written in their canonical form ([0:0::1] is [::1], an IPv4-mapped address is the IPv4 address), and
//     docker.io, index.docker.io and registry-1.docker.io are one registry, index.docker.io, whose one-segment
//     repositories are under library/.
//   - :80 is kept: the runtime speaks HTTPS to port 80 for "host:80", another endpoint than "host".
//   - Refused although the runtime may accept them, because they could not be compared reliably: a
//     one-label host that is not localhost and has no port (it exists only as an upper-case spelling,
//     "UPPER/x", which lower-cased would read as a Docker Hub repository), and a host whose last label is
//     numeric but that is not a canonical IPv4 address ("127.1", "0x7f.0.0.1": resolvers read them as
//     addresses in ways a pattern cannot follow).
//   - Tags are case-sensitive and kept as written.

// image is a parsed, normalised container image reference.
type image struct {
	registry   string // index.docker.io, evil.example, evil.example:5000, [::1]:5000
	host       string // registry without its port
	repository string // library/nginx
	tag        string // "" when the reference names none (it then means latest, unless a digest pins it)
	digest     string // sha256:…, "" when absent
	segments   []string
	// hostSegments is segments with the host alone first: what a deny pattern without a port matches.
	hostSegments []string
}

// repoSegments is registry/repository split on "/", what allow and deny patterns match.
func (i *image) repoSegments() []string { return i.segments }

// fullSegments is like repoSegments with ":tag" or "@digest" on the last segment, what container exemption
// patterns match ("docker.io/istio/proxyv2:*").
func (i *image) fullSegments() []string {
	out := append([]string(nil), i.segments...)
	last := len(out) - 1
	switch {
	case i.digest != "":
		out[last] += "@" + i.digest
	case i.tag != "":
		out[last] += ":" + i.tag
	default:
		out[last] += ":latest"
	}
	return out
}

// name is the normalised registry/repository, as messages show it.
func (i *image) name() string { return i.registry + "/" + i.repository }

// String is the normalised reference.
func (i *image) String() string {
	s := i.name()
	if i.tag != "" {
		s += ":" + i.tag
	}
	if i.digest != "" {
		s += "@" + i.digest
	}
	return s
}

// imageCache keeps parsed references: a cluster runs few distinct images, and parsing allocates.
// Bounded so that a flood of distinct names cannot grow memory without limit.
var imageCache = struct {
	sync.RWMutex
	m map[string]*imageResult
}{m: map[string]*imageResult{}}

const imageCacheMax = 4096

type imageResult struct {
	img *image
	err error
}

// parseImage parses and normalises a reference; never by prefix or regular expression of our own.
func parseImage(ref string) (*image, error) {
	imageCache.RLock()
	r, ok := imageCache.m[ref]
	imageCache.RUnlock()
	if ok {
		return r.img, r.err
	}
	img, err := parseImageUncached(ref)
	imageCache.Lock()
	if len(imageCache.m) >= imageCacheMax {
		clear(imageCache.m)
	}
	imageCache.m[ref] = &imageResult{img: img, err: err}
	imageCache.Unlock()
	return img, err
}

func parseImageUncached(ref string) (*image, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		if why := explainReference(ref); why != "" && errors.Is(err, reference.ErrReferenceInvalidFormat) && err.Error() == reference.ErrReferenceInvalidFormat.Error() {
			return nil, fmt.Errorf("%w: %s", err, why)
		}
		return nil, err
	}
	img := &image{}
	if t, ok := named.(reference.Tagged); ok {
		img.tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		img.digest = d.Digest().String()
	}
	img.registry, img.host, err = normalizeRegistry(reference.Domain(named))
	if err != nil {
		return nil, err
	}
	img.repository = reference.Path(named)
	if img.host == name.DefaultRegistry && !strings.Contains(img.repository, "/") {
		img.repository = "library/" + img.repository // registry-1.docker.io/nginx is library/nginx, as docker.io/nginx is
	}
	// Digest pinning resolves the normalised reference with go-containerregistry: it must read it as the
	// kubelet does.
	strict := img.String()
	if img.tag == "" && img.digest == "" {
		strict += ":latest"
	}
	if _, err := name.ParseReference(strict, name.StrictValidation); err != nil {
		return nil, fmt.Errorf("normalised to %q, which go-containerregistry refuses: %w", img.String(), err)
	}
	img.segments = strings.Split(img.name(), "/")
	img.hostSegments = img.segments
	if img.host != img.registry {
		img.hostSegments = append([]string{img.host}, img.segments[1:]...)
	}
	return img, nil
}

// pathComponent is one repository path segment as the runtime accepts it (distribution/reference's grammar).
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)

// explainReference names what a reference the parser refused as "invalid reference format" got wrong.
func explainReference(ref string) string {
	for _, r := range ref {
		if r <= ' ' || r >= 0x7f {
			return fmt.Sprintf("it contains %q", r)
		}
	}
	rest, dig, hasDigest := strings.Cut(ref, "@")
	if hasDigest {
		if _, err := digest.Parse(dig); err != nil {
			return fmt.Sprintf("digest %q: %v", dig, err)
		}
	}
	segs := strings.Split(rest, "/")
	last := segs[len(segs)-1]
	if i := strings.LastIndexByte(last, ':'); i >= 0 {
		if tag := last[i+1:]; !tagPattern.MatchString(tag) {
			return fmt.Sprintf("tag %q: a tag is 1 to 128 letters, digits, \"_\", \".\" or \"-\", not starting with \".\" or \"-\"", tag)
		}
		segs[len(segs)-1] = last[:i]
	}
	if h := segs[0]; len(segs) > 1 && (strings.ContainsAny(h, ".:[") || strings.ToLower(h) != h || h == "localhost") {
		if _, _, err := normalizeRegistry(h); err != nil {
			return err.Error()
		}
		segs = segs[1:]
	}
	for _, s := range segs {
		switch {
		case s == "":
			return `an empty path segment ("//", or a leading or trailing "/")`
		case s == "." || s == "..":
			return fmt.Sprintf("path segment %q: the runtime refuses dot segments", s)
		case !pathComponent.MatchString(s):
			return fmt.Sprintf("path segment %q: repository path segments are lower-case letters and digits, joined by \".\", \"_\", \"__\" or \"-\"", s)
		}
	}
	return ""
}

var dockerHubAliases = map[string]bool{"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true}

// normalizeRegistry returns the registry as agentgate compares it (see the head of this file), and its host
// without the port.
func normalizeRegistry(domain string) (registry, host string, err error) {
	var port string
	if strings.HasPrefix(domain, "[") {
		end := strings.IndexByte(domain, ']')
		if end < 0 {
			return "", "", fmt.Errorf("registry %q: an IPv6 address needs its closing \"]\"", domain)
		}
		addr, perr := netip.ParseAddr(domain[1:end])
		if perr != nil || !addr.Is6() || addr.Zone() != "" {
			return "", "", fmt.Errorf("registry %q: %q is not an IPv6 address", domain, domain[1:end])
		}
		if rest := domain[end+1:]; rest != "" {
			if rest[0] != ':' {
				return "", "", fmt.Errorf("registry %q: unexpected %q after the address", domain, rest)
			}
			port = rest[1:]
		}
		if addr = addr.Unmap(); addr.Is4() {
			host = addr.String()
		} else {
			host = "[" + addr.String() + "]"
		}
	} else {
		host = domain
		if i := strings.LastIndexByte(domain, ':'); i >= 0 {
			host, port = domain[:i], domain[i+1:]
		}
		host = strings.ToLower(host)
		if err := checkHost(host, port != ""); err != nil {
			return "", "", fmt.Errorf("registry %q: %w", domain, err)
		}
	}
	if port != "" || strings.HasSuffix(domain, ":") {
		n, perr := strconv.Atoi(port)
		if perr != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
			return "", "", fmt.Errorf("registry %q: port %q is not a number from 1 to 65535", domain, port)
		}
		port = strconv.Itoa(n)
		if n == 443 {
			port = ""
		}
	}
	if dockerHubAliases[host] {
		host = name.DefaultRegistry
	}
	registry = host
	if port != "" {
		registry += ":" + port
	}
	return registry, host, nil
}

// checkHost accepts a lower-cased DNS name or IPv4 address, as the runtime's grammar does, minus the
// spellings agentgate cannot compare (see the head of this file).
func checkHost(host string, hasPort bool) error {
	if host == "" {
		return errors.New("empty host")
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("%q is not a host name (letters, digits and inner \"-\", labels joined by \".\")", host)
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is4() || a.String() != host {
			return fmt.Errorf("%q ends in a number but is not an IPv4 address written as four decimal numbers", host)
		}
	}
	if len(labels) == 1 && host != "localhost" && !hasPort {
		return errors.New(`a registry host without "." or a port must be localhost`)
	}
	return nil
}

// glob matches a normalised image name segment by segment: "*" (and path.Match syntax) within one segment,
// "**" across any number of segments, including none.
type glob struct {
	source   string
	segments []string
	// anyPort: the pattern names a host without a port, and matches that host on every port (deny patterns:
	// evil.example:8443 is evil.example's machine as much as evil.example is).
	anyPort bool
}

// compileImages compiles spec.images: allow and deny patterns, denyTags, pinRegistries.
func compileImages(p *Policy, s *Images, ip *field.Path) field.ErrorList {
	var errs field.ErrorList
	var e field.ErrorList
	p.allow, e = compileGlobs(s.Allow, ip.Child("allow"), false)
	errs = append(errs, e...)
	p.deny, e = compileGlobs(s.Deny, ip.Child("deny"), true)
	errs = append(errs, e...)
	p.denyTags = map[string]bool{}
	for i, t := range s.DenyTags {
		if _, err := name.NewTag("example.invalid/x:"+t, name.StrictValidation); err != nil || !tagPattern.MatchString(t) {
			errs = append(errs, field.Invalid(ip.Child("denyTags").Index(i), t, "not a valid image tag"))
		}
		p.denyTags[t] = true
	}
	p.pinAccess = map[string]PinAccess{}
	for i, r := range s.PinRegistries {
		rp := ip.Child("pinRegistries").Index(i)
		if r.Registry == "" {
			errs = append(errs, field.Required(rp.Child("registry"), `the registry, host[:port], such as "localhost:5000"`))
			continue
		}
		reg, _, err := normalizeRegistry(r.Registry)
		if err == nil && strings.ContainsAny(r.Registry, "/*?[\\@") && !strings.HasPrefix(r.Registry, "[") {
			err = errors.New("a registry host[:port], without path or pattern")
		}
		if err != nil {
			errs = append(errs, field.Invalid(rp.Child("registry"), r.Registry, err.Error()))
			continue
		}
		if !r.LocalAddresses && !r.PlainHTTP {
			errs = append(errs, field.Invalid(rp, r.Registry, "allows nothing: set localAddresses or plainHTTP"))
			continue
		}
		if _, dup := p.pinAccess[reg]; dup {
			errs = append(errs, field.Duplicate(rp.Child("registry"), r.Registry))
			continue
		}
		p.pinAccess[reg] = PinAccess{LocalAddresses: r.LocalAddresses, PlainHTTP: r.PlainHTTP}
	}
	return errs
}

// tagPattern is a tag as the runtime accepts it (go-containerregistry also accepts a leading "." or "-").
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func compileGlobs(patterns []string, fp *field.Path, anyPort bool) ([]glob, field.ErrorList) {
	var errs field.ErrorList
	out := make([]glob, 0, len(patterns))
	for i, pat := range patterns {
		g, err := compileImagePattern(pat, false)
		if err != nil {
			errs = append(errs, field.Invalid(fp.Index(i), pat, err.Error()))
			continue
		}
		g.anyPort = anyPort && g.anyPort
		out = append(out, g)
	}
	return out, errs
}

// compileExemptImage compiles a container exemption's image: registry/repository:tag, ports compared exactly
// (an exemption relaxes, so it names exactly what it trusts).
func compileExemptImage(pattern string) (glob, error) {
	g, err := compileImagePattern(pattern, true)
	g.anyPort = false
	return g, err
}

// compileImagePattern normalises a pattern as parseImage normalises a reference, so that both sides of a
// comparison are spelt one way: "DOCKER.IO/nginx" is index.docker.io/library/nginx, "evil.example:443/**" is
// evil.example/**. withIdentifier: the last segment also carries ":tag" or "@digest" (container exemptions).
// A pattern that could never match a reference the runtime accepts (upper case or dot segments in the
// repository path, a literal last segment without a tag where one is expected) is refused, so that a typo
// cannot quietly allow or deny nothing. The returned glob has anyPort set when its host names no port;
// callers that compare ports exactly clear it.
func compileImagePattern(pattern string, withIdentifier bool) (glob, error) {
	if pattern == "" {
		return glob{}, errors.New("empty pattern")
	}
	segs := strings.Split(pattern, "/")
	host := segs[0]
	if len(segs) < 2 || !(strings.ContainsAny(host, ".:*?[") || strings.EqualFold(host, "localhost")) {
		return glob{}, errors.New(`must start with a registry host, such as "docker.io/library/*" or "registry.example.com/**"`)
	}
	g := glob{source: pattern, segments: segs}
	if err := g.compileHost(host); err != nil {
		return glob{}, err
	}
	for i, s := range segs[1:] {
		last := i == len(segs)-2
		if err := checkPatternSegment(s, withIdentifier && last); err != nil {
			return glob{}, err
		}
	}
	if g.segments[0] == name.DefaultRegistry && len(segs) == 2 && segs[1] != "**" {
		// "docker.io/nginx" names library/nginx, as the reference "docker.io/nginx" does.
		g.segments = []string{g.segments[0], "library", segs[1]}
	}
	return g, nil
}

// compileHost normalises the host segment: a literal host as normalizeRegistry does, escaped for
// path.Match ("[::1]"); a host glob lower-cased, with a literal ":443" dropped.
func (g *glob) compileHost(host string) error {
	literal := strings.HasPrefix(host, "[") || !strings.ContainsAny(host, `*?[\`)
	if literal {
		reg, bare, err := normalizeRegistry(host)
		if err != nil {
			return err
		}
		g.anyPort = reg == bare
		g.segments[0] = strings.NewReplacer("[", `\[`, "]", `\]`).Replace(reg)
		return nil
	}
	if _, err := path.Match(host, ""); err != nil {
		return fmt.Errorf("registry %q: %w", host, err)
	}
	host = strings.TrimSuffix(strings.ToLower(host), ":443")
	g.anyPort = !strings.Contains(host, ":")
	g.segments[0] = host
	return nil
}

// checkPatternSegment refuses a repository segment that no accepted reference could match. identifier:
// the segment is the last of an exemption pattern, "name:tag" or "name@digest".
func checkPatternSegment(s string, identifier bool) error {
	if s == "" {
		return errors.New("empty path segment")
	}
	if s == "**" {
		return nil
	}
	if _, err := path.Match(s, ""); err != nil {
		return fmt.Errorf("segment %q: %w", s, err)
	}
	repo, id := s, ""
	if identifier {
		i := strings.IndexAny(s, ":@")
		if i < 0 {
			if !strings.ContainsAny(s, `*?[\`) {
				return fmt.Errorf("segment %q names no tag or digest, and so matches no image: write %q for any tag", s, s+":*")
			}
			return nil // a glob over "name:tag": tags may be upper case
		}
		repo, id = s[:i], s[i:]
	}
	if strings.ContainsAny(repo, `*?[\`) {
		if strings.ToLower(repo) != repo {
			return fmt.Errorf("segment %q can never match: repository paths are lower case", s)
		}
	} else if !pathComponent.MatchString(repo) {
		return fmt.Errorf("segment %q can never match: repository path segments are lower-case letters and digits, joined by \".\", \"_\", \"__\" or \"-\"", repo)
	}
	if id == ":" || id == "@" {
		return fmt.Errorf("segment %q: empty tag or digest", s)
	}
	return nil
}

// match reports whether the "/"-separated name matches.
func (g glob) match(nameSegs []string) bool { return matchSegments(g.segments, nameSegs) }

// matchImage matches the image's registry/repository, on any port when the glob says so.
func (g glob) matchImage(img *image) bool {
	if g.anyPort {
		return matchSegments(g.segments, img.hostSegments)
	}
	return matchSegments(g.segments, img.segments)
}

func matchSegments(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(segs); i++ {
				if matchSegments(rest, segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

func firstMatch(globs []glob, img *image) (glob, bool) {
	for _, g := range globs {
		if g.matchImage(img) {
			return g, true
		}
	}
	return glob{}, false
}

// admitsImageName is the policy's verdict on an image's name alone: denied by the first images.deny pattern
// that matches (deny wins), else admitted when images.allow is empty or one of its patterns matches. The
// images check reports from it, and digest pinning asks it before any registry is contacted.
func (p *Policy) admitsImageName(img *image) (deniedBy glob, denied, allowed bool) {
	if g, ok := firstMatch(p.deny, img); ok {
		return g, true, false
	}
	if len(p.allow) == 0 {
		return glob{}, false, true
	}
	_, ok := firstMatch(p.allow, img)
	return glob{}, false, ok
}

type Images struct {
	Allow         []string `json:"allow,omitempty"`
	Deny          []string `json:"deny,omitempty"`
	DenyTags      []string `json:"denyTags,omitempty"`
	RequireDigest bool     `json:"requireDigest,omitempty"`
	PinDigests    bool     `json:"pinDigests,omitempty"`
	// PinRegistries are the only registries that digest pinning may reach at a loopback, link-local,
	// unspecified or multicast address, or over plain HTTP. Every other registry is asked over HTTPS, and a
	// connection to such an address is refused when it is dialled (so a name that resolves there is too).
	PinRegistries []PinRegistry `json:"pinRegistries,omitempty"`
}

// PinRegistry lets digest pinning reach one registry where it otherwise never goes.
type PinRegistry struct {
	// Registry is host[:port], compared as image references are ("LOCALHOST:5000" is localhost:5000,
	// "registry.example:443" is registry.example).
	Registry string `json:"registry"`
	// LocalAddresses: the registry may be at a loopback, link-local, unspecified or multicast address
	// (a registry on the node, or in tests).
	LocalAddresses bool `json:"localAddresses,omitempty"`
	// PlainHTTP: the registry may be asked over HTTP, unencrypted and unauthenticated (tests).
	PlainHTTP bool `json:"plainHTTP,omitempty"`
}

// PinAccess is what digest pinning may do to reach one registry, beyond HTTPS to ordinary addresses.
type PinAccess struct {
	LocalAddresses bool
	PlainHTTP      bool
}
