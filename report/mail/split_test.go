package mail

import (
	"bytes"
	"testing"

	"github.com/ntpctl/ntpctl/report"
)

// TestCut: parts end at records, not lines (a quoted field may hold a
// line break), each with the header, rows shared out evenly.
func TestCut(t *testing.T) {
	csv := "ip,version\n127.0.0.1,\"ntpd\n4.2.8\"\n127.0.0.2,x\n127.0.0.3,y\n"
	sp := splitter{budget: 1 << 20, parts: map[splitKey][]*Report{}}
	r := &Report{List: "l", Type: report.ScanNTP, Day: "2026-11-29", FileName: "f.csv", CSV: []byte(csv), Rows: 3}
	ps, err := sp.cut(r, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ip,version\n127.0.0.1,\"ntpd\n4.2.8\"\n", "ip,version\n127.0.0.2,x\n127.0.0.3,y\n"}
	if len(ps) != 2 || string(ps[0].CSV) != want[0] || string(ps[1].CSV) != want[1] {
		t.Fatalf("%d parts: %q, %q", len(ps), ps[0].CSV, ps[len(ps)-1].CSV)
	}
	if ps[0].Rows != 1 || ps[1].Rows != 2 || ps[1].Part != 2 || ps[1].Parts != 2 {
		t.Errorf("rows %d, %d; part %d of %d", ps[0].Rows, ps[1].Rows, ps[1].Part, ps[1].Parts)
	}
	// More parts than rows: one row each.
	if ps, err := sp.cut(r, 10); err != nil || len(ps) != 3 || ps[2].Parts != 3 {
		t.Errorf("cut in 10: %d parts, %v", len(ps), err)
	}
	if _, err := sp.cut(&Report{CSV: []byte("ip,version\n")}, 2); err == nil {
		t.Error("a header alone was cut")
	}
}

// FuzzCut: whatever the CSV, cutting it either fails or gives parts that
// each start with its header and, header taken off, make it up again.
func FuzzCut(f *testing.F) {
	f.Add([]byte("a,b\n1,2\n3,4\n5,6\n"), 2)
	f.Add([]byte("a,b\n\"1\n\",2\r\n3,\"4\"\"\"\n"), 3)
	f.Add([]byte("a\n\"unterminated\n"), 2)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		n = 1 + int(uint(n)%50)
		sp := splitter{budget: 1 << 20, parts: map[splitKey][]*Report{}}
		ps, err := sp.cut(&Report{CSV: b, FileName: "f.csv"}, n)
		if err != nil {
			return
		}
		head, _, _ := records(b)
		var whole []byte
		rows := 0
		for i, p := range ps {
			body, ok := bytes.CutPrefix(p.CSV, head)
			if !ok || p.Part != i+1 || p.Parts != len(ps) || p.Rows < 1 {
				t.Fatalf("part %d of %d: %q", p.Part, p.Parts, p.CSV)
			}
			whole = append(whole, body...)
			rows += p.Rows
		}
		if !bytes.Equal(append(append([]byte(nil), head...), whole...), b) {
			t.Fatalf("parts put together %q, want %q", whole, b)
		}
		if len(ps) > n {
			t.Fatalf("%d parts, asked %d", len(ps), n)
		}
	})
}
