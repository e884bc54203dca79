package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decodeYAML decodes b into c, reporting problems the way a person edits the file: each
// unknown key by its path (worker.maxAttempt) and line, with a did-you-mean when a known key
// is close; each wrong type by its path and what the key takes; a syntax error at the line
// where it is. yaml.v3 alone names Go types (config.Worker) and reports a parser error at
// the line of its context, often the line above the mistake.
func decodeYAML(b []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return syntaxError(b, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty document: all defaults
	}
	w := &keyWalker{lines: map[int]keyAt{}}
	w.walk(doc.Content[0], reflect.TypeOf(c).Elem(), "")
	if len(w.errs) > 0 {
		return errors.Join(w.errs...)
	}
	if err := doc.Decode(c); err != nil {
		return w.typeError(err)
	}
	return nil
}

// keyAt is the key a line holds a value for.
type keyAt struct {
	path  string
	typ   reflect.Type
	mixed bool // several sibling keys share the line: path is their parent
}

type keyWalker struct {
	errs  []error
	lines map[int]keyAt // line → the innermost key whose value starts there
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func (w *keyWalker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		w.record(n.Line, path, t)
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode || t == reflect.TypeOf(time.Time{}) {
			return // a type error, reported by Decode with the line map
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // a merge key: its mapping holds keys of this type
				w.walk(v, t, path)
				continue
			}
			f, ok := fields[k.Value]
			if !ok {
				w.errs = append(w.errs, unknownKey(join(path, k.Value), k.Line, k.Value, fields))
				continue
			}
			w.record(k.Line, join(path, k.Value), f.Type)
			w.walk(v, f.Type, join(path, k.Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			w.walk(item, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	}
}

// record notes that line holds path's value. yaml.v3's type errors name only a line, so when a
// line holds several keys (a flow mapping: {name: f, rateLimit: x}) the error is reported at
// their common parent rather than, wrongly, at one of them; a key inside a container on the
// same line wins over the container.
func (w *keyWalker) record(line int, path string, t reflect.Type) {
	prev, ok := w.lines[line]
	switch {
	case ok && prev.mixed:
		if !isParent(prev.path, path) && prev.path != path {
			w.lines[line] = keyAt{commonParent(prev.path, path), nil, true}
		}
	case !ok || prev.path == path || isParent(prev.path, path):
		w.lines[line] = keyAt{path, t, false}
	case isParent(path, prev.path):
		// keep the deeper key already recorded
	default:
		w.lines[line] = keyAt{commonParent(prev.path, path), nil, true}
	}
}

func isParent(parent, child string) bool {
	return strings.HasPrefix(child, parent+".") || strings.HasPrefix(child, parent+"[")
}

// commonParent is the longest path that is a parent of both a and b ("" at the top).
func commonParent(a, b string) string {
	for p := a; p != ""; {
		if isParent(p, b) {
			return p
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return ""
		}
		p = p[:i]
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps a struct's YAML keys to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" && strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			maps.Copy(out, yamlFields(f.Type)) // an inlined struct's keys sit at this level
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func unknownKey(path string, line int, key string, fields map[string]reflect.StructField) error {
	msg := fmt.Sprintf("%s (line %d): unknown key", path, line)
	if s := closest(key, fields); s != "" {
		msg += "; did you mean " + s + "?"
	} else {
		known := make([]string, 0, len(fields))
		for k := range fields {
			known = append(known, k)
		}
		sort.Strings(known)
		msg += " (known keys here: " + strings.Join(known, ", ") + ")"
	}
	return errors.New(msg)
}

// closest returns the known key nearest to key, if it is close enough to be a typo: the same
// letters in another case, or at most a third of the letters wrong (and at most 3).
func closest(key string, fields map[string]reflect.StructField) string {
	best, bestD := "", 0
	for k := range fields {
		if strings.EqualFold(k, key) {
			return k
		}
		d := editDistance(strings.ToLower(key), strings.ToLower(k))
		if best == "" || d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if best == "" || bestD > 3 || bestD*3 > len(key) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var typeErrLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeError rewrites yaml.v3's "line 4: cannot unmarshal !!str `abc` into time.Duration" as
// "worker.ackWait (line 4): `abc` is not a duration (such as 30s)".
func (w *keyWalker) typeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var errs []error
	for _, e := range te.Errors {
		m := typeErrLine.FindStringSubmatch(e)
		if m == nil {
			errs = append(errs, errors.New(e))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		at, ok := w.lines[line]
		if !ok || at.path == "" {
			// No key holds this line: the document itself is not a mapping. Say so rather
			// than name the Go type (config.Config).
			at = keyAt{path: "the file", typ: reflect.TypeOf(Config{})}
		}
		problem := m[2]
		if v, ok := strings.CutPrefix(problem, "cannot unmarshal "); ok {
			// v is "!!str `abc` into time.Duration", or "!!seq into float64" for a collection.
			tag, rest, _ := strings.Cut(v, " ")
			val, _, _ := strings.Cut(rest, " into ")
			switch {
			case strings.HasPrefix(rest, "into "):
				val = map[string]string{"!!seq": "a list", "!!map": "a mapping"}[tag]
				if val == "" {
					val = "a " + strings.TrimPrefix(tag, "!!")
				}
			}
			problem = fmt.Sprintf("%s is not %s", val, describe(at.typ))
		}
		errs = append(errs, fmt.Errorf("%s (line %d): %s", at.path, line, problem))
	}
	return errors.Join(errs...)
}

// describe says what a key of type t takes, in the file's terms.
func describe(t reflect.Type) string {
	switch {
	case t == nil: // several keys on the line
		return "what the key takes"
	case t == reflect.TypeOf(time.Duration(0)):
		return "a duration (such as 30s, 5m or 168h)"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		return "a mapping of keys"
	}
	return "the expected kind of value"
}

var syntaxErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError reports a YAML syntax error at the line where it is. yaml.v3 reports a parser
// error at its context's line (the mapping or sequence being parsed), so a bad key under
// `http:` is reported a line too low. The problem line is the first line whose prefix of the
// document fails with the same problem.
func syntaxError(b []byte, err error) error {
	m := syntaxErrLine.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	problem := m[2]
	lines := bytes.SplitAfter(b, []byte("\n"))
	var prefix []byte
	for i, l := range lines {
		prefix = append(prefix, l...)
		var n yaml.Node
		perr := yaml.Unmarshal(prefix, &n)
		if perr == nil {
			continue
		}
		if pm := syntaxErrLine.FindStringSubmatch(perr.Error()); pm != nil && pm[2] == problem {
			return fmt.Errorf("line %d: %s", i+1, problem)
		}
	}
	return fmt.Errorf("line %s: %s", m[1], problem)
}
