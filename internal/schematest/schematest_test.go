package schematest

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

const lab = `{"time":"2026-03-24T00:02:03Z","port":123,"hosts":[{"ip":"127.42.0.1","kind":"silent"}]}`

func TestValidate(t *testing.T) {
	Validate(t, "ntpctl_lab", []byte(lab))
	for _, bad := range []string{
		`{"time":"2026-03-24T00:02:03Z","port":123,"hosts":[{"ip":"127.42.0.1","kind":"silent","x":1}]}`,
		`{"time":"2026-03-24T01:02:03+01:00","port":123,"hosts":[{"ip":"127.42.0.1","kind":"silent"}]}`,
		`{"time":"2026-03-24T00:02:03Z","port":123,"hosts":[{"ip":"127.42.0.256","kind":"silent"}]}`,
		`{"time":"2026-03-24T00:02:03Z","port":123,"hosts":[{"ip":"127.42.0.1"}]}`,
		`not JSON`,
	} {
		r := &recorder{TB: t}
		Validate(r, "ntpctl_lab", []byte(bad))
		if len(r.errs) != 1 {
			t.Errorf("%s: %d failures, want 1", bad, len(r.errs))
		}
	}
	r := &recorder{TB: t}
	Validate(r, "no_such_def", []byte(lab))
	if len(r.errs) != 1 {
		t.Errorf("an unknown $defs entry: %d failures, want 1", len(r.errs))
	}
}

func TestCheckType(t *testing.T) {
	type span struct {
		Start int `json:"start"`
		End   int `json:"end"`
	}
	CheckType(t, "span", span{})
	type embedded struct{ span }
	CheckType(t, "span", embedded{})
	for name, v := range map[string]any{
		"an added field": struct {
			span
			Len int `json:"len,omitempty"`
		}{},
		"a renamed field": struct {
			Start int `json:"begin"`
			End   int `json:"end"`
		}{},
		"an optional field the schema requires": struct {
			Start int `json:"start,omitempty"`
			End   int `json:"end"`
		}{},
	} {
		r := &recorder{TB: t}
		CheckType(r, "span", v)
		if len(r.errs) == 0 {
			t.Errorf("%s: not reported", name)
		}
	}
}

func TestExercised(t *testing.T) {
	got := Exercised(t, []Doc{{Def: "ntpctl_lab", JSON: []byte(lab)}})
	for _, d := range []string{"ntpctl_lab", "lab_host", "time", "ip"} {
		if !got[d] {
			t.Errorf("%s not exercised by a lab listing", d)
		}
	}
	for _, d := range []string{"record", "entry", "port"} {
		if got[d] {
			t.Errorf("%s exercised by a lab listing", d)
		}
	}
}
