// Package schematest checks JSON documents against the JSON Schema of the
// project's JSON vocabulary (report.Schema, report/schema/ntpctl.schema.json),
// for tests: that an output is valid against one of the schema's $defs, that
// the tests' documents exercise every $defs entry, and that a Go type has
// exactly the fields its $defs entry describes.
//
// Formats (date-time, ipv4, ipv6) are asserted, not only annotated.
package schematest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ntpctl/ntpctl/report"
)

// Doc is a JSON document and the $defs entry it is an instance of.
type Doc struct {
	// Def names the entry, such as "record".
	Def string
	// JSON is the document.
	JSON []byte
}

// load decodes the schema as the validator reads it.
func load() (map[string]any, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(report.Schema()))
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema: not an object")
	}
	return m, nil
}

// compiler returns a compiler that holds doc, and doc's URL (its $id,
// against which its references resolve).
func compiler(doc map[string]any) (*jsonschema.Compiler, string, error) {
	id, _ := doc["$id"].(string)
	if id == "" {
		return nil, "", fmt.Errorf("schema: no $id")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(id, doc); err != nil {
		return nil, "", err
	}
	return c, id, nil
}

// compile compiles doc and returns the validators of defs.
func compile(doc map[string]any, defs ...string) (map[string]*jsonschema.Schema, error) {
	c, url, err := compiler(doc)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*jsonschema.Schema, len(defs))
	for _, d := range defs {
		if _, ok := out[d]; ok {
			continue
		}
		sch, err := c.Compile(url + "#/$defs/" + d)
		if err != nil {
			return nil, fmt.Errorf("$defs/%s: %w", d, err)
		}
		out[d] = sch
	}
	return out, nil
}

// decode reads a document as the validator wants it (numbers as
// json.Number, so that integers stay exact).
func decode(doc []byte) (any, error) {
	return jsonschema.UnmarshalJSON(bytes.NewReader(doc))
}

// Validate fails t unless doc is one JSON value valid against the schema's
// #/$defs/def.
func Validate(t testing.TB, def string, doc []byte) {
	t.Helper()
	if err := validate(def, doc); err != nil {
		t.Errorf("not a valid %s: %v\n%s", def, err, excerpt(doc))
	}
}

// Check returns the error of validating doc against #/$defs/def, nil
// when doc is valid; it fails t only when the schema does not compile.
func Check(t testing.TB, def string, doc []byte) error {
	t.Helper()
	schs, err := compiled()
	if err != nil {
		t.Fatal(err)
	}
	if schs[def] == nil {
		t.Fatalf("no $defs/%s in the schema", def)
	}
	return validate(def, doc)
}

// CompileAll fails t unless the schema and each of its $defs entries
// compile (against the draft 2020-12 metaschema).
func CompileAll(t testing.TB) {
	t.Helper()
	m, err := load()
	if err != nil {
		t.Fatal(err)
	}
	c, url, err := compiler(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile(url); err != nil {
		t.Errorf("the schema: %v", err)
	}
	if _, err := compile(m, Defs(t)...); err != nil {
		t.Error(err)
	}
}

// compiled holds the validators of every $defs entry, compiled once per
// test binary (compiling takes milliseconds, validating a record
// microseconds) and read-only afterwards: a jsonschema.Schema is safe for
// concurrent validation.
var compiled = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	m, err := load()
	if err != nil {
		return nil, err
	}
	defs, _ := m["$defs"].(map[string]any)
	names := make([]string, 0, len(defs))
	for d := range defs {
		names = append(names, d)
	}
	return compile(m, names...)
})

func validate(def string, doc []byte) error {
	schs, err := compiled()
	if err != nil {
		return err
	}
	sch, ok := schs[def]
	if !ok {
		return fmt.Errorf("no $defs/%s in the schema", def)
	}
	v, err := decode(doc)
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

func excerpt(doc []byte) string {
	if len(doc) > 2000 {
		return string(doc[:2000]) + "…"
	}
	return string(doc)
}

// Defs returns the names of the schema's $defs entries, sorted.
func Defs(t testing.TB) []string {
	t.Helper()
	m, err := load()
	if err != nil {
		t.Fatal(err)
	}
	defs, _ := m["$defs"].(map[string]any)
	out := make([]string, 0, len(defs))
	for d := range defs {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// Def returns the schema's $defs entry name, as decoded JSON.
func Def(t testing.TB, name string) map[string]any {
	t.Helper()
	m, err := load()
	if err != nil {
		t.Fatal(err)
	}
	defs, _ := m["$defs"].(map[string]any)
	d, ok := defs[name].(map[string]any)
	if !ok {
		t.Fatalf("no $defs/%s in the schema", name)
	}
	return d
}

// Exercised returns the $defs entries that docs exercise: an entry is
// exercised when replacing it by the schema false (which nothing is valid
// against) makes one of docs invalid, so some document's value reaches it
// and depends on it. Every doc must be valid against the schema as it is.
func Exercised(t testing.TB, docs []Doc) map[string]bool {
	t.Helper()
	values := make([]any, len(docs))
	var tops []string
	for i, d := range docs {
		if err := validate(d.Def, d.JSON); err != nil {
			t.Fatalf("document %d: not a valid %s: %v", i, d.Def, err)
		}
		v, err := decode(d.JSON)
		if err != nil {
			t.Fatal(err)
		}
		values[i] = v
		tops = append(tops, d.Def)
	}
	out := map[string]bool{}
	for _, def := range Defs(t) {
		m, err := load()
		if err != nil {
			t.Fatal(err)
		}
		m["$defs"].(map[string]any)[def] = false
		schs, err := compile(m, tops...)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range docs {
			if schs[d.Def].Validate(values[i]) != nil {
				out[def] = true
				break
			}
		}
	}
	return out
}

// CheckType fails t unless the $defs entry def describes exactly the JSON
// encoding/json makes of a value of v's type, a struct: additional
// properties refused, one property per field (named by its json tag,
// embedded structs' fields included), required unless the field is
// omitempty. So a field added, renamed or made optional on one side only
// fails, even when no test document carries it.
func CheckType(t testing.TB, def string, v any) {
	t.Helper()
	d := Def(t, def)
	if d["additionalProperties"] != false {
		t.Errorf("$defs/%s: additionalProperties is not false", def)
	}
	props, _ := d["properties"].(map[string]any)
	var inSchema []string
	for p := range props {
		inSchema = append(inSchema, p)
	}
	var required []string
	req0, _ := d["required"].([]any)
	for _, r := range req0 {
		required = append(required, r.(string))
	}
	all, req := jsonFields(reflect.TypeOf(v))
	slices.Sort(inSchema)
	slices.Sort(required)
	slices.Sort(all)
	slices.Sort(req)
	if !slices.Equal(all, inSchema) {
		t.Errorf("$defs/%s has the properties %q, the Go type %T the fields %q", def, inSchema, v, all)
	}
	if !slices.Equal(req, required) {
		t.Errorf("$defs/%s requires %q, the Go type %T always writes %q", def, required, v, req)
	}
}

// jsonFields returns the JSON names of a struct type's fields and those
// without omitempty, as encoding/json writes them.
func jsonFields(typ reflect.Type) (all, required []string) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			a, r := jsonFields(f.Type)
			all, required = append(all, a...), append(required, r...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		if !slices.Contains(strings.Split(opts, ","), "omitempty") {
			required = append(required, name)
		}
	}
	return all, required
}

// Marshal returns v as encoding/json writes it, failing t on an error.
func Marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
