package policy

import (
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// image is a container image reference as go-containerregistry parses it, normalised: docker.io and
// index.docker.io are one registry, "nginx" is index.docker.io/library/nginx.
type image struct {
	registry   string // index.docker.io
	repository string // library/nginx
	tag        string // "" when the reference names none (it then means latest, unless a digest pins it)
	digest     string // sha256:…, "" when absent
	segments   []string
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

// String is the normalised reference.
func (i *image) String() string {
	s := i.registry + "/" + i.repository
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

// parseImage parses a reference with go-containerregistry; never by prefix or regular expression.
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
	// Weak validation: a reference without tag, digest or registry is valid (the runtime fills them in),
	// and the image checks judge what it means.
	parsed, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return nil, err
	}
	img := &image{registry: parsed.Context().RegistryStr(), repository: parsed.Context().RepositoryStr()}
	switch r := parsed.(type) {
	case name.Digest:
		img.digest = r.DigestStr()
		img.tag = explicitTag(strings.TrimSuffix(ref, "@"+img.digest))
	case name.Tag:
		img.tag = explicitTag(ref)
	}
	img.segments = strings.Split(img.registry+"/"+img.repository, "/")
	return img, nil
}

// explicitTag returns the tag written in a reference without its digest, or "" when none is written:
// go-containerregistry fills in "latest" itself, and denyTags must tell the two apart only in the message.
func explicitTag(ref string) string {
	lastSlash := strings.LastIndexByte(ref, '/')
	if i := strings.LastIndexByte(ref, ':'); i > lastSlash {
		return ref[i+1:]
	}
	return ""
}
