package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/report/api"
)

// FuzzAPI sends hostile bodies, correctly signed with KEY123's secret,
// to every method: the server never panics, answers JSON, never an error
// object with status 200, and never a row or file of a constituency the
// key does not read (KEY123 reads example_net: AS 64496 only).
func FuzzAPI(f *testing.F) {
	st, cs, _ := newStore(f)
	s, err := api.NewServer(st, cs, api.ServerOptions{Rate: 1e9, Burst: 1 << 30,
		Now: func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }})
	if err != nil {
		f.Fatal(err)
	}
	h := s.API()
	methods := []string{"test/ping", "key/info", "reports/subscribed", "reports/types", "reports/list", "reports/query", "reports/stats", "reports/schema", "nope/x"}
	for i, body := range []string{
		`{ "apikey": "KEY123" ,"date": "2026-11-29:2026-12-01" ,"reports": ["example_net"]}`,
		`{"apikey":"KEY123","query":{"ip":"127.42.0.0/16"},"limit":2,"page":"2","sort":"descending"}`,
		`{"apikey":"KEY123","query":{"geo":"de","asn":"AS64497"},"facet":"ip"}`,
		`{"apikey":"KEY123","type":["scan_ntp"],"report":["other_org"]}`,
		`{"apikey":"KEY123","types":"scan_ntpmonitor","date":"now","detail":true}`,
		`{"apikey":"KEY123","apikey":"KEY456"}`,
		`{"apikey":"KEY123","query":{"ip":"::ffff:127.42.0.1"}}`,
	} {
		f.Add(uint8(i), body)
	}
	f.Fuzz(func(t *testing.T, m uint8, body string) {
		method := methods[int(m)%len(methods)]
		req := httptest.NewRequest(http.MethodPost, "/api2/"+method, strings.NewReader(body))
		req.Header.Set("HMAC2", sign("s3cr3t", body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var v any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s: status %d, not JSON: %q", method, rec.Code, rec.Body.String())
		}
		if obj, ok := v.(map[string]any); ok {
			if _, isErr := obj["error"]; isErr == (rec.Code == http.StatusOK) {
				t.Fatalf("%s: status %d with %q", method, rec.Code, rec.Body.String())
			}
		}
		if rec.Code != http.StatusOK {
			return
		}
		// Whatever the answer, nothing of another constituency.
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case map[string]any:
				if r, ok := x["report"].(string); ok && r != "example_net" {
					t.Fatalf("%s: another key's report %q in %s", method, r, rec.Body.String())
				}
				if a, ok := x["asn"].(string); ok && a != "64496" {
					t.Fatalf("%s: a row of AS %s in %s", method, a, rec.Body.String())
				}
				for _, y := range x {
					walk(y)
				}
			case []any:
				for _, y := range x {
					walk(y)
				}
			case string:
				if x == "other_org" || x == "de_hosts" || x == "127.42.1.4" {
					t.Fatalf("%s: %q in %s", method, x, rec.Body.String())
				}
			}
		}
		walk(v)
	})
}
