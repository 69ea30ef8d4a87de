package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/mode6"
)

// Stats counts a scan the way Shadowserver's daily scan pages summarise
// one: rows by country, AS, daemon version and result status, and the
// distribution of amplification. The zero value is ready to use. Stats is
// not safe for concurrent use.
type Stats struct {
	rows      int
	countries map[string]int
	asns      map[string]int
	versions  map[string]int
	statuses  map[string]int
	amps      []float64
}

func inc(m *map[string]int, k string) {
	if *m == nil {
		*m = make(map[string]int)
	}
	(*m)[k]++
}

// AddStatus counts the outcome of one probed target, reportable or not.
func (s *Stats) AddStatus(st ntpctl.Status) { inc(&s.statuses, st.String()) }

// AddVersion counts an NTP Version row.
func (s *Stats) AddVersion(r *VersionRow) {
	s.add(&r.Common, r.Amplification)
	inc(&s.versions, DaemonVersion(r.Version))
}

// AddMonitor counts an NTP Monitor row.
func (s *Stats) AddMonitor(r *MonitorRow) { s.add(&r.Common, r.Amplification) }

// AddMRU counts an NTP MRU row, with its server's daemon version when
// READVAR gave one.
func (s *Stats) AddMRU(r *MRURow) {
	s.add(&r.Common, "")
	if r.Version != "" {
		inc(&s.versions, DaemonVersion(r.Version))
	}
}

// AddAccessible counts an Accessible NTP row.
func (s *Stats) AddAccessible(r *AccessibleRow) { s.add(&r.Common, "") }

// add counts a row by its common columns and its amplification.
func (s *Stats) add(c *Common, a string) {
	s.rows++
	unknown := func(v string) string {
		if v == "" {
			return "unknown"
		}
		return v
	}
	inc(&s.countries, unknown(strings.ToUpper(c.Geo)))
	inc(&s.asns, unknown(c.ASN))
	if f, err := strconv.ParseFloat(a, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		s.amps = append(s.amps, f)
	}
}

// DaemonVersion reduces an ntpd version banner to the daemon and its
// version, through mode6.ParseBanner: "ntpd 4.2.8p10@1.3728-o Sun Sep 17
// 20:40:05 UTC 2017 (1)" gives "ntpd 4.2.8p10", "ntpd ntpsec-1.2.2
// 2023-05-04T…" gives "ntpsec 1.2.2", "xntpd 3-5.93e" stays as it is. A
// banner it cannot place gives its first two words; an empty one gives
// "unknown".
func DaemonVersion(banner string) string {
	b := mode6.ParseBanner(clean(banner))
	if v, ok := strings.CutPrefix(b.Version, "ntpsec-"); ok {
		return "ntpsec " + v
	}
	if b.Program != "" && b.Version != "" {
		return b.Program + " " + b.Version
	}
	raw, _, _ := strings.Cut(clean(banner), "@")
	f := strings.Fields(raw)
	if len(f) > 2 {
		f = f[:2]
	}
	if len(f) == 0 {
		return "unknown"
	}
	return strings.Join(f, " ")
}

// Count is one line of a tally.
type Count struct {
	// Key is what was counted: a country, an AS number, a daemon
	// version, a status, or "unknown".
	Key string `json:"key"`
	// Count is how many times.
	Count int `json:"count"`
}

// Bucket is one range of the amplification histogram, [Min, Max); Max
// is 0 for the last, open-ended bucket.
type Bucket struct {
	// Min is the bucket's lower bound, included.
	Min float64 `json:"min"`
	// Max is the bucket's upper bound, excluded; 0 for the last bucket.
	Max float64 `json:"max,omitempty"`
	// Count is the number of rows whose amplification is in the bucket.
	Count int `json:"count"`
}

// Distribution summarises the amplification column.
// The quantiles are nearest-rank ones, values that occur in the rows;
// all are 0 when Count is.
type Distribution struct {
	// Count is the number of rows with an amplification value.
	Count int `json:"count"`
	// Min is the smallest amplification.
	Min float64 `json:"min"`
	// Median is the 50th percentile.
	Median float64 `json:"median"`
	// P90 is the 90th percentile.
	P90 float64 `json:"p90"`
	// P99 is the 99th percentile.
	P99 float64 `json:"p99"`
	// Max is the largest amplification.
	Max float64 `json:"max"`
	// Buckets is the histogram: [0, 1), [1, 10), [10, 50), [50, 100),
	// [100, 500), [500, 1000) and 1000 or more.
	Buckets []Bucket `json:"buckets"`
}

// Summary is what Stats counted, ready to print or encode. Tallies are
// sorted by count, largest first, then by key.
type Summary struct {
	// Rows is the number of rows counted.
	Rows int `json:"rows"`
	// Statuses counts the results given to AddStatus by status (ok,
	// no_answer, …), reportable or not.
	Statuses []Count `json:"statuses,omitempty"`
	// Countries counts rows by geo.
	Countries []Count `json:"countries"`
	// ASNs counts rows by asn.
	ASNs []Count `json:"asns"`
	// Versions counts NTP Version rows by daemon (DaemonVersion).
	Versions []Count `json:"versions,omitempty"`
	// Amplification is the distribution of the amplification column.
	Amplification Distribution `json:"amplification"`
}

// bucketEdges are the lower bounds of the histogram's buckets.
var bucketEdges = [...]float64{0, 1, 10, 50, 100, 500, 1000}

func tally(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{k, n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}

// quantile is the nearest-rank quantile q of sorted values.
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// Summary returns the counts so far.
func (s *Stats) Summary() Summary {
	sum := Summary{
		Rows: s.rows, Statuses: tally(s.statuses), Countries: tally(s.countries),
		ASNs: tally(s.asns), Versions: tally(s.versions),
	}
	d := &sum.Amplification
	for i, lo := range bucketEdges {
		b := Bucket{Min: lo}
		if i+1 < len(bucketEdges) {
			b.Max = bucketEdges[i+1]
		}
		d.Buckets = append(d.Buckets, b)
	}
	if len(s.amps) > 0 {
		v := slices.Sorted(slices.Values(s.amps))
		d.Count, d.Min, d.Max = len(v), v[0], v[len(v)-1]
		d.Median, d.P90, d.P99 = quantile(v, 0.5), quantile(v, 0.9), quantile(v, 0.99)
		for _, x := range v {
			i := len(bucketEdges) - 1
			for i > 0 && x < bucketEdges[i] {
				i--
			}
			d.Buckets[i].Count++
		}
	}
	return sum
}

// WriteJSON writes the summary as one indented JSON object.
func (s Summary) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the summary as a plain-text table, each tally cut
// after its 20 largest entries.
func (s Summary) WriteText(w io.Writer) error { return s.WriteTextTop(w, 20) }

// WriteTextTop is WriteText with each tally cut after top entries (all
// when top ≤ 0).
func (s Summary) WriteTextTop(w io.Writer, top int) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "rows\t%d\n", s.Rows)
	section := func(title string, cs []Count) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(tw, "\n%s\n", title)
		for i, c := range cs {
			if top > 0 && i == top {
				fmt.Fprintf(tw, "  (%d more)\n", len(cs)-top)
				break
			}
			fmt.Fprintf(tw, "  %s\t%d\n", TerminalSafe(clean(c.Key)), c.Count)
		}
	}
	section("status", s.Statuses)
	section("country", s.Countries)
	section("asn", s.ASNs)
	section("version", s.Versions)
	d := s.Amplification
	fmt.Fprintf(tw, "\namplification\t%d\n", d.Count)
	if d.Count > 0 {
		for _, q := range []struct {
			name string
			v    float64
		}{{"min", d.Min}, {"median", d.Median}, {"p90", d.P90}, {"p99", d.P99}, {"max", d.Max}} {
			fmt.Fprintf(tw, "  %s\t%.2f\n", q.name, q.v)
		}
	}
	for _, b := range d.Buckets {
		if b.Max == 0 {
			fmt.Fprintf(tw, "  ≥ %g\t%d\n", b.Min, b.Count)
		} else {
			fmt.Fprintf(tw, "  %g – %g\t%d\n", b.Min, b.Max, b.Count)
		}
	}
	return tw.Flush()
}
