package policy

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// agentgate's one JSON decoder: AdmissionReviews, workloads, ConfigMaps, Namespaces and policies all go
// through UnmarshalStrict or UnmarshalKnown, and every field problem comes back as one error type,
// *DecodeError, that callers inspect with errors.As.
//
// Semantics: encoding/json/v2 (its go-json-experiment mirror until the standard library's is stable), which
// matches field names case-sensitively, refuses duplicate object member names (map keys included), invalid
// UTF-8 and trailing data. That is what sigs.k8s.io/json's UnmarshalStrict(DisallowDuplicateFields,
// DisallowUnknownFields) refused, at about 3 times the speed (the decode path dominates admission cost:
// DESIGN.md "Speed", BENCHMARKS.md). Types with their own UnmarshalJSON (resource.Quantity,
// intstr.IntOrString, metav1.Time, runtime.RawExtension) decode themselves.
//
// Unknown members are found in the decoding pass itself (json.RejectUnknownMembers stops it at the first
// one). Only then is the input walked once more, token by token against the Go type (unknownWalk), to list
// every unknown and duplicated member with its path: the common input, with no unknown member, is parsed
// once.

// decodeOptions are the options of every decode; strictOptions add the refusal of unknown members.
var (
	decodeOptions = json.JoinOptions(jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
	strictOptions = json.JoinOptions(decodeOptions, json.RejectUnknownMembers(true))
)

// Problem is what is wrong with one field of a decoded document.
type Problem string

const (
	// ProblemUnknown: the Go type has no such field (a typo, or a field newer than agentgate's k8s.io/api).
	ProblemUnknown Problem = "unknown"
	// ProblemDuplicate: the member name appears twice in one object; the value would depend on which
	// occurrence a decoder keeps, so the document is ambiguous.
	ProblemDuplicate Problem = "duplicate"
	// ProblemInvalid: the value does not decode into the field's type (a string for a number, a quantity
	// that does not parse).
	ProblemInvalid Problem = "invalid"
)

// FieldError is one field problem, at its place in the document.
type FieldError struct {
	Problem Problem
	// Path is the field's dotted path, the style of Kubernetes field errors: "spec.containers[0].image",
	// map keys as members ("metadata.labels.app").
	Path string
	// Pointer is the RFC 6901 JSON pointer of the field ("/spec/containers/0/image"): exact where Path is
	// ambiguous (a member named "a.b"), and what a JSON patch addresses.
	Pointer jsontext.Pointer
	// Value is an unknown field's JSON value as written (a slice of the decoded input); empty for the
	// other problems. ShortValue is for messages.
	Value jsontext.Value
	// Offset is the byte offset of the field in the input.
	Offset int64
	// Err is the decoder's own error for an invalid value.
	Err error
}

// maxValueBytes bounds ShortValue: an unknown field can be megabytes long, its message must not be.
const maxValueBytes = 256

// ShortValue is Value for a message: at most maxValueBytes of it, then an ellipsis.
func (e *FieldError) ShortValue() string {
	if len(e.Value) <= maxValueBytes {
		return string(e.Value)
	}
	return strings.ToValidUTF8(string(e.Value[:maxValueBytes]), "") + "…"
}

func (e *FieldError) Error() string {
	switch e.Problem {
	case ProblemUnknown:
		return fmt.Sprintf("unknown field %q", e.Path)
	case ProblemDuplicate:
		return fmt.Sprintf("duplicate field %q", e.Path)
	}
	if e.Path == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// DecodeError is a document that did not decode: every unknown and duplicated field (the decoder stops at
// the first, the walk that follows finds the others), the first invalid value, or Err (malformed JSON,
// trailing data) when no field is to blame.
type DecodeError struct {
	Fields []FieldError
	Err    error
}

func (e *DecodeError) Error() string {
	msgs := make([]string, 0, len(e.Fields)+1)
	if e.Err != nil {
		msgs = append(msgs, e.Err.Error())
	}
	for i := range e.Fields {
		if i == maxListedFields {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(e.Fields)-maxListedFields))
			break
		}
		msgs = append(msgs, e.Fields[i].Error())
	}
	return strings.Join(msgs, "; ")
}

// Unwrap gives errors.Is and errors.As the decoder's own errors.
func (e *DecodeError) Unwrap() []error {
	out := make([]error, 0, len(e.Fields)+1)
	if e.Err != nil {
		out = append(out, e.Err)
	}
	for i := range e.Fields {
		if e.Fields[i].Err != nil {
			out = append(out, e.Fields[i].Err)
		}
	}
	return out
}

// Has says whether any field has the problem.
func (e *DecodeError) Has(p Problem) bool {
	for i := range e.Fields {
		if e.Fields[i].Problem == p {
			return true
		}
	}
	return false
}

// maxListedFields bounds an error message; Fields holds every field (up to maxWalkFields).
const maxListedFields = 20

// UnmarshalStrict decodes one JSON value into v, refusing unknown and duplicated fields, invalid values and
// trailing data, with a *DecodeError that lists every unknown and duplicated field. Options add to the
// strict ones (json.WithUnmarshalers, for example).
func UnmarshalStrict(data []byte, v any, opts ...json.Options) error {
	err := json.Unmarshal(data, v, joinOptions(strictOptions, opts))
	if err == nil {
		return nil
	}
	return toDecodeError(data, reflect.TypeOf(v), err)
}

// UnmarshalKnown decodes what v's type knows and returns, not refuses, the members it does not know, every
// one with its path and value, in document order. Duplicated fields, invalid values and malformed JSON are
// still a *DecodeError: they make the document ambiguous or unusable, whereas an unknown field only means
// that the sender knows a newer schema.
//
// The common document, with no unknown member, is decoded once. One with unknown members costs the
// aborted decode, a walk that lists them, and a decode that skips them.
func UnmarshalKnown(data []byte, v any, opts ...json.Options) ([]FieldError, error) {
	err := json.Unmarshal(data, v, joinOptions(strictOptions, opts))
	if err == nil {
		return nil, nil
	}
	return unmarshalKnownAfter(data, v, err, opts)
}

// UnmarshalKnownAfter is UnmarshalKnown for a caller whose own strict decode of data into a value of v's
// type already failed with err (one that decodes a document inside a bigger one, as the webhook does with
// request.object): it does not decode strictly again.
func UnmarshalKnownAfter(data []byte, v any, err error, opts ...json.Options) ([]FieldError, error) {
	return unmarshalKnownAfter(data, v, err, opts)
}

func unmarshalKnownAfter(data []byte, v any, err error, opts []json.Options) ([]FieldError, error) {
	t := reflect.TypeOf(v)
	first, ok := fieldError(err)
	if !ok || first.Problem != ProblemUnknown {
		return nil, toDecodeError(data, t, err)
	}
	fields, werr := walk(data, t)
	fields = withField(fields, first)
	if werr != nil || hasOther(fields, ProblemUnknown) {
		return nil, &DecodeError{Fields: fields, Err: werr}
	}
	reflect.ValueOf(v).Elem().SetZero() // the aborted decode left part of the document in it
	if err := json.Unmarshal(data, v, joinOptions(decodeOptions, opts)); err != nil {
		de := toDecodeError(data, t, err).(*DecodeError)
		de.Fields = append(fields, de.Fields...)
		return nil, de
	}
	return fields, nil
}

func joinOptions(base json.Options, opts []json.Options) json.Options {
	if len(opts) == 0 {
		return base
	}
	return json.JoinOptions(append([]json.Options{base}, opts...)...)
}

// toDecodeError turns the decoder's first error into a *DecodeError; after an unknown or duplicated field
// the document is walked, so that every such field is listed.
func toDecodeError(data []byte, t reflect.Type, err error) error {
	first, ok := fieldError(err)
	if !ok {
		return &DecodeError{Err: err}
	}
	if first.Problem == ProblemInvalid {
		return &DecodeError{Fields: []FieldError{first}}
	}
	fields, werr := walk(data, t)
	return &DecodeError{Fields: withField(fields, first), Err: werr}
}

// fieldError reads the decoder's error as a field problem: an unknown member, a duplicated name, or a
// value its field's type refuses. A syntax error or trailing data is none.
func fieldError(err error) (FieldError, bool) {
	var sem *json.SemanticError
	if errors.As(err, &sem) {
		if errors.Is(sem.Err, json.ErrUnknownName) {
			return FieldError{Problem: ProblemUnknown, Path: dottedPath(sem.JSONPointer), Pointer: sem.JSONPointer, Offset: sem.ByteOffset}, true
		}
		return FieldError{Problem: ProblemInvalid, Path: dottedPath(sem.JSONPointer), Pointer: sem.JSONPointer, Offset: sem.ByteOffset, Err: invalidValueError(sem)}, true
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName) {
		return FieldError{Problem: ProblemDuplicate, Path: dottedPath(syn.JSONPointer), Pointer: syn.JSONPointer, Offset: syn.ByteOffset}, true
	}
	return FieldError{}, false
}

// invalidValueError words the decoder's error itself: json/v2 words its own messages at random ("cannot"
// or "unable to", so that nobody depends on them), and FieldError.Path already says where.
func invalidValueError(sem *json.SemanticError) error { return &InvalidValueError{sem} }

// InvalidValueError is a value its field's type refuses: a JSON kind the type does not take, or a value
// the type's own decoder refuses (Err).
type InvalidValueError struct{ sem *json.SemanticError }

func (e *InvalidValueError) Error() string {
	msg := "cannot decode"
	if k := JSONKindName(e.sem.JSONKind); k != "" {
		msg += " JSON " + k
	}
	if e.sem.GoType != nil {
		msg += " into " + e.sem.GoType.String()
	}
	if e.sem.Err != nil {
		msg += ": " + e.sem.Err.Error()
	}
	return msg
}

func (e *InvalidValueError) Unwrap() error { return e.sem }

// JSONKindName names a JSON kind ("number", "string"…), "" for none.
func JSONKindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return ""
}

// withField adds the decoder's own finding to the walk's, unless the walk found it too: the walk and the
// decoder read the same rules (unknownWalk's tests hold them to it), and an error is never lost if not.
func withField(fields []FieldError, f FieldError) []FieldError {
	for i := range fields {
		if fields[i].Pointer == f.Pointer && fields[i].Problem == f.Problem {
			return fields
		}
	}
	return append([]FieldError{f}, fields...)
}

func hasOther(fields []FieldError, p Problem) bool {
	for i := range fields {
		if fields[i].Problem != p {
			return true
		}
	}
	return false
}

// dottedPath turns a JSON pointer ("/spec/containers/0/image") into the path style of field errors
// ("spec.containers[0].image"). A pointer cannot tell an array index from a numeric member name: digits
// are shown as an index. (The walk knows the types, and writes its paths itself.)
func dottedPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && tok != "" && (tok == "0" || tok[0] != '0') {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// maxWalkFields bounds what a walk collects: a hostile document with a million unknown members costs one
// walk, not a million-entry list.
const maxWalkFields = 1000

// walk lists every unknown member (for the Go type t) and every duplicated member name of the document,
// in document order. It reads tokens only: no value is decoded. The error is the document's syntax error,
// if it has one (the fields found before it are returned).
func walk(data []byte, t reflect.Type) ([]FieldError, error) {
	w := &walker{data: data, dec: jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))}
	err := w.value(t)
	return w.out, err
}

type walker struct {
	data []byte
	dec  *jsontext.Decoder
	out  []FieldError
	// segs is the path to the current value: written out only for a member that is reported, so that a walk
	// of a big object allocates no path per value.
	segs []pathSeg
}

// pathSeg is a member name, or an array index when name is "" and index ≥ 0.
type pathSeg struct {
	name  string
	index int
}

// path is the field-error style path of the current value ("spec.containers[0].image").
func (w *walker) path() string {
	var b strings.Builder
	for _, s := range w.segs {
		if s.name == "" && s.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.name)
	}
	return b.String()
}

func (w *walker) add(f FieldError) {
	if len(w.out) < maxWalkFields {
		w.out = append(w.out, f)
	}
}

// value walks one value whose Go type is t; t is nil where any member is known (an opaque value: a type
// that decodes itself, an interface, the value of an unknown member), and only duplicates are looked for.
func (w *walker) value(t reflect.Type) error {
	t = walkType(t)
	switch w.dec.PeekKind() {
	case '{':
		return w.object(t)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		if _, err := w.dec.ReadToken(); err != nil {
			return err
		}
		for i := 0; w.dec.PeekKind() != ']'; i++ {
			w.segs = append(w.segs, pathSeg{index: i})
			err := w.value(elem)
			w.segs = w.segs[:len(w.segs)-1]
			if err != nil {
				return err
			}
		}
		_, err := w.dec.ReadToken()
		return err
	default:
		_, err := w.dec.ReadToken()
		return err
	}
}

func (w *walker) object(t reflect.Type) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields = structFieldsOf(t)
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	// Any other type: the decoder refuses the mismatch; below it, the walk looks for duplicates only.
	if _, err := w.dec.ReadToken(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for w.dec.PeekKind() != '}' {
		nameOffset := w.dec.InputOffset()
		tok, err := w.dec.ReadToken()
		if err != nil {
			return err
		}
		name := tok.String()
		w.segs = append(w.segs, pathSeg{name: name, index: -1})
		err = w.member(name, fields, elem, seen, nameOffset)
		w.segs = w.segs[:len(w.segs)-1]
		if err != nil {
			return err
		}
	}
	_, err := w.dec.ReadToken()
	return err
}

// member walks the value of member name (its name read at nameOffset), the last of w.segs.
func (w *walker) member(name string, fields map[string]reflect.Type, elem reflect.Type, seen map[string]bool, nameOffset int64) error {
	if seen[name] {
		w.add(FieldError{Problem: ProblemDuplicate, Path: w.path(), Pointer: w.dec.StackPointer(), Offset: nameOffset})
	}
	seen[name] = true
	ft, known := elem, true
	if fields != nil {
		ft, known = fields[name]
	}
	if known {
		return w.value(ft)
	}
	start, at := w.dec.InputOffset(), len(w.out)
	w.add(FieldError{Problem: ProblemUnknown, Path: w.path(), Pointer: w.dec.StackPointer(), Offset: start})
	// Walked for duplicates: inside an unknown value they make the document just as ambiguous.
	if err := w.value(nil); err != nil {
		return err
	}
	if at < len(w.out) {
		w.out[at].Value = w.valueBetween(start, w.dec.InputOffset())
	}
	return nil
}

// valueBetween is the JSON value that ends at end, read after a member name that ends at start.
func (w *walker) valueBetween(start, end int64) jsontext.Value {
	if start < 0 || end > int64(len(w.data)) || start > end {
		return nil // unreachable with an in-memory decoder
	}
	v := bytes.TrimLeft(w.data[start:end], " \t\r\n:")
	return jsontext.Value(v[:len(v):len(v)])
}

// walkType is the type whose members a JSON value is checked against: pointers are followed, and a type
// that decodes itself (or an interface) is opaque, nil.
func walkType(t reflect.Type) reflect.Type {
	if t == nil {
		return nil
	}
	if w, ok := walkTypeCache.Load(t); ok {
		return w.(reflectType).t
	}
	w := t
	for w != nil && w.Kind() == reflect.Pointer {
		w = w.Elem()
	}
	if w == nil || w.Kind() == reflect.Interface || decodesItself(w) {
		w = nil
	}
	walkTypeCache.Store(t, reflectType{w})
	return w
}

// walkTypeCache holds walkType's answer per type: the reflection behind it (method sets of three interfaces)
// was a fifth of a walk.
var walkTypeCache sync.Map

// reflectType boxes a possibly nil reflect.Type for the cache.
type reflectType struct{ t reflect.Type }

var (
	v1UnmarshalerType   = reflect.TypeFor[interface{ UnmarshalJSON([]byte) error }]()
	v2UnmarshalerType   = reflect.TypeFor[json.UnmarshalerFrom]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func decodesItself(t reflect.Type) bool {
	for _, m := range []reflect.Type{v1UnmarshalerType, v2UnmarshalerType, textUnmarshalerType} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return true
		}
	}
	return false
}

// structFieldsOf maps a struct's JSON member names to their Go types, by json/v2's rules for the types
// agentgate decodes: the name from the json tag or the Go name, "-" ignored, unexported fields ignored,
// embedded structs without a name (and `,inline` ones) flattened.
func structFieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := structFieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	addStructFields(m, t, 0)
	structFieldCache.Store(t, m)
	return m
}

var structFieldCache sync.Map // reflect.Type → map[string]reflect.Type

func addStructFields(m map[string]reflect.Type, t reflect.Type, depth int) {
	if depth > 8 {
		return
	}
	// A field of the struct itself wins over one of the same name promoted from an inlined struct.
	var inlined []reflect.Type
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, hasTag := sf.Tag.Lookup("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := sf.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if name == "" && (sf.Anonymous || strings.Contains(","+opts+",", ",inline,")) && ft.Kind() == reflect.Struct && !decodesItself(ft) {
			inlined = append(inlined, ft)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if !hasTag || name == "" {
			name = sf.Name
		}
		if strings.HasPrefix(name, "'") { // json/v2's single-quoted names
			if uq, err := strconv.Unquote(`"` + strings.Trim(name, "'") + `"`); err == nil {
				name = uq
			}
		}
		if _, dup := m[name]; !dup {
			m[name] = sf.Type
		}
	}
	for _, ft := range inlined {
		addStructFields(m, ft, depth+1)
	}
}
