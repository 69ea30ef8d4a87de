package mode6

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ntpctl/ntpctl/internal/hexcap"
)

// seedReplies adds every datagram of the captures in testdata, and its
// data, to f, with text that takes the slow paths.
func seedReplies(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex.txt"))
	if err != nil || len(files) == 0 {
		f.Fatal("no captures", err)
	}
	for _, file := range files {
		pkts, err := hexcap.Load(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range pkts {
			f.Add(p.Payload)
			if len(p.Payload) > 12 {
				f.Add(p.Payload[12:])
			}
		}
	}
	f.Add([]byte(`a="x, y=z", b, c=, d=1 2filtoffset=3,` + "\r\n\x00\xff" + `e="unterminated`))
	f.Add([]byte("version=\"\xc3\xa9\x7f\", x\x01y=1\tz,=5,\"q\"r=2,leap=11,refid=::1,precision=-200"))
}

// FuzzParseVarsRef: ParseVars gives what the reference implementation
// (ParseVars before its fast paths, in ref_test.go) gives, stats
// included.
func FuzzParseVarsRef(f *testing.F) {
	seedReplies(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gst := ParseVars(data)
		want, wst := refParseVars(data)
		if gst != wst {
			t.Fatalf("stats %+v, want %+v", gst, wst)
		}
		if len(got) != len(want) {
			t.Fatalf("%d vars, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("var %d: %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}

// FuzzSystemVarsRef: ParseSystemVars gives what the reference
// implementation gives: every field, Has bit and error.
func FuzzSystemVarsRef(f *testing.F) {
	seedReplies(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := ParseSystemVars(data)
		want, werr := refParseSystemVars(data)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("error %v, want %v", gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%+v\nwant %+v", got, want)
		}
	})
}

// TestSysFieldIndex: the name switch and the table agree.
func TestSysFieldIndex(t *testing.T) {
	for i, n := range sysFields {
		if got := sysField(n); got != i {
			t.Errorf("sysField(%q) = %d, want %d", n, got, i)
		}
		if got, want := sysGroup(i), refSysGroup(i); got != want {
			t.Errorf("sysGroup(%d) = %d, want %d", i, got, want)
		}
	}
	for _, n := range []string{"", "x", "versio", "versions", "Version"} {
		if sysField(n) != -1 {
			t.Errorf("sysField(%q) found", n)
		}
	}
}
